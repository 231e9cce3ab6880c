/**
 * The generic pool: acquire, release, close, and the pump. It knows nothing of knex or pg; the
 * `Connector` opens and closes connections, the `Registry` holds the records, the `WaiterQueue`
 * holds the callers.
 *
 * One pump: every event (release, open finished, caller added, close finished) ends in `pump()`,
 * the only place that matches idle connections to waiters and decides whether to open more
 * (connections being opened or closed count toward `max`).
 */
import type { Logger } from 'winston';
import { ConnectionManagerError } from '../errors';
import type { ResolvedPoolOptions, ResolvedRetryOptions } from '../options';
import type { Clock, TimerHandle } from './clock';
import type { Connector } from './connector';
import { isOpenState, type CloseReason, type PoolEntry } from './entry';
import { Registry } from './registry';
import { newCounters, type PoolCounters, type PoolStats, type WaitStats } from './stats';
import { WaiterQueue, type Waiter } from './waiters';
import { nextConnectionNumber } from './sequence';
import { connectBackoffMs } from './backoff';
import { Housekeeper } from './housekeeper';
import { abortedError, errorMessage, firstUserFrame } from './messages';
import { withTimeout } from './clock';
import { acquireRequest, type AcquireDeadline, type AcquireRequest } from './deadline';
import { IGNORE, isOwnRecord, RELEASE, releaseVerdict } from './ownership';

/** Everything a pool is built from. */
export interface PoolConfig<C, E extends PoolEntry<C>> {
  /** Shown in log lines (`primary`, a replica's name). */
  name: string;
  options: ResolvedPoolOptions;
  retry: ResolvedRetryOptions;
  connector: Connector<C>;
  clock: Clock;
  logger: Logger;
  /** Makes an empty record (state `creating`) owned by `pool`. */
  createEntry(pool: object): E;
  /** Random numbers in [0, 1) for backoff and lifetime jitter (replaceable in tests). */
  random?: () => number;
}

/** Receives pool events for metrics; called synchronously, must not throw or block. */
export interface PoolObserver {
  /** A caller waited `ms` before getting a connection (not called for immediate hand-outs). */
  waited(ms: number): void;
  /** A connection was closed at age `ageMs` for `reason`. */
  closed(ageMs: number, reason: CloseReason): void;
}

/** Options of one acquire. */
export interface AcquireOptions {
  /** Overall deadline in milliseconds (defaults to `pool.acquireTimeoutMs`). */
  timeoutMs?: number;
  /** Gives up waiting when this signal aborts. */
  signal?: AbortSignal;
}

type PoolState = 'open' | 'closing' | 'closed';

/** A pool of connections of type `C`, recorded as entries of type `E`. */
export class Pool<C, E extends PoolEntry<C>> {
  readonly name: string;
  readonly options: ResolvedPoolOptions;
  readonly registry = new Registry<C, E>();
  readonly counters: PoolCounters = newCounters();
  readonly wait: WaitStats = { count: 0, totalMs: 0, maxMs: 0 };
  /** The most recent failure to open a connection (the `cause` of acquire timeouts). */
  lastConnectError: unknown = undefined;

  private state: PoolState = 'open';
  private readonly waiters: WaiterQueue<E>;
  private readonly connector: Connector<C>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly retry: ResolvedRetryOptions;
  private readonly random: () => number;
  private readonly createEntry: (pool: object) => E;
  /** Consecutive failed opens; delays the next open (no tight loop while the database is down). */
  private failureStreak = 0;
  /** The pool is at `max` with callers waiting; logged once per episode. */
  private saturated = false;
  private debugEnabled: boolean;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Backoff sleeps in progress, woken early by `close()`. */
  private readonly sleepers = new Set<{ timer: TimerHandle; wake: () => void }>();
  private closePromise: Promise<void> | undefined;
  private closeResolve: (() => void) | undefined;
  private closeTimer: TimerHandle | undefined;
  /**
   * Reserved records on their way to serve waiters (just opened, or being validated before reuse):
   * they count as supply, so the pump does not open more for the callers they will serve.
   */
  private incoming = 0;
  private readonly housekeeper: Housekeeper<C, E>;
  /** Metrics hook (see `observe`). */
  private observer: PoolObserver | undefined;
  /** Bumped by `resetPool()`: opens started before a reset are closed as soon as they finish. */
  private generation = 0;

