/**
 * Housekeeping: one timer per pool that runs the expiry sweep (max lifetime, idle timeout),
 * pings idle connections that have been quiet for `keepaliveIntervalMs`, reports possible leaks,
 * and refills to `min`. The timer is unref'd and stopped by `close()`.
 */
import type { Clock, TimerHandle } from './clock';
import type { PoolEntry } from './entry';
import { expireConnections } from './eviction';
import type { Pool } from './pool';

/** The housekeeping period: a quarter of the shortest enabled interval, between 50 ms and 30 s. */
export function housekeepingPeriodMs(options: Pool<unknown, PoolEntry<unknown>>['options']): number {
  const intervals = [options.idleTimeoutMs, options.maxLifetimeMs, options.keepaliveIntervalMs, options.leakDetectionThresholdMs]
    .filter((ms) => ms > 0);
  if (intervals.length === 0) return 30_000;
  return Math.min(30_000, Math.max(50, Math.min(...intervals) / 4));
}

export class Housekeeper<C, E extends PoolEntry<C>> {
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = false;
  readonly periodMs: number;

  constructor(
    private readonly pool: Pool<C, E>,
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

  /** One round of housekeeping; also what `triggerExpireConnections()` runs (without the pings). */
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
    const due = this.pool.registry
      .idleOldestFirst()
      .filter((e) => now - Math.max(e.lastUsedMono, e.lastPingMono) >= interval);
    await Promise.all(due.map((entry) => this.pool.ping(entry)));
  }
}
