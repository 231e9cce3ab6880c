/**
 * The record side of the pool: opening records and placing them when they arrive, noticing dead
 * ones and closing them. `PoolUpkeep` (upkeep.ts) extends it with the checks on a record and the
 * maintenance interface; `Pool` (pool.ts) extends that with the callers' side: acquire, release,
 * the pump, ready and close.
 *
 * Where a record goes is decided by `disposition()` alone and carried out by `place()`; every
 * closure goes through `destroy()`, which counts it by its reason.
 */
import type { Logger } from 'winston';
import type { ResolvedPoolOptions } from '../options';
import type { Clock } from './clock';
import { withTimeout } from './clock';
import type { Connector } from './connector';
import { isOpenState, type CloseReason, type PoolEntry } from './entry';
import { Registry, type RegistryCounts } from './registry';
import { newCounters, type PoolCounters, type PoolGauges, type WaitStats } from './stats';
import { WaiterQueue, type AdmissionPolicy, type Waiter } from './waiters';
import { nextConnectionNumber } from './sequence';
import { connectError, countsMeta, errorMessage, poolClosedError } from './messages';
import { CLOSE_COUNTER, disposition, type Disposition, type DispositionPoint } from './disposition';
import { Opener } from './opener';
import { OpenWaiters } from './open-waiters';
import type { BudgetMember, BudgetSeam, PoolConfig, PoolObserver } from './types';
import { createBreaker, type Breaker } from '../resilience/breaker';

export type PoolState = 'open' | 'closing' | 'closed';

/** The record side of a pool of connections of type `C`, recorded as entries of type `E`. */
export abstract class PoolRecords<C, E extends PoolEntry<C>> implements BudgetMember {
  readonly name: string;
  readonly options: ResolvedPoolOptions;
  protected readonly counters: PoolCounters = newCounters();
  protected readonly wait: WaitStats = { count: 0, totalMs: 0, maxMs: 0 };

  protected readonly registry = new Registry<C, E>();
  protected state: PoolState = 'open';
  protected readonly waiters: WaiterQueue<E>;
  protected readonly connector: Connector<C>;
  protected readonly clock: Clock;
  protected readonly log: Logger;
  protected readonly opener: Opener<C>;
  protected readonly openWaiters: OpenWaiters;
  /** Asked before each open; `blocking` is the one property acquire reads (lib/resilience). */
  protected readonly breaker: Breaker;
  protected debugEnabled: boolean;
  /**
   * Reserved records on their way to serve waiters (being validated before reuse): they count as
   * supply, so the pump does not open more for the callers they will serve.
   */
  protected incoming = 0;
  /** Metrics hook (see `observe`). */
  protected observer: PoolObserver | undefined;
  /** Admission (lib/admission), when configured; undefined keeps the plain FIFO path untouched. */
  protected admission: AdmissionPolicy<E> | undefined = undefined;
  private readonly random: () => number;
  private readonly createEntry: (pool: object) => E;
  /** Bumped by `resetPool()`: opens started before a reset are closed as soon as they finish. */
  protected generation = 0;
  /** The connection budget shared with other pools (lib/named-pools), when configured. */
  protected readonly budget: BudgetSeam | undefined;
  /** Opens in flight that a shrinking `resize()` closes on arrival (see upkeep.ts). */
  protected closeOnArrival = 0;

  constructor(config: PoolConfig<C, E>) {
    this.name = config.name;
    // Its own copy: `resize()` changes min and max of this pool only.
    this.options = { ...config.options };
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
    this.openWaiters = new OpenWaiters(this.clock);
    const host = {
      name: this.name,
      counters: this.counters,
      closedError: () => this.closedError(),
      isOpen: (): boolean => this.state === 'open',
      awaited: (): boolean => this.waiters.size > 0 || this.openWaiters.size > 0,
      openCount: (): number => this.registry.openCount,
    };
    const breakerHost = { name: this.name, isOpen: host.isOpen, tripped: (error: Error) => this.failWaiters(error), probe: () => void this.openOne() };
    this.breaker = createBreaker(config.circuitBreaker, breakerHost, config.retry, this.clock, this.log, this.random);
    this.opener = new Opener(host, this.connector, config.retry, this.options.createTimeoutMs, this.clock, this.log, this.random, this.breaker);
    this.budget = config.budget;
    this.budget?.join(this);
  }

