/**
 * The generic pool, callers' side: acquire, release, the pump, ready and close. It knows nothing
 * of knex or pg. It extends `PoolUpkeep` (upkeep.ts: the checks on a record and the maintenance
 * interface), which extends `PoolRecords` (records.ts: opening, placing and closing records); the
 * `Registry` holds the records, the `WaiterQueue` the callers, the `Opener` retries opens.
 *
 * One pump: every event (release, open finished, caller added, close finished) ends in `pump()`,
 * the only place that matches idle connections to waiters and decides whether to open more
 * (connections being opened or closed count toward `max`).
 */
import type { TimerHandle } from './clock';
import { withTimeout } from './clock';
import type { PoolEntry } from './entry';
import { longestHeld, statsSnapshot, type HeldConnection, type PoolStats } from './stats';
import type { AdmissionPolicy, Waiter } from './waiters';
import { Housekeeper } from './housekeeper';
import { abortedError, acquireTimeoutError, connectError, countsMeta, describeCounts, errorMessage, queueFullError, saturatedMessage } from './messages';
import { uncoveredWaiters } from './growth';
import { PoolUpkeep } from './upkeep';
import type { AcquireOptions, PoolConfig, PoolObserver } from './types';
import { acquireRequest, type AcquireDeadline, type AcquireRequest } from './deadline';
import { IGNORE, isOwnRecord, RELEASE, releaseVerdict } from './ownership';

export { MAX_TIMER_MS } from './clock';
export type { AcquireOptions, PoolConfig, PoolObserver } from './types';

/** A pool of connections of type `C`, recorded as entries of type `E`. */
export class Pool<C, E extends PoolEntry<C>> extends PoolUpkeep<C, E> {
  /** The pool is at `max` with callers waiting; logged once per episode. */
  private saturated = false;
  private closePromise: Promise<void> | undefined;
  private closeResolve: (() => void) | undefined;
  private closeTimer: TimerHandle | undefined;
  private readonly housekeeper: Housekeeper<E>;

  constructor(config: PoolConfig<C, E>) {
    super(config);
    this.housekeeper = new Housekeeper(this, this.clock);
    this.housekeeper.start();
    this.pump();
  }

  /** Callers waiting for a connection. */
  get waiting(): number {
    return this.waiters.size;
  }

