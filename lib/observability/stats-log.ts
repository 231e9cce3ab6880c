/**
 * The periodic stats log (`logStatsIntervalMs`): one info line per pool per interval with its
 * counts, waits and counters, as flat fields for log search (Go's ConnectionMonitor, which logs
 * `sql.DBStats` on a ticker).
 */
import type { Logger } from 'winston';
import type { Clock, TimerHandle } from '../pool/clock';
import type { ManagerPoolStats } from '../pool/stats';
import { poolsOf } from '../admin/metrics-pools';

/** Logs the stats of every pool every `intervalMs` until `stop()`. The timer never keeps the process alive. */
export class StatsLog {
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly source: () => ManagerPoolStats,
    private readonly intervalMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.schedule();
  }

  /** Writes one line per pool now. */
  logNow(): void {
    for (const [pool, s] of poolsOf(this.source())) {
      this.log.info(`Pool stats ${pool}: ${s.total}/${s.max} open (${s.idle} idle, ${s.inUse} in use, ${s.pending} opening), ${s.waiting} waiting`, {
        event: 'pool_stats',
        pool,
        total: s.total, idle: s.idle, inUse: s.inUse, pending: s.pending, waiting: s.waiting, min: s.min, max: s.max,
        waitCount: s.wait.count, waitTotalMs: Math.round(s.wait.totalMs), waitMaxMs: Math.round(s.wait.maxMs),
        circuit: s.circuit.state,
        ...s.counters,
      });
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.clock.setTimer(() => {
      try {
        this.logNow();
      } finally {
        if (!this.stopped) this.schedule();
      }
    }, this.intervalMs);
  }
}