  hasRoom(): boolean {
    return this.registry.occupied < this.options.max && (this.budget === undefined || this.budget.hasRoom(this));
  }

  /** True while the circuit breaker refuses new connections (open, or a probe in flight). */
  get circuitOpen(): boolean { return this.breaker.blocking; }
  /** The connector, for `injectFaults()` (knex-connection-manager/testing) only: its methods are wrapped there. */
  faultConnector(): Connector<C> { return this.connector; }
  /** Counts one retry of `manager.transaction()` / `withRetry()` (`counters.transactionRetries`). */
  noteRetry(): void { this.counters.transactionRetries++; }

  /**
   * Rejects every waiting caller with `error` now (the circuit opened: nothing will serve them
   * soon), and wakes opens sleeping in backoff so they give up instead of retrying.
   */
  failWaiters(error: Error): void {
    for (const waiter of this.waiters.drain()) waiter.reject(error);
    this.opener.wakeAll();
  }

  /** Matches idle records to waiters and starts the opens needed (pool.ts). */
  abstract pump(): void;
  /** The connection budget's questions (upkeep.ts; `waiting` in pool.ts). */
  abstract get waiting(): number;
  abstract need(): number;
  abstract longestIdleSince(evenAtMin: boolean): number | undefined;
  abstract reclaimIdle(evenAtMin: boolean): boolean;
  /** Gives a record in service to the oldest waiter, or makes it idle (pool.ts). */
  protected abstract returnToPool(entry: E, now?: number): void;
  /** Rolls a released record's transaction back, then decides again (pool.ts). */
  protected abstract rollbackThenReturn(entry: E): Promise<void>;
  /** Finishes `close()` once nothing is left (pool.ts). */
  protected abstract checkClosed(): void;
  protected abstract onWaiterTimeout(waiter: Waiter<E>): void;
  protected abstract onWaiterAbort(waiter: Waiter<E>): void;

  /** True until `close()` is called. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The registry's counts (read-only). */
  get counts(): RegistryCounts {
    return this.registry;
  }

  /** The most recent failure to open a connection (the `cause` of acquire timeouts). */
  get lastConnectError(): unknown {
    return this.opener.lastError;
  }

  /** The gauges now (what stats, log lines and error messages are built from). */
  protected gauges(): PoolGauges {
    const r = this.registry;
    return {
      min: this.options.min, max: this.options.max, total: r.openCount, idle: r.idleCount, inUse: r.busyCount,
      pending: r.pendingCount, closing: r.closingCount, waiting: this.waiters.size,
    };
  }

  protected closedError(): Error {
    return poolClosedError(this.name, this.state === 'closed');
  }

  /** Decides where `entry` goes at `point` and carries it out: close, roll back first, or back to service. */
  protected place(point: DispositionPoint, entry: E, inTransaction: boolean, now?: number): void {
    // The budget's claim is a question without side effects (one Set size read while no pool waits
    // on it); a close it causes is counted in closeRecord, whichever way it came.
    const claimed = this.budget !== undefined && point !== 'opened' && this.budget.claims(this);
    const decision: Disposition = disposition(point, entry, this.state === 'open', this.generation, inTransaction, claimed);
    if (decision.kind === 'close') void this.destroy(entry, decision.reason);
    else if (decision.kind === 'rollback') void this.rollbackThenReturn(entry);
    else this.returnToPool(entry, now);
  }