  // ── acquire ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Checks a connection out: an idle one at once when nobody is queued, otherwise after the
   * callers ahead of this one. One deadline covers waiting and any opening it needs.
   */
  acquire(options?: AcquireOptions | AcquireDeadline): Promise<E> {
    // Order (docs/lifecycle.md): the arguments, then the pool's state, then the signal, then the time left.
    let timeoutMs = this.options.acquireTimeoutMs;
    let waitMs = timeoutMs;
    let signal: AbortSignal | undefined;
    let request: AcquireRequest | undefined;
    // Without options (knex's adapter, most callers) there is nothing to check and nothing to allocate.
    if (options !== undefined) {
      try {
        request = acquireRequest(options, timeoutMs, this.clock);
      } catch (error) {
        return Promise.reject(error);
      }
      ({ timeoutMs, waitMs, signal } = request);
    }
    if (this.state !== 'open') return Promise.reject(this.closedError());
    if (signal?.aborted) {
      this.counters.aborted++;
      return Promise.reject(abortedError(signal));
    }
    if (waitMs <= 0) {
      this.counters.timedOut++;
      return Promise.reject(this.timeoutError(timeoutMs));
    }
    // Admission, when configured, may refuse at once (rate limits); its ticket rides on the waiter.
    const ticket = this.admission?.admit(request?.tags, request?.priority);
    if (ticket instanceof Error) return Promise.reject(ticket);
    // Where the caller asked, for leak reports; costs a stack capture, so only when enabled.
    const site = this.options.leakDetectionThresholdMs > 0 ? new Error('acquired here').stack : undefined;
    if (this.waiters.size === 0 && (ticket === undefined || this.admission?.mayHold(ticket) === true)) {
      const entry = this.takeIdle();
      if (entry) {
        const now = this.clock.now();
        if (!this.needsValidation(entry, now)) {
          this.checkout(entry, site, now);
          if (ticket !== undefined) this.admission?.checkedOut(entry, ticket, now, undefined);
          // pool.minIdle: replace the idle connection just taken (two numbers compared otherwise).
          if (this.registry.idleCount < this.options.minIdle) this.pump();
          return entry.asResolved() as Promise<E>;
        }
        // Idle for long: validate first; meanwhile this caller queues like any other, so the
        // validated connection (or another) reaches it in arrival order within its deadline.
        void this.revalidate(entry);
      }
    }
    // The circuit is open (lib/resilience): no idle connection served this caller and no open
    // would, so it fails now instead of at its deadline. One property read while it is closed.
    if (this.breaker.blocking) return Promise.reject(this.breaker.unavailableError());
    // maxWaiting bounds the callers queued for a release; callers an open can still serve do not count.
    if (this.registry.occupied >= this.options.max && this.uncovered() >= this.options.maxWaiting) {
      return Promise.reject(queueFullError(this.options.maxWaiting, this.gauges()));
    }
    return new Promise<E>((resolve, reject) => {
      const waiter = this.waiters.push(resolve, reject, timeoutMs, signal, waitMs);
      waiter.site = site;
      if (ticket !== undefined) this.admission?.enqueued(waiter, ticket);
      this.pump();
      // Saturated: at max, with callers that no open in flight or validation will serve.
      if (!this.saturated && this.uncovered() > 0 && this.registry.occupied >= this.options.max) {
        this.saturated = true;
        this.log.info(saturatedMessage(this.gauges()), { pool: this.name, waiting: this.waiters.size });
      }
    });
  }

  /** Waiting callers that no open in flight or record on its way will serve. */
  private uncovered(): number {
    return uncoveredWaiters(this.waiters.size, this.registry.pendingCount, this.incoming);
  }

  /** An idle record that is safe to hand out, or undefined; closes dead ones it meets. */
  private takeIdle(): E | undefined {
    for (let entry = this.registry.peekIdle(); entry; entry = this.registry.peekIdle()) {
      if (entry.broken === undefined) return entry;
      void this.destroy(entry, 'broken');
    }
    return undefined;
  }

  /** True when `entry` has been idle longer than `validationIdleThresholdMs` and must be checked first. */
  private needsValidation(entry: E, now: number): boolean {
    const threshold = this.options.validationIdleThresholdMs;
    return threshold > 0 && now - Math.max(entry.lastUsedMono, entry.lastPingMono) > threshold;
  }

  /**
   * Marks `entry` checked out at `now` (it may already be `inUse` when handed straight to a
   * waiter). The clock is read once per hand-out by the caller: each read costs ~60-100 ns.
   */
  private checkout(entry: E, site: string | undefined, now: number): void {
    if (entry.state !== 'inUse') this.registry.move(entry, 'inUse');
    entry.checkedOutMono = now;
    entry.lastUsedMono = now;
    entry.leases++;
    entry.acquiredAt = site;
    entry.leakReported = false;
    this.counters.acquired++;
    if (this.debugEnabled) this.log.debug(`Connection ${entry.id} checked out`, { pool: this.name, ...countsMeta(this.gauges()) });
  }

  /** Hands `entry` to a dequeued waiter. */
  private serve(waiter: Waiter<E>, entry: E, now: number = this.clock.now()): void {
    this.checkout(entry, waiter.site, now);
    const waitedMs = now - waiter.enqueuedMono;
    this.wait.count++;
    this.wait.totalMs += waitedMs;
    if (waitedMs > this.wait.maxMs) this.wait.maxMs = waitedMs;
    this.observer?.waited(waitedMs);
    if (waiter.ticket !== undefined) this.admission?.checkedOut(entry, waiter.ticket, now, waitedMs);
    if (this.saturated && this.waiters.size === 0) {
      this.saturated = false;
      if (this.debugEnabled) this.log.debug('Pool no longer saturated: every waiting caller was served', { pool: this.name });
    }
    waiter.resolve(entry);
  }

