/**
 * What maintenance may do to a pool: the housekeeper (lib/pool/housekeeper.ts) and the admin
 * operations (lib/pool/eviction.ts) drive the pool through this interface alone, never through
 * its registry or its callers' side (acquire, release). The pool implements it; the maintenance
 * files import only this type, so they and the pool never import each other in a loop.
 */
import type { ResolvedPoolOptions } from '../options';
import type { CloseReason, PoolEntry } from './entry';
import type { RegistryCounts } from './registry';

export interface PoolMaintenance<E extends PoolEntry<unknown>> {
  readonly name: string;
  readonly options: ResolvedPoolOptions;
  /** False once `close()` began. */
  readonly isOpen: boolean;
  /** The registry's counts. */
  readonly counts: RegistryCounts;

  /**
   * Runs `operation` under the pool's admin mutex: admin operations (reset, expire, renew) and the
   * housekeeping expiry sweep queue behind each other and never interleave, however many awaits
   * each of them contains. Acquire and release never take it.
   */
  exclusive<T>(operation: () => Promise<T>): Promise<T>;

  /** Open records (idle, checked out, reserved), oldest first (a snapshot walked from the B-tree). */
  openEntries(): E[];

  /**
   * Soft eviction: an idle record is closed now, a checked-out or reserved one is marked and closed
   * when it comes back. Returns false if `entry` is not open, or is checked out and already marked
   * (it then closes under the reason it was first marked for, and is counted once).
   */
  softEvict(entry: E, reason: CloseReason): boolean;
  /** Marks a record to be closed, under `reason`, the next time it would return to service. */
  markRetired(entry: E, reason: CloseReason): void;
  /** Takes a retire mark back (the record keeps serving). */
  unretire(entry: E): void;

  /** Closes an open record now; settles (never rejects) once its socket is closed. */
  destroy(entry: E, reason: CloseReason): Promise<void>;

  /**
   * Closes an open record now and, once its socket is closed, opens its replacement in the slot it
   * freed (before anything else can take it). Resolves with the replacement once in service, or
   * undefined if it could not be opened (after the pool's retries) or was not started.
   */
  replace(entry: E, reason: CloseReason): Promise<E | undefined>;

  /**
   * Validates an idle record out of reach of callers (reserved), then returns it to service or
   * closes it. Never rejects. The keepalive ping.
   */
  revalidate(entry: E): Promise<void>;

  /** Logs and counts every lease held past `leakDetectionThresholdMs`, once per lease. */
  reportLeaks(): void;

  /** Opens one connection if there is room below `max`: its record once in service, undefined if it failed or there was no room. */
  openOne(): Promise<E | undefined>;
  /**
   * True when one more connection may be opened now: below `max`, and, with a connection budget,
   * a slot of it is free for this pool. Renewal opens before it closes only then.
   */
  hasRoom(): boolean;

  /** The pump: serves waiters from idle records and starts the opens the waiters and `min` need (the refill). */
  pump(): void;

  /** Starts a new generation: records still being opened from before it are closed on arrival. */
  beginGeneration(): void;

  /**
   * Resolves true once at least `target` records are open, false if that does not happen within
   * `timeoutMs` or the pool closes first. Open failures do not end it: the pool keeps retrying.
   */
  whenOpen(target: number, timeoutMs: number): Promise<boolean>;

  /** The most recent failure to open a connection (cleared by the next success). */
  readonly lastConnectError: unknown;

  /** Logs an unexpected internal failure (a bug) without crashing the process. */
  logInternalError(where: string, error: unknown): void;
}