  constructor(config: PoolConfig<C, E>) {
    this.name = config.name;
    this.options = config.options;
    this.retry = config.retry;
    this.connector = config.connector;
    this.clock = config.clock;
    this.log = config.logger;
    this.random = config.random ?? Math.random;
    this.createEntry = config.createEntry;
    this.debugEnabled = this.log.isDebugEnabled();
    this.waiters = new WaiterQueue<E>(this.clock, {
      onTimeout: (w) => this.onWaiterTimeout(w),
      onAbort: (w) => this.onWaiterAbort(w),
    });
    this.housekeeper = new Housekeeper(this, this.clock);
    this.housekeeper.start();
    this.pump();
  }

  /** True until `close()` is called. */
  get isOpen(): boolean {
    return this.state === 'open';
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
    let request: AcquireRequest;
    try {
      request = acquireRequest(options, this.options.acquireTimeoutMs, this.clock);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.state !== 'open') return Promise.reject(this.closedError());
    const { timeoutMs, waitMs, signal } = request;
    if (signal?.aborted) {
      this.counters.aborted++;
      return Promise.reject(abortedError(signal));
    }
    if (waitMs <= 0) {
      this.counters.timedOut++;
      return Promise.reject(this.timeoutError(timeoutMs));
    }
    // Where the caller asked, for leak reports; costs a stack capture, so only when enabled.
    const site = this.options.leakDetectionThresholdMs > 0 ? new Error('acquired here').stack : undefined;
    if (this.waiters.size === 0) {
      const entry = this.takeIdle();
      if (entry) {
        const now = this.clock.now();
        if (!this.needsValidation(entry, now)) {
          this.checkout(entry, site, now);
          return entry.asResolved() as Promise<E>;
        }
        // Idle for long: validate first; meanwhile this caller queues like any other, so the
        // validated connection (or another) reaches it in arrival order within its deadline.
        void this.revalidate(entry);
      }
    }
    // maxWaiting bounds the callers queued for a release; callers an open can still serve do not count.
    if (
      this.registry.occupied >= this.options.max &&
      this.waiters.size - this.registry.pendingCount - this.incoming >= this.options.maxWaiting
    ) {
      return Promise.reject(new ConnectionManagerError(
        'E_QUEUE_FULL',
        `Too many callers waiting for a connection (${this.waiters.size}, pool.maxWaiting=${this.options.maxWaiting}; ${this.describeCounts()}). Shed load or raise pool.maxWaiting / pool.max.`,
      ));
    }
    return new Promise<E>((resolve, reject) => {
      this.waiters.push(resolve, reject, timeoutMs, signal, waitMs).site = site;
      this.pump();
      // Saturated: at max, with callers that no open in flight or validation will serve.
      const uncovered = this.waiters.size - this.registry.pendingCount - this.incoming;
      if (!this.saturated && uncovered > 0 && this.registry.occupied >= this.options.max) {
        this.saturated = true;
        this.log.info(
          `Pool at maximum limit (${this.registry.occupied}/${this.options.max}), waiting for available connection…`,
          { pool: this.name, waiting: this.waiters.size },
        );
      }
    });
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
    if (this.debugEnabled) this.log.debug(`Connection ${entry.id} checked out`, { pool: this.name, ...this.countsMeta() });
  }

  /** Hands `entry` to a dequeued waiter. */
  private serve(waiter: Waiter<E>, entry: E, now: number = this.clock.now()): void {
    this.checkout(entry, waiter.site, now);
    const waitedMs = now - waiter.enqueuedMono;
    this.wait.count++;
    this.wait.totalMs += waitedMs;
    if (waitedMs > this.wait.maxMs) this.wait.maxMs = waitedMs;
    this.observer?.waited(waitedMs);
    if (this.saturated && this.waiters.size === 0) {
      this.saturated = false;
      if (this.debugEnabled) this.log.debug('Pool no longer saturated: every waiting caller was served', { pool: this.name });
    }
    waiter.resolve(entry);
  }

  private onWaiterTimeout(waiter: Waiter<E>): void {
    this.counters.timedOut++;
    waiter.reject(this.timeoutError(waiter.timeoutMs));
  }