  // ── opening ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Opens one connection, if the pool is open, below `max`, the circuit allows and (with a
   * connection budget) a slot is free. `slotHeld`: the caller carries the budget slot of a record
   * it just closed (`replace`), so the replacement neither queues for one nor loses it.
   */
  openOne(slotHeld = false): Promise<E | undefined> {
    if (this.state !== 'open' || this.registry.occupied >= this.options.max || this.breaker.blocking) {
      if (slotHeld) this.budget?.give(this, false);
      return Promise.resolve(undefined);
    }
    // Over the manager's connection budget: the budget queues this pool and may reclaim a slot.
    if (!slotHeld && this.budget !== undefined && !this.budget.take(this)) return Promise.resolve(undefined);
    const entry = this.createEntry(this);
    entry.generation = this.generation;
    this.registry.addPending(entry);
    const startedMono = this.clock.now();
    return this.opener.open()
      .then(
        (raw) => {
          this.onOpened(entry, raw);
          return isOpenState(entry.state) ? entry : undefined;
        },
        (error: unknown) => {
          this.onOpenFailed(entry, error, startedMono);
          return undefined;
        },
      )
      .catch((error: unknown) => {
        this.logInternalError('after opening a connection', error);
        return undefined;
      });
  }

  private onOpened(entry: E, raw: C): void {
    this.opener.succeeded();
    if (this.state !== 'open') {
      this.registry.move(entry, 'closing');
      void this.closeRaw(raw, 'a connection opened during close').then(() => {
        this.registry.move(entry, 'closed');
        this.budget?.give(this, false);
        this.checkClosed();
      });
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
    // Arrives reserved (and enters the tree): placed below before any caller can see it.
    this.registry.move(entry, 'reserved');
    this.counters.created++;
    this.debugEnabled = this.log.isDebugEnabled();
    this.log.info(
      `New connection ${entry.id} created ${onDemand ? 'on demand' : 'to keep the minimum'} (total: ${this.registry.openCount}/${this.options.max})`,
      { pool: this.name, ...countsMeta(this.gauges()) },
    );
    if (this.closeOnArrival > 0) {
      this.closeOnArrival--;
      entry.retire = true;
      entry.retireReason = 'resized';
    }
    this.place('opened', entry, false);
    this.pump();
    this.openWaiters.settle(this.registry.openCount);
  }

  private onOpenFailed(entry: E, error: unknown, startedMono: number): void {
    this.registry.move(entry, 'closing');
    this.registry.move(entry, 'closed');
    this.budget?.give(this, false);
    // A failed open is one fewer for a shrinking resize() to close on arrival.
    if (this.closeOnArrival > this.registry.pendingCount) this.closeOnArrival = this.registry.pendingCount;
    if (this.state !== 'open') {
      this.checkClosed();
      return;
    }
    this.opener.failed();
    const failure = connectError(this.name, error);
    this.log.error(failure.message, { pool: this.name, ...countsMeta(this.gauges()) });
    // With nothing open, callers who waited through this whole attempt cannot be served soon:
    // tell them now rather than at their deadline. Later callers wait for the next attempt.
    if (this.registry.openCount === 0) {
      for (const waiter of this.waiters.enqueuedBy(startedMono)) {
        this.waiters.remove(waiter);
        waiter.reject(failure);
      }
    }
    this.openWaiters.failed(failure);
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
    if (entry.state === 'idle') void this.destroy(entry, 'broken');
  }

  // ── closing ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Closes a record now: out of the tree and the counts at once, socket closed in the background.
   * Every closure is counted here, by its reason's row in `CLOSE_COUNTER`. The returned promise
   * settles (never rejects) when the socket is closed.
   */
  destroy(entry: E, reason: CloseReason): Promise<void> {
    return this.closeRecord(entry, reason, undefined);
  }

  replace(entry: E, reason: CloseReason): Promise<E | undefined> {
    let replacement: Promise<E | undefined> | undefined;
    // The replacement starts in the same turn the slot frees, before the pump could take the slot;
    // it keeps the closed record's budget slot.
    return this.closeRecord(entry, reason, () => (replacement = this.openOne(true))).then(() => replacement);
  }

  /** `destroy()`, with `onClosed` run once the socket is closed, before the pump sees the free slot. */
  private closeRecord(entry: E, reason: CloseReason, onClosed: (() => void) | undefined): Promise<void> {
    if (!isOpenState(entry.state)) return Promise.resolve();
    this.registry.move(entry, 'closing');
    this.counters.destroyed++;
    const counter = CLOSE_COUNTER[reason];
    if (counter !== undefined) this.counters[counter]++;
    if (reason === 'reclaimed') this.budget?.reclaiming(this);
    this.observer?.closed(this.clock.now() - entry.createdMono, reason);
    this.log.info(`Connection ${entry.id} closed (${reason}) (total: ${this.registry.openCount}/${this.options.max})`, {
      pool: this.name,
      reason,
    });
    return this.closeRaw(entry.raw as C, entry.id).then(() => {
      this.registry.move(entry, 'closed');
      // A replacement (`onClosed`) keeps the slot; otherwise it goes back to the budget.
      if (onClosed === undefined) this.budget?.give(this, reason === 'reclaimed');
      else onClosed();
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

  logInternalError(where: string, error: unknown): void {
    this.log.error(`Internal error in ${where}: ${errorMessage(error)}`, { pool: this.name, stack: error instanceof Error ? error.stack : undefined });
  }
}
