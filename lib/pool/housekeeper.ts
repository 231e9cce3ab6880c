/**
 * Housekeeping: one timer per pool that runs the expiry sweep (max lifetime, idle timeout),
 * reports possible leaks, pings idle connections that have been quiet for `keepaliveIntervalMs`,
 * and refills to `min`. The timer is unref'd and stopped by `close()`. It drives the pool through
 * `PoolMaintenance` only.
 */
import type { ResolvedPoolOptions } from '../options';
import type { Clock, TimerHandle } from './clock';
import type { PoolEntry } from './entry';
import { expireConnections } from './eviction';
import type { PoolMaintenance } from './maintenance';

/** The housekeeping period: a quarter of the shortest enabled interval, between 50 ms and 30 s. */
export function housekeepingPeriodMs(options: ResolvedPoolOptions): number {
  const intervals = [options.idleTimeoutMs, options.maxLifetimeMs, options.keepaliveIntervalMs, options.leakDetectionThresholdMs]
    .filter((ms) => ms > 0);
  if (intervals.length === 0) return 30_000;
  return Math.min(30_000, Math.max(50, Math.min(...intervals) / 4));
}

export class Housekeeper<E extends PoolEntry<unknown>> {
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = false;
  readonly periodMs: number;

  constructor(
    private readonly pool: PoolMaintenance<E>,
    private readonly clock: Clock,
  ) {
    this.periodMs = housekeepingPeriodMs(pool.options);
  }

  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = this.clock.setTimer(() => void this.tick(), this.periodMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /**
   * One round of housekeeping. Its expiry sweep is the one `triggerExpireConnections()` runs too
   * (`expireConnections`, under the pool's admin mutex); the leak report, the pings and the refill
   * are housekeeping's own.
   */
  async tick(): Promise<void> {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    if (this.running || !this.pool.isOpen) return;
    this.running = true;
    try {
      await expireConnections(this.pool, this.clock);
      this.pool.reportLeaks();
      await this.keepalive();
      this.pool.pump();
    } catch (error) {
      this.pool.logInternalError('housekeeping', error);
    } finally {
      this.running = false;
      if (!this.stopped && this.pool.isOpen) this.start();
    }
  }

  /** Pings idle connections quiet for `keepaliveIntervalMs`, so firewalls and NATs keep them. */
  private async keepalive(): Promise<void> {
    const interval = this.pool.options.keepaliveIntervalMs;
    if (interval <= 0) return;
    const now = this.clock.now();
    const due = this.pool
      .openEntries()
      .filter((e) => e.state === 'idle' && now - Math.max(e.lastUsedMono, e.lastPingMono) >= interval);
    await Promise.all(due.map((entry) => this.pool.revalidate(entry)));
  }
}
