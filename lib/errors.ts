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
  | 'E_RATE_LIMITED';

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
 * the package loaded in the same process (the manager itself is shared between copies).
 */
export function isConnectionManagerError(err: unknown, code?: ErrorCode): err is ConnectionManagerError {
  if (!(err instanceof Error) || err.name !== 'ConnectionManagerError') return false;
  const actual = (err as { code?: unknown }).code;
  return typeof actual === 'string' && (code === undefined || actual === code);
}