  private onWaiterAbort(waiter: Waiter<E>): void {
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
    const verdict = releaseVerdict(this, this.registry, entry, this.state === 'open');
    if (verdict !== RELEASE) {
      if (verdict === IGNORE) return;
      throw verdict;
    }
    this.counters.released++;
    const now = this.clock.now();
    entry.lastUsedMono = now;
    if (entry.leakReported) {
      this.log.info(`Connection ${entry.id}, reported as a possible leak, was returned after ${Math.round(entry.lastUsedMono - entry.checkedOutMono)} ms`, { pool: this.name });
    }
    entry.acquiredAt = undefined;
    if (this.debugEnabled) this.log.debug(`Connection ${entry.id} released`, { pool: this.name });
    if (entry.broken !== undefined) {
      this.counters.validationFailures++;
      void this.destroy(entry, 'broken');
    } else if (this.state !== 'open') {
      void this.destroy(entry, 'poolClosed');
    } else if (entry.retire) {
      void this.destroy(entry, entry.retireReason);
    } else if (this.connector.inTransaction(entry.raw as C)) {
      void this.rollbackThenReturn(entry);
    } else {
      this.returnToPool(entry, now);
    }
  }

  /** Gives an `inUse` or `reserved` record to the oldest waiter, or makes it idle. */
  private returnToPool(entry: E, now?: number): void {
    const waiter = this.waiters.shift();
    if (waiter) this.serve(waiter, entry, now);
    else this.registry.move(entry, 'idle');
  }

  private async rollbackThenReturn(entry: E): Promise<void> {
    this.registry.move(entry, 'reserved');
    this.log.warn(`Connection ${entry.id} was released inside a transaction; rolling it back before reuse`, { pool: this.name });
    let ok = false;
    try {
      await withTimeout(this.connector.rollback(entry.raw as C), this.options.validationTimeoutMs, this.clock, 'rollback');
      ok = !this.connector.inTransaction(entry.raw as C);
    } catch (error) {
      this.log.warn(`Rollback of connection ${entry.id} failed; closing it`, { pool: this.name, error: errorMessage(error) });
    }
    this.settleReserved(entry, ok);
  }

