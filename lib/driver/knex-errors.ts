/**
 * Errors shaped for code written against knex. An acquire timeout on `manager.knex` (or `readKnex`)
 * is knex's own `KnexTimeoutError`, so `catch (e) { if (e instanceof KnexTimeoutError) … }` and
 * `e.sql` / `e.bindings` (which knex fills in for that class) work as with knex's pool, while it
 * keeps the manager's `code`, message and `cause`, so `isConnectionManagerError(e, 'E_ACQUIRE_TIMEOUT')`
 * holds too.
 */
import { KnexTimeoutError } from 'knex';
import { ERROR_BRAND, isConnectionManagerError, type ErrorCode } from '../errors';

/** An acquire timeout through knex: knex's class, the manager's code, message and cause. */
export class KnexAcquireTimeoutError extends KnexTimeoutError {
  /** Always `E_ACQUIRE_TIMEOUT`. */
  readonly code: ErrorCode = 'E_ACQUIRE_TIMEOUT';
  /** Recognised by `isConnectionManagerError`. */
  readonly [ERROR_BRAND] = true;
  /** The statement that was waiting for a connection, as knex sets it on its timeout errors. */
  sql?: string;
  /** Its bindings, likewise. */
  bindings?: readonly unknown[];

  constructor(original: Error) {
    super(original.message);
    // Keep knex's class name, as its own timeout has.
    this.name = 'KnexTimeoutError';
    if (original.cause !== undefined) this.cause = original.cause;
    if (original.stack !== undefined) this.stack = original.stack.replace(/^ConnectionManagerError/, 'KnexTimeoutError');
  }
}

/** What knex sees of a failed acquire: an acquire timeout becomes knex's class; anything else is unchanged. */
export function forKnex(error: unknown): never {
  if (isConnectionManagerError(error, 'E_ACQUIRE_TIMEOUT')) throw new KnexAcquireTimeoutError(error);
  throw error;
}

/**
 * True when knex gave up on the statement running on `raw`: its `.timeout()` fired and it marked
 * the session disposed with its timeout error. Nobody awaits that statement's result any more, so
 * it must not be run again elsewhere (a socket failure marks the session too, with another error).
 */
export function abandonedByKnex(raw: unknown): boolean {
  return (raw as { __knex__disposed?: unknown } | undefined)?.__knex__disposed instanceof KnexTimeoutError;
}