  protected onWaiterTimeout(waiter: Waiter<E>): void {
    this.counters.timedOut++;
    const error = this.timeoutError(waiter.timeoutMs);
    if (waiter.ticket !== undefined) this.admission?.timedOut(waiter, error);
    waiter.reject(error);
  }

  /** `E_ACQUIRE_TIMEOUT` for a caller whose `timeoutMs` ran out, with the counts and the longest holders. */
  private timeoutError(timeoutMs: number): Error {
    return acquireTimeoutError(this.name, timeoutMs, this.gauges(), this.longestHeld(3), this.lastConnectError);
  }

  protected onWaiterAbort(waiter: Waiter<E>): void {
    this.counters.aborted++;
    waiter.reject(abortedError(waiter.signal));
  }

  // ── release ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Gives a checked-out connection back. Dead, retired and (when closing) all connections are
   * closed; one left inside a transaction is rolled back before anyone else gets it.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when `entry` is not checked out from this pool.
   */
  release(entry: E): void {
    // The common case in one line (this pool's own record, checked out); everything else is
    // judged by releaseVerdict, which never throws itself.
    if (!(isOwnRecord<E>(this, entry) && entry.state === 'inUse')) {
      const verdict = releaseVerdict<E>(this, entry, this.state === 'open');
      if (verdict === IGNORE) return;
      if (verdict !== RELEASE) throw verdict;
    }
    this.counters.released++;
    const now = this.clock.now();
    entry.lastUsedMono = now;
    this.observer?.released?.(now - entry.checkedOutMono);
    if (entry.leakReported) {
      this.log.info(`Connection ${entry.id}, reported as a possible leak, was returned after ${Math.round(entry.lastUsedMono - entry.checkedOutMono)} ms`, { pool: this.name });
    }
    entry.acquiredAt = undefined;
    if (this.debugEnabled) this.log.debug(`Connection ${entry.id} released`, { pool: this.name });
    this.admission?.released(entry, now);
    this.place('release', entry, entry.broken === undefined && this.connector.inTransaction(entry.raw as C), now);
    // A release can free a quota for waiters other than the one it served: idle connections may serve them now.
    if (this.admission !== undefined) this.pump();
  }

  protected returnToPool(entry: E, now?: number): void {
    const waiter = this.admission === undefined ? this.waiters.shift() : this.nextAdmitted(now ?? this.clock.now());
    if (waiter) this.serve(waiter, entry, now);
    else this.registry.move(entry, 'idle');
  }

  /** The waiter admission picks for one free connection, taken off the queue; undefined when none may be served. */
  private nextAdmitted(now: number): Waiter<E> | undefined {
    const waiter = this.admission?.next(now);
    if (waiter !== undefined) this.waiters.remove(waiter);
    return waiter;
  }

  /** Puts admission (lib/admission) in charge of who is served next; set before any caller arrives. */
  useAdmission(policy: AdmissionPolicy<E>): void {
    this.admission = policy;
  }

  protected async rollbackThenReturn(entry: E): Promise<void> {
    this.registry.move(entry, 'reserved');
    this.log.warn(`Connection ${entry.id} was released inside a transaction; rolling it back before reuse`, { pool: this.name });
    let ok = false;
    try {
      await withTimeout(this.connector.rollback(entry.raw as C), this.options.validationTimeoutMs, this.clock, 'rollback');
      ok = !this.connector.inTransaction(entry.raw as C);
    } catch (error) {
      this.log.warn(`Rollback of connection ${entry.id} failed; closing it`, { pool: this.name, error: errorMessage(error) });
    }
    this.place(ok ? 'checked' : 'checkFailed', entry, false);
  }

