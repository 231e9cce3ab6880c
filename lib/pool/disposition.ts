/**
 * Where a record goes next, decided in one place for the three moments the pool decides it:
 * at release, after the pool's own work on it (rollback, borrow validation, keepalive ping), and
 * when it has just opened. And which counter each close reason lands in, in one table that
 * `Pool.destroy()` applies to every closure, so a reason is counted the same wherever it arises.
 *
 * Pure functions of the record's marks and the pool's state, so they are tested as tables. The
 * results are shared constants: deciding allocates nothing (release is on the hot path).
 */
import type { CloseReason, PoolEntry } from './entry';
import type { PoolCounters } from './stats';

/** What happens to a record: closed for a reason, rolled back first, or returned to service. */
export type Disposition =
  | { readonly kind: 'close'; readonly reason: CloseReason }
  | { readonly kind: 'rollback' }
  | { readonly kind: 'return' };

/**
 * The moment of the decision:
 * - `release`: the caller gave it back;
 * - `checked`: the pool's rollback or validation of it succeeded;
 * - `checkFailed`: that rollback or validation failed or timed out;
 * - `opened`: it has just opened and arrived `reserved`.
 */
export type DispositionPoint = 'release' | 'checked' | 'checkFailed' | 'opened';

/** The marks of a record the decision reads. */
export type DispositionInput = Pick<PoolEntry<unknown>, 'broken' | 'retire' | 'retireReason' | 'generation'>;

const RETURN: Disposition = Object.freeze({ kind: 'return' });
const ROLLBACK: Disposition = Object.freeze({ kind: 'rollback' });

const CLOSE_REASONS: readonly CloseReason[] = [
  'broken', 'validation', 'retired', 'expired', 'idle', 'renewed', 'reset', 'poolClosed', 'createAbandoned', 'disposed', 'reclaimed', 'resized',
];

/** One frozen close decision per reason, made once. */
const CLOSE = Object.fromEntries(
  CLOSE_REASONS.map((reason) => [reason, Object.freeze({ kind: 'close', reason })]),
) as Readonly<Record<CloseReason, Disposition>>;

/**
 * Decides where `entry` goes. In order: a failed check or a dead connection is closed (`validation`
 * after a check, `broken` otherwise); everything is closed while the pool is closing; a retired
 * record is closed under its retire reason; one opened before the latest reset is closed (`reset`);
 * one the connection budget claims for another pool is closed (`reclaimed`: closing also ends a
 * transaction left open); one released inside a transaction is rolled back first; everything else
 * returns to service (the oldest waiter, or idle).
 * @param generation the pool's current generation (see `Pool.beginGeneration`).
 * @param inTransaction the session is inside a transaction (read only at `release`).
 * @param claimed the connection budget claims this record's slot for another pool (never at `opened`).
 */
export function disposition(
  point: DispositionPoint,
  entry: DispositionInput,
  poolOpen: boolean,
  generation: number,
  inTransaction: boolean,
  claimed = false,
): Disposition {
  if (point === 'checkFailed') return CLOSE.validation;
  if (entry.broken !== undefined) return point === 'checked' ? CLOSE.validation : CLOSE.broken;
  if (!poolOpen) return CLOSE.poolClosed;
  if (entry.retire) return CLOSE[entry.retireReason];
  if (entry.generation < generation) return CLOSE.reset;
  if (claimed && point !== 'opened') return CLOSE.reclaimed;
  if (point === 'release' && inTransaction) return ROLLBACK;
  return RETURN;
}

/**
 * The counter each close reason adds to (besides `destroyed`, which every closure adds to).
 * A dead connection counts as a validation failure wherever it is found: at release, on arrival,
 * at checkout, or by the driver while idle; so does one the driver disposed of (`disposed`).
 */
export const CLOSE_COUNTER: Readonly<Record<CloseReason, keyof PoolCounters | undefined>> = {
  broken: 'validationFailures',
  validation: 'validationFailures',
  expired: 'expired',
  idle: 'idleClosed',
  renewed: 'renewed',
  retired: undefined,
  reset: undefined,
  poolClosed: undefined,
  createAbandoned: undefined,
  // The driver gave up on the session (a query timed out without being cancelled and may still be
  // running): like a dead connection, it must never be lent again.
  disposed: 'validationFailures',
  // Closed to give its slot of the connection budget to another pool (lib/named-pools).
  reclaimed: 'reclaimed',
  // Closed by a shrinking resize() (counted only in `destroyed`).
  resized: undefined,
};
