/**
 * The upkeep of a pool's records outside acquire and release: the checks on a record (a lease's
 * `validate()`, the borrow validation and keepalive pings of `revalidate()`) and the maintenance
 * interface that housekeeping and the admin operations reach the pool through. It extends the
 * record side (records.ts); `Pool` (pool.ts) extends it with the callers' side.
 */
import { Mutex } from 'async-mutex';
import { isOpenState, type CloseReason, type PoolEntry } from './entry';
import type { PoolMaintenance } from './maintenance';
import { opensToStart } from './growth';
import { isOwnRecord } from './ownership';
import { PoolRecords } from './records';
import type { BudgetMember } from './types';

/** Checks and maintenance of the records of a pool of connections of type `C`, recorded as entries of type `E`. */
export abstract class PoolUpkeep<C, E extends PoolEntry<C>> extends PoolRecords<C, E> implements PoolMaintenance<E>, BudgetMember {
  /** Serialises the admin operations (see `exclusive`). Never taken by acquire or release. */
  private readonly adminLock = new Mutex();

  // ── checks on a lease ───────────────────────────────────────────────────────────────────────

  /** True when `entry` belongs to this pool and is open. */
  owns(entry: unknown): entry is E {
    return isOwnRecord<E>(this, entry) && isOpenState(entry.state);
  }

  /**
   * Validates a connection: never rejects. One that fails is marked broken, so it is never handed
   * out again (closed now if idle, on release if checked out): after a timed-out check its
   * `SELECT 1` may still be queued on the session, and the next query would wait behind it.
   */
  async validate(entry: E): Promise<boolean> {
    if (entry.broken !== undefined || entry.raw === undefined || !isOpenState(entry.state)) return false;
    const ok = await this.connector.validate(entry.raw, this.options.validationTimeoutMs).catch(() => false);
    if (!ok && entry.broken === undefined && isOpenState(entry.state)) {
      entry.broken = new Error(`failed validation (SELECT 1 within pool.validationTimeoutMs=${this.options.validationTimeoutMs})`);
      this.log.warn(`Connection ${entry.id} failed validation; it will not be handed out again`, { pool: this.name, state: entry.state });
      if (entry.state === 'idle') void this.destroy(entry, 'validation');
    }
    return ok;
  }

  /**
   * `validate()` for the holder of a lease: false, without a check, for anything that is not a
   * connection this pool has checked out (a released connection may be someone else's now).
   */
  validateLease(connection: object): Promise<boolean> {
    if (!this.owns(connection) || connection.state !== 'inUse') return Promise.resolve(false);
    return this.validate(connection);
  }

  // ── maintenance (see PoolMaintenance) ───────────────────────────────────────────────────────

  exclusive<T>(operation: () => Promise<T>): Promise<T> {
    return this.adminLock.runExclusive(operation);
  }

  openEntries(): E[] {
    return this.registry.openEntries();
  }

  softEvict(entry: E, reason: CloseReason): boolean {
    if (entry.state === 'idle') {
      void this.destroy(entry, reason);
      return true;
    }
    // Already marked: it closes once, under the reason it was first marked for.
    if ((entry.state === 'inUse' || entry.state === 'reserved') && !entry.retire) {
      this.markRetired(entry, reason);
      return true;
    }
    return false;
  }

  markRetired(entry: E, reason: CloseReason): void {
    entry.retire = true;
    entry.retireReason = reason;
  }

  unretire(entry: E): void {
    entry.retire = false;
    entry.retireReason = 'retired';
  }

  /**
   * Validates an idle connection out of reach of callers (reserved), then gives it to the oldest
   * waiter or back to idle; closes it if the check fails. Used before handing out a connection that
   * sat idle for long, and by the keepalive pings. Never rejects.
   */
  async revalidate(entry: E): Promise<void> {
    if (entry.state !== 'idle') return;
    this.registry.move(entry, 'reserved');
    this.incoming++;
    let ok = false;
    try {
      ok = await this.connector.validate(entry.raw as C, this.options.validationTimeoutMs);
    } catch {
      ok = false;
    } finally {
      this.incoming--;
    }
    entry.lastPingMono = this.clock.now();
    if (!ok || entry.broken !== undefined) this.log.warn(`Connection ${entry.id} failed validation; closing it`, { pool: this.name });
    this.place(ok ? 'checked' : 'checkFailed', entry, false);
    this.pump();
  }