  /**
   * Where a reserved record goes after the pool's own work on it (rollback, validation): closed
   * if that work failed, the driver reported it dead, the pool is closing or it was retired;
   * otherwise to the oldest waiter, or idle.
   */
  private settleReserved(entry: E, ok: boolean): void {
    if (!ok || entry.broken !== undefined) {
      this.counters.validationFailures++;
      void this.destroy(entry, 'validation');
    } else if (this.state !== 'open') {
      void this.destroy(entry, 'poolClosed');
    } else if (entry.retire) {
      void this.destroy(entry, entry.retireReason);
    } else {
      this.returnToPool(entry);
    }
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
      else this.serve(this.waiters.shift() as Waiter<E>, entry);
    }
    const registry = this.registry;
    const need = Math.max(
      this.waiters.size - registry.pendingCount - this.incoming,
      this.options.min - registry.openCount - registry.pendingCount,
    );
    if (need <= 0) return;
    const room = this.options.max - registry.occupied;
    for (let i = Math.min(need, room); i > 0; i--) void this.startOpen();
  }

  // ── opening ──────────────────────────────────────────────────────────────────────────────────

  /** Starts opening one connection; resolves with its record once it is idle (undefined if it failed). */
  startOpen(): Promise<E | undefined> {
    if (this.state !== 'open' || this.registry.occupied >= this.options.max) return Promise.resolve(undefined);
    const entry = this.createEntry(this);
    entry.generation = this.generation;
    this.registry.addPending(entry);
    const startedMono = this.clock.now();
    return this.openWithRetry()
      .then(
        async (raw) => {
          await this.onOpened(entry, raw);
          return entry.state === 'closing' || entry.state === 'closed' ? undefined : entry;
        },
        (error: unknown) => {
          this.onOpenFailed(entry, error, startedMono);
          return undefined;
        },
      )
      .catch((error: unknown) => {
        this.log.error(`Internal error after opening a connection: ${errorMessage(error)}`, { pool: this.name });
        return undefined;
      });
  }

  /** Opens one connection: up to `retry.attempts` tries with exponential backoff and jitter. */
  private async openWithRetry(): Promise<C> {
    let delayMs = this.failureStreak > 0 ? connectBackoffMs(this.failureStreak, this.retry, this.random) : 0;
    for (let attempt = 1; ; attempt++) {
      if (delayMs > 0) await this.sleep(delayMs);
      if (this.state !== 'open') throw this.closedError();
      try {
        return await this.connector.open(this.options.createTimeoutMs);
      } catch (error) {
        this.counters.createErrors++;
        this.lastConnectError = error;
        const retryable = this.connector.isRetryable(error);
        const last = !retryable || attempt >= this.retry.attempts || this.state !== 'open';
        this.log.warn(
          `Connection attempt ${attempt}/${this.retry.attempts} failed: ${errorMessage(error)}${last ? '' : '; retrying'}`,
          { pool: this.name, retryable },
        );
        if (last) throw error;
        // Consecutive failures of earlier opens count too: during an outage every retry waits
        // the grown delay, instead of starting over from initialDelayMs with each new open.
        delayMs = connectBackoffMs(this.failureStreak + attempt, this.retry, this.random);
      }
    }
  }

  private async onOpened(entry: E, raw: C): Promise<void> {
    this.failureStreak = 0;
    this.lastConnectError = undefined;
    if (this.state !== 'open') {
      this.registry.move(entry, 'closing');
      await this.closeRaw(raw, 'a connection opened during close');
      this.registry.move(entry, 'closed');
      this.checkClosed();
      return;
    }
    const now = this.clock.now();
    const lifetime = this.options.maxLifetimeMs;
    // Up to 2.5% off each lifetime, so connections opened together do not all expire together.
    entry.expiresMono = lifetime > 0 ? now + lifetime - this.random() * lifetime * 0.025 : Number.POSITIVE_INFINITY;
    entry.seq = nextConnectionNumber();
    entry.id = `conn_${entry.seq}_${this.clock.wallNowNs()}`;
    entry.createdMono = entry.lastUsedMono = now;
    entry.wallOffset = this.clock.wallNow() - now;
    entry.attach(raw);
    this.connector.watch(raw, (error) => this.onBroken(entry, error));
    const onDemand = this.waiters.size > 0;
    this.incoming++;
    try {
      await this.registry.insert(entry);
    } finally {
      this.incoming--;
    }
    this.counters.created++;
    this.debugEnabled = this.log.isDebugEnabled();
    this.log.info(
      `New connection ${entry.id} created ${onDemand ? 'on demand' : 'to keep the minimum'} (total: ${this.registry.openCount}/${this.options.max})`,
      { pool: this.name, ...this.countsMeta() },
    );
    // Still reserved: decide before any caller can see it.
    if (entry.broken !== undefined) void this.destroy(entry, 'broken');
    else if (this.state !== 'open') void this.destroy(entry, 'poolClosed');
    else if (entry.generation < this.generation) void this.destroy(entry, 'reset');
    else this.returnToPool(entry);
    this.pump();
    this.settleReady();
  }

  private onOpenFailed(entry: E, error: unknown, startedMono: number): void {
    this.registry.move(entry, 'closing');
    this.registry.move(entry, 'closed');
    if (this.state !== 'open') {
      this.checkClosed();
      return;
    }
    this.failureStreak++;
    const failure = new ConnectionManagerError(
      'E_CONNECT',
      `Could not open a connection to the database (pool "${this.name}"): ${errorMessage(error)}. Check that the server is up and the connection settings are right; the pool keeps retrying with backoff.`,
      { cause: error },
    );
    this.log.error(failure.message, { pool: this.name, ...this.countsMeta() });
    // With nothing open, callers who waited through this whole attempt cannot be served soon:
    // tell them now rather than at their deadline. Later callers wait for the next attempt.
    if (this.registry.openCount === 0) {
      for (const waiter of this.waiters.enqueuedBy(startedMono)) {
        this.waiters.remove(waiter);
        waiter.reject(failure);
      }
    }
    const ready = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of ready) r.reject(failure);
    this.pump();
  }

  /** Called by the connector when the driver reports the connection dead. */
  private onBroken(entry: E, error: unknown): void {
    if (entry.broken !== undefined) return;
    entry.broken = error ?? new Error('connection ended');
    if (entry.state === 'closing' || entry.state === 'closed') return;
    this.log.warn(`Connection ${entry.id} reported dead by the driver (${errorMessage(error)}); it will not be handed out again`, {
      pool: this.name,
      state: entry.state,
    });
    if (entry.state === 'idle') {
      this.counters.validationFailures++;
      void this.destroy(entry, 'broken');
    }
  }

  // ── soft eviction ───────────────────────────────────────────────────────────────────────────

  /**
   * The one mechanism behind reset, expire and renew: an idle connection is closed now, a checked
   * out (or reserved) one is marked and closed when it comes back. Returns false if `entry` is
   * not open.
   */
  softEvict(entry: E, reason: CloseReason): boolean {
    if (entry.state === 'idle') {
      void this.destroy(entry, reason);
      return true;
    }
    if (entry.state === 'inUse' || entry.state === 'reserved') {
      entry.retire = true;
      entry.retireReason = reason;
      return true;
    }
    return false;
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
    this.settleReserved(entry, ok);
    this.pump();
  }

  /** Keepalive ping of an idle connection (see `revalidate`). */
  ping(entry: E): Promise<void> {
    return this.revalidate(entry);
  }

  /** Logs every lease held past `leakDetectionThresholdMs` once, with where it was acquired. */
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
      this.log.warn(
        `Possible connection leak: ${entry.id} has been checked out for ${Math.round(heldMs)} ms (pool.leakDetectionThresholdMs=${threshold}). Acquired at:\n${entry.acquiredAt ?? '(stack not recorded)'}`,
        { pool: this.name, id: entry.id, heldMs: Math.round(heldMs), acquiredAt: entry.acquiredAt },
      );
    }
  }

  /** Logs an unexpected internal failure (a bug) without crashing the process. */
  logInternalError(where: string, error: unknown): void {
    this.log.error(`Internal error in ${where}: ${errorMessage(error)}`, { pool: this.name, stack: error instanceof Error ? error.stack : undefined });
  }

  /** Sets the one observer that receives wait and close events (metrics). */
  observe(observer: PoolObserver | undefined): void {
    this.observer = observer;
  }

  /** Runs the housekeeping round now (expiry sweep, leak report, keepalive pings, refill). */
  housekeep(): Promise<void> {
    return this.housekeeper.tick();
  }

  /** Starts a new generation: connections still being opened from before it are closed on arrival. */
  beginGeneration(): void {
    this.generation++;
  }

  /** True when `entry` belongs to this pool and is open. */
  owns(entry: unknown): entry is E {
    return isOwnRecord(this.registry, entry) && isOpenState(entry.state);
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
      if (entry.state === 'idle') {
        this.counters.validationFailures++;
        void this.destroy(entry, 'validation');
      }
    }
    return ok;
  }

  // ── closing connections ─────────────────────────────────────────────────────────────────────

  /**
   * Closes a record now: out of the tree and the counts at once, socket closed in the background.
   * The returned promise settles (never rejects) when the socket is closed.
   */
  destroy(entry: E, reason: CloseReason): Promise<void> {
    if (!isOpenState(entry.state)) return Promise.resolve();
    this.registry.move(entry, 'closing');
    this.counters.destroyed++;
    this.observer?.closed(this.clock.now() - entry.createdMono, reason);
    if (reason === 'expired') this.counters.expired++;
    else if (reason === 'idle') this.counters.idleClosed++;
    else if (reason === 'renewed') this.counters.renewed++;
    void this.registry.remove(entry);
    this.log.info(`Connection ${entry.id} closed (${reason}) (total: ${this.registry.openCount}/${this.options.max})`, {
      pool: this.name,
      reason,
    });
    return this.closeRaw(entry.raw as C, entry.id).then(() => {
      this.registry.move(entry, 'closed');
      this.pump();
      this.checkClosed();
    });
  }

  /** Closes a driver connection, bounded in time; never rejects. */
  private async closeRaw(raw: C, label: string): Promise<void> {
    try {
      await withTimeout(this.connector.close(raw), this.options.validationTimeoutMs, this.clock, 'close');
    } catch (error) {
      this.log.warn(`Closing ${label} failed: ${errorMessage(error)}`, { pool: this.name });
    }
  }

  // ── ready / close ───────────────────────────────────────────────────────────────────────────

  /** Resolves once `min` connections are open; rejects with `E_CONNECT` if an open fails first. */
  ready(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    if (this.registry.openCount >= this.options.min) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private settleReady(): void {
    if (this.readyWaiters.length === 0 || this.registry.openCount < this.options.min) return;
    const ready = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of ready) r.resolve();
  }

  /**
   * Closes the pool: waiters are rejected with `E_POOL_CLOSED`, idle connections closed now,
   * checked-out ones when released (or after `closeTimeoutMs`, by force). Resolves when every
   * server session is gone.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.state = 'closing';
    this.housekeeper.stop();
    this.closePromise = new Promise<void>((resolve) => (this.closeResolve = resolve));
    this.log.info(`Closing pool (${this.describeCounts()})`, { pool: this.name });
    const error = this.closedError();
    for (const waiter of this.waiters.drain()) waiter.reject(error);
    this.waiters.stopTimers();
    const ready = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of ready) r.reject(error);
    for (const sleeper of this.sleepers) {
      this.clock.clearTimer(sleeper.timer);
      sleeper.wake();
    }
    this.sleepers.clear();
    for (const entry of this.registry.openEntries()) {
      if (entry.state === 'idle') void this.destroy(entry, 'poolClosed');
    }
    if (this.registry.busyCount > 0) {
      this.closeTimer = this.clock.setTimer(() => {
        this.closeTimer = undefined;
        for (const entry of this.registry.openEntries()) {
          this.log.warn(`Closing connection ${entry.id} by force: still checked out ${Math.round(this.clock.now() - entry.checkedOutMono)} ms after close() began`, { pool: this.name });
          void this.destroy(entry, 'poolClosed');
        }
      }, this.options.closeTimeoutMs);
    }
    this.checkClosed();
    return this.closePromise;
  }

  private checkClosed(): void {
    if (this.state !== 'closing' || this.registry.occupied > 0) return;
    this.state = 'closed';
    if (this.closeTimer !== undefined) this.clock.clearTimer(this.closeTimer);
    this.log.info('Pool closed', { pool: this.name, created: this.counters.created, destroyed: this.counters.destroyed });
    this.closeResolve?.();
  }

  // ── stats and messages ──────────────────────────────────────────────────────────────────────

  /** A consistent snapshot of the pool. */
  stats(): PoolStats {
    const now = this.clock.now();
    const registry = this.registry;
    return {
      min: this.options.min,
      max: this.options.max,
      total: registry.openCount,
      idle: registry.idleCount,
      inUse: registry.busyCount,
      pending: registry.pendingCount,
      waiting: this.waiters.size,
      counters: { ...this.counters },
      wait: { ...this.wait },
      connections: registry.openEntries().map((e) => ({
        id: e.id,
        createdAt: e.createdAt,
        lastUsed: e.lastUsed,
        inUse: e.inUse,
        ageMs: Math.max(0, now - e.createdMono),
        idleMs: e.state === 'idle' ? Math.max(0, now - e.lastUsedMono) : 0,
      })),
    };
  }

  private countsMeta(): Record<string, number> {
    const r = this.registry;
    return { total: r.openCount, idle: r.idleCount, inUse: r.busyCount, pending: r.pendingCount, waiting: this.waiters.size, max: this.options.max };
  }

  private describeCounts(): string {
    const r = this.registry;
    return `total=${r.openCount}, idle=${r.idleCount}, inUse=${r.busyCount}, pending=${r.pendingCount}, waiting=${this.waiters.size}, max=${this.options.max}`;
  }

  /** Checked-out connections, longest held first. */
  longestHeld(limit: number): Array<{ id: string; heldMs: number; acquiredAt: string | undefined }> {
    const now = this.clock.now();
    return this.registry
      .openEntries()
      .filter((e) => e.state === 'inUse')
      .map((e) => ({ id: e.id, heldMs: Math.round(now - e.checkedOutMono), acquiredAt: e.acquiredAt }))
      .sort((a, b) => b.heldMs - a.heldMs)
      .slice(0, limit);
  }

  private timeoutError(timeoutMs: number): ConnectionManagerError {
    const held = this.longestHeld(3)
      .map((h) => `${h.id} for ${h.heldMs} ms${h.acquiredAt ? ` (acquired ${firstUserFrame(h.acquiredAt)})` : ''}`)
      .join('; ');
    const last = this.lastConnectError === undefined ? '' : ` Last connection error: ${errorMessage(this.lastConnectError)}.`;
    return new ConnectionManagerError(
      'E_ACQUIRE_TIMEOUT',
      `Timed out after ${timeoutMs} ms waiting for a connection (pool "${this.name}": ${this.describeCounts()}).` +
        (held ? ` Longest held: ${held}.` : '') +
        last +
        ' Release connections sooner, raise pool.max, or raise the timeout.',
      this.lastConnectError === undefined ? undefined : { cause: this.lastConnectError },
    );
  }

  private closedError(): ConnectionManagerError {
    return new ConnectionManagerError(
      'E_POOL_CLOSED',
      `The connection pool "${this.name}" is ${this.state === 'closed' ? 'closed' : 'closing'}. Call getConnectionInstance() again to create a new manager.`,
    );
  }

  /** Waits `ms` on the pool's clock; `close()` wakes every sleeper early. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: undefined as TimerHandle,
        wake: (): void => {
          this.sleepers.delete(sleeper);
          resolve();
        },
      };
      // Someone awaiting ready() or a connection keeps the process alive through the backoff.
      sleeper.timer = this.clock.setTimer(sleeper.wake, ms, this.waiters.size > 0 || this.readyWaiters.length > 0);
      this.sleepers.add(sleeper);
    });
  }
}
