/**
 * Every error the library throws is a {@link ConnectionManagerError} with a stable `code`.
 * Scripts branch on `code`; the message is for humans and may change between versions.
 */

/** The stable error codes. See docs/errors.md for when each is raised and whether to retry. */
export type ErrorCode =
  | 'E_INVALID_CONFIG'
  | 'E_CONFIG_CONFLICT'
  | 'E_ACQUIRE_TIMEOUT'
  | 'E_ABORTED'
  | 'E_POOL_CLOSED'
  | 'E_NOT_CHECKED_OUT'
  | 'E_CONNECT'
  | 'E_QUEUE_FULL'
  | 'E_RATE_LIMITED'
  | 'E_DB_UNAVAILABLE'
  | 'E_COMMIT_UNKNOWN'
  | 'E_UNKNOWN_POOL'
  | 'E_TOO_MANY_POOLS';

/**
 * Marks an error the library made that is not a {@link ConnectionManagerError} by class, because it
 * must also be another library's class (an acquire timeout through knex is knex's
 * `KnexTimeoutError`). Registered, so every copy of the package recognises it.
 */
export const ERROR_BRAND: unique symbol = Symbol.for('knex-connection-manager.error') as never;

/** Base class of every error thrown by the library. */
export class ConnectionManagerError extends Error {
  /** Stable machine-readable code; see {@link ErrorCode}. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = 'ConnectionManagerError';
  }
}

/** Bad option values or unknown option keys. Not retryable: fix the configuration. */
export function invalidConfig(option: string, problem: string, fix: string): ConnectionManagerError {
  return new ConnectionManagerError('E_INVALID_CONFIG', `Invalid option "${option}": ${problem}. ${fix}`);
}

/**
 * True when `err` is a {@link ConnectionManagerError}, optionally with the given code.
 * Checks the shape rather than `instanceof`, so it also recognises errors thrown by another copy of
 * the package loaded in the same process (the manager itself is shared between copies), and the
 * library's errors that carry {@link ERROR_BRAND} instead (an acquire timeout through knex, which is
 * knex's `KnexTimeoutError` with the code `E_ACQUIRE_TIMEOUT`). Another error that merely has a
 * `code` property is not one.
 */
export function isConnectionManagerError(err: unknown, code?: ErrorCode): err is ConnectionManagerError {
  if (!(err instanceof Error)) return false;
  if (err.name !== 'ConnectionManagerError' && (err as { [ERROR_BRAND]?: unknown })[ERROR_BRAND] !== true) return false;
  const actual = (err as { code?: unknown }).code;
  return typeof actual === 'string' && (code === undefined || actual === code);
}
