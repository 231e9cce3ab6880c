/**
 * The pool's configuration and the shapes its users pass in: kept apart from the pool's logic so
 * the driver, the manager and the tests can name them without reading the pool.
 */
import type { Logger } from 'winston';
import type { ResolvedCircuitBreakerOptions, ResolvedPoolOptions, ResolvedRetryOptions } from '../options';
import type { Clock } from './clock';
import type { Connector } from './connector';
import type { CloseReason, PoolEntry } from './entry';

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
  /**
   * Tags of the caller (`{ tenant: 'acme' }`), merged over those of the enclosing
   * `manager.withTags()` scope; counted, limited and shown when `admission` is configured
   * (docs/admission.md). At most 16, keys 1-64 characters, values strings of at most 128.
   */
  tags?: Readonly<Record<string, string>>;
  /** Priority class: `'high'` is served before `'normal'` (the default) before `'low'` (with `admission`). */
  priority?: 'high' | 'normal' | 'low';
}