  reportLeaks(): void {
    const threshold = this.options.leakDetectionThresholdMs;
    if (threshold <= 0) return;
    const now = this.clock.now();
    for (const entry of this.registry.openEntries()) {
      if (entry.state !== 'inUse' || entry.leakReported) continue;
      const heldMs = now - entry.checkedOutMono;
      if (heldMs < threshold) continue;
      entry.leakReported = true;
      this.counters.leaksDetected++;
      const tags = this.admission?.tagsOf(entry);
      const holder = tags === undefined ? '' : ` by ${Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(', ')}`;
      this.log.warn(
        `Possible connection leak: ${entry.id} has been checked out${holder} for ${Math.round(heldMs)} ms (pool.leakDetectionThresholdMs=${threshold}). Acquired at:\n${entry.acquiredAt ?? '(stack not recorded)'}`,
        { pool: this.name, id: entry.id, heldMs: Math.round(heldMs), acquiredAt: entry.acquiredAt, tags },
      );
    }
  }

  beginGeneration(): void {
    this.generation++;
  }

  whenOpen(target: number, timeoutMs: number): Promise<boolean> {
    if (this.state !== 'open') return Promise.resolve(false);
    if (this.registry.openCount >= target) return Promise.resolve(true);
    return this.openWaiters.refilled(target, timeoutMs);
  }

  // ── the connection budget (see BudgetMember) ────────────────────────────────────────────────

  /**
   * Opens to start now: enough for the waiters no open in flight or record on its way will serve,
   * to keep `min` open and `minIdle` idle, never past `max` (growth.ts); none while closing or
   * while the circuit is open. The pump starts exactly these; the budget reads it as demand.
   */
  need(): number {
    if (this.state !== 'open' || this.breaker.blocking) return 0;
    const r = this.registry;
    const o = this.options;
    return opensToStart(this.waiters.size, r.pendingCount, this.incoming, r.openCount, r.occupied, o.min, o.max, r.idleCount, o.minIdle);
  }

  longestIdleSince(evenAtMin: boolean): number | undefined {
    if (this.state !== 'open' || (!evenAtMin && this.registry.openCount <= this.options.min)) return undefined;
    return this.registry.longestIdle()?.lastUsedMono;
  }

  reclaimIdle(evenAtMin: boolean): boolean {
    if (this.state !== 'open' || (!evenAtMin && this.registry.openCount <= this.options.min)) return false;
    const entry = this.registry.longestIdle();
    if (entry === undefined) return false;
    void this.destroy(entry, 'reclaimed');
    return true;
  }

  // ── resize ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Changes `min` and `max` at run time (`manager.resize`; the caller checked `min <= max`).
   * Growing: the pump opens what the waiters and the new `min` need. Shrinking: idle connections
   * beyond the new `max` close now, longest idle first; then checked-out ones are retired (closed on
   * release, oldest first), then opens in flight are closed on arrival, until no more than `max` will
   * be left. Never below the new `min` (which is at most `max`). O(n) over the open records.
   * @returns the connections closed now and those that close on release or arrival.
   */
  resize(min: number, max: number): { closed: number; retiring: number } {
    const o = this.options;
    o.min = min;
    o.max = max;
    if (o.minIdle > max) o.minIdle = max;
    const entries = this.registry.openEntries();
    // Connections that close anyway (retired for another reason, or planned by an earlier resize).
    const leaving = entries.filter((e) => e.state !== 'idle' && e.retire).length + this.closeOnArrival;
    let excess = this.registry.openCount + this.registry.pendingCount - leaving - max;
    let closed = 0;
    let retiring = 0;
    const idle = entries.filter((e) => e.state === 'idle').sort((a, b) => a.lastUsedMono - b.lastUsedMono);
    for (const entry of idle) {
      if (excess <= 0) break;
      void this.destroy(entry, 'resized');
      closed++;
      excess--;
    }
    for (const entry of entries) {
      if (excess <= 0) break;
      if ((entry.state !== 'inUse' && entry.state !== 'reserved') || entry.retire) continue;
      this.markRetired(entry, 'resized');
      retiring++;
      excess--;
    }
    if (excess > 0) {
      const arriving = Math.min(excess, this.registry.pendingCount);
      this.closeOnArrival += arriving;
      retiring += arriving;
    }
    this.log.info(`Pool resized to min ${min}, max ${max}: ${closed} idle connection(s) closed now, ${retiring} to close on release or arrival`, { pool: this.name });
    this.pump();
    return { closed, retiring };
  }
}
