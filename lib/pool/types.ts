/**
 * The pool's configuration and the shapes its users pass in: kept apart from the pool's logic so
 * the driver, the manager and the tests can name them without reading the pool.
 */
import type { Logger } from 'winston';
import type { ResolvedCircuitBreakerOptions, ResolvedPoolOptions, ResolvedRetryOptions } from '../options';
import type { Clock } from './clock';
import type { Connector } from './connector';
import type { CloseReason, PoolEntry } from './entry';
import type { RegistryCounts } from './registry';

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
  /** The circuit breaker (lib/resilience); off when undefined or `false`. */
  circuitBreaker?: ResolvedCircuitBreakerOptions | false;
  /** Random numbers in [0, 1) for backoff and lifetime jitter (replaceable in tests). */
  random?: () => number;
  /** The connection budget shared with the manager's other pools (lib/named-pools); none when undefined. */
  budget?: BudgetSeam;
}

/**
 * A pool as the connection budget sees it (lib/named-pools/budget.ts): its counts, what it would
 * open now if the budget allowed, and the two things the budget may ask of it.
 */
export interface BudgetMember {
  readonly name: string;
  readonly counts: RegistryCounts;
  readonly options: { readonly min: number };
  /** Callers waiting for a connection of this pool. */
  readonly waiting: number;
  /** Opens it would start now if the budget allowed (what its pump computes). */
  need(): number;
  /** Runs its pump: the budget calls it to hand a freed slot to this pool. */
  pump(): void;
  /**
   * When its longest-idle connection was last used (monotonic), or undefined when it has none to
   * give: only above `min`, unless `evenAtMin` (another pool's callers wait).
   */
  longestIdleSince(evenAtMin: boolean): number | undefined;
  /** Closes that connection (reason `reclaimed`) so another pool can open one; false when there is none. */
  reclaimIdle(evenAtMin: boolean): boolean;
}

/**
 * The one seam between a pool and the connection budget: a slot is taken before each open and
 * given back when the record is gone (closed, or its open failed); at release and after a check
 * the budget may claim the record for another pool. The budget decides; the pool only asks.
 */
export interface BudgetSeam {
  join(member: BudgetMember): void;
  leave(member: BudgetMember): void;
  /** True (and the slot is taken) when `member` may open one more connection now. */
  take(member: BudgetMember): boolean;
  /** True when `take(member)` would succeed now; takes nothing. */
  hasRoom(member: BudgetMember): boolean;
  /** A slot `member` held is free again; `reclaimed` when it was closed for another pool. */
  give(member: BudgetMember, reclaimed: boolean): void;
  /** True when `member` should close the record it is placing, for a pool waiting on the budget. No side effects. */
  claims(member: BudgetMember): boolean;
  /** `member` began closing a record for another pool (reason `reclaimed`); its slot comes back through `give`. */
  reclaiming(member: BudgetMember): void;
}

/** Receives pool events for metrics; called synchronously, must not throw or block. */
export interface PoolObserver {
  /** A caller waited `ms` before getting a connection (not called for immediate hand-outs). */
  waited(ms: number): void;
  /** A connection was closed at age `ageMs` for `reason`. */
  closed(ageMs: number, reason: CloseReason): void;
  /** A caller gave a connection back after holding it `heldMs` (OpenTelemetry's `use_time`). */
  released?(heldMs: number): void;
}

/** Options of one acquire. */
export interface AcquireOptions {
  /** Overall deadline in milliseconds (defaults to `pool.acquireTimeoutMs`). */
  timeoutMs?: number;
  /** Gives up waiting when this signal aborts. */
  signal?: AbortSignal;
  /**
   * Tags of the caller (`{ tenant: 'acme' }`), merged over those of the enclosing
   * `manager.withTags()` scope; counted, limited and shown when `admission` is configured
   * (docs/admission.md). At most 16, keys 1-64 characters, values strings of at most 128.
   */
  tags?: Readonly<Record<string, string>>;
  /** Priority class: `'high'` is served before `'normal'` (the default) before `'low'` (with `admission`). */
  priority?: 'high' | 'normal' | 'low';
}