  // ── the pump ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Matches idle connections to waiters in arrival order, then opens connections for the waiters
   * that pending opens will not cover and to keep `min` open — never past `max`.
   */
  pump(): void {
    if (this.state !== 'open') return;
    while (this.waiters.size > 0) {
      const entry = this.takeIdle();
      if (!entry) break;
      if (this.needsValidation(entry, this.clock.now())) void this.revalidate(entry);
      else if (this.admission === undefined) this.serve(this.waiters.shift() as Waiter<E>, entry);
      else {
        // Every waiter may be held back by its quota: the connection then stays idle.
        const waiter = this.nextAdmitted(this.clock.now());
        if (waiter === undefined) break;
        this.serve(waiter, entry);
      }
    }
    for (let i = this.need(); i > 0; i--) void this.openOne();
  }

  // ── ready / close ───────────────────────────────────────────────────────────────────────────

  /** Resolves once `min` connections are open; rejects with `E_CONNECT` if an open fails first. */
  ready(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    if (this.registry.openCount >= this.options.min) return Promise.resolve();
    // No open would start while the circuit is open: say so now, as the E_CONNECT ready() promises.
    if (this.breaker.blocking) return Promise.reject(connectError(this.name, this.breaker.unavailableError()));
    return this.openWaiters.ready(this.options.min);
  }

  /**
   * Closes the pool: waiters are rejected with `E_POOL_CLOSED`, idle connections closed now,
   * checked-out ones when released (or after `closeTimeoutMs`, by force). Resolves when every
   * server session is gone. It does not queue behind an admin operation in progress: that
   * operation sees the pool closing and ends early.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.state = 'closing';
    this.housekeeper.stop();
    this.breaker.stop();
    this.closePromise = new Promise<void>((resolve) => (this.closeResolve = resolve));
    this.log.info(`Closing pool (${describeCounts(this.gauges())})`, { pool: this.name });
    const error = this.closedError();
    for (const waiter of this.waiters.drain()) waiter.reject(error);
    this.waiters.stopTimers();
    this.openWaiters.closeAll(error);
    this.opener.wakeAll();
    for (const entry of this.registry.openEntries()) {
      if (entry.state === 'idle') void this.destroy(entry, 'poolClosed');
    }
    if (this.registry.busyCount > 0) {
      const began = this.clock.now();
      this.closeTimer = this.clock.setTimer(() => {
        this.closeTimer = undefined;
        const now = this.clock.now();
        for (const entry of this.registry.openEntries()) {
          this.log.warn(
            `Closing connection ${entry.id} by force: still checked out ${Math.round(now - began)} ms after close() began (held for ${Math.round(now - entry.checkedOutMono)} ms)`,
            { pool: this.name },
          );
          void this.destroy(entry, 'poolClosed');
        }
      }, this.options.closeTimeoutMs);
    }
    this.checkClosed();
    return this.closePromise;
  }

  protected checkClosed(): void {
    if (this.state !== 'closing' || this.registry.occupied > 0) return;
    this.state = 'closed';
    this.budget?.leave(this);
    if (this.closeTimer !== undefined) this.clock.clearTimer(this.closeTimer);
    this.log.info('Pool closed', { pool: this.name, created: this.counters.created, destroyed: this.counters.destroyed });
    this.closeResolve?.();
  }

  // ── stats ────────────────────────────────────────────────────────────────────────────────────

  /** A consistent snapshot of the pool. */
  stats(): PoolStats {
    return statsSnapshot(this.gauges(), this.counters, this.wait, this.registry.openEntries(), this.clock.now(), this.breaker.stats(), this.admission);
  }

  /** Checked-out connections, longest held first. */
  private longestHeld(limit: number): HeldConnection[] {
    return longestHeld(this.registry.openEntries(), this.clock.now(), limit);
  }

  /** Sets the one observer that receives wait and close events (metrics). */
  observe(observer: PoolObserver | undefined): void {
    this.observer = observer;
  }
}
