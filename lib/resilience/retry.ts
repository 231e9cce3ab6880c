/**
 * Retried work: `manager.withRetry(fn)` and `manager.transaction(fn)`. What is retried, with
 * backoff and jitter: a serialization failure (40001), a deadlock (40P01) and a connection lost
 * before COMMIT was sent. A connection lost after COMMIT was sent is never retried: the outcome is
 * unknown, and it rejects with `E_COMMIT_UNKNOWN`. Anything else — errors from `fn` itself — passes
 * through unchanged on the first attempt. docs/resilience.md.
 */
import type { Knex } from 'knex';
import { ConnectionManagerError } from '../errors';
import type { Clock } from '../pool/clock';
import { errorMessage } from '../pool/messages';

/** Options of `withRetry()`. */
export interface RetryPolicyOptions {
  /** Attempts in total (1 = no retry). Default 3. */
  attempts?: number;
  /** Delay before the first retry, in milliseconds; doubles each time (with jitter). Default 20. */
  initialDelayMs?: number;
  /** Cap on the delay between attempts, in milliseconds. Default 1000. */
  maxDelayMs?: number;
}

/** Options of `transaction()`. */
export interface TransactionOptions extends RetryPolicyOptions {
  /** The transaction's isolation level. Default: the server's (`read committed`). */
  isolationLevel?: 'read committed' | 'repeatable read' | 'serializable';
  /** Starts the transaction `READ ONLY`. Default false. */
  readOnly?: boolean;
  /** Tags for admission (quotas, fair share, stats) of each attempt's acquire. */
  tags?: Readonly<Record<string, string>>;
}

const DEFAULTS: Readonly<Required<RetryPolicyOptions>> = Object.freeze({ attempts: 3, initialDelayMs: 20, maxDelayMs: 1_000 });
const ISOLATION_LEVELS = ['read committed', 'repeatable read', 'serializable'];

/** SQLSTATEs and socket codes that mean the session is gone (the server ended it or the network did). */
const LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03']);
const LOST_MESSAGE = /Connection terminated|Client was closed|not queryable|connection (?:is )?(?:closed|ended)/i;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for an error that says the session is gone. */
export function isConnectionLost(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined && (LOST_CODES.has(code) || code.startsWith('08'))) return true;
  return error instanceof Error && LOST_MESSAGE.test(error.message);
}

/** True for a conflict the server resolved by rolling back: trying again may succeed. */
export function isConflict(error: unknown): boolean {
  const code = codeOf(error);
  return code === '40001' || code === '40P01';
}

/** Whether `withRetry` tries again after `error`. */
export function isRetryable(error: unknown): boolean {
  if (codeOf(error) === 'E_COMMIT_UNKNOWN') return false;
  return isConflict(error) || isConnectionLost(error);
}

function invalid(what: string, value: unknown, fix: string): ConnectionManagerError {
  return new ConnectionManagerError('E_INVALID_CONFIG', `Invalid option "${what}": got ${String(value)}. ${fix}`);
}

/** The options with defaults filled in. @throws ConnectionManagerError `E_INVALID_CONFIG`. */
export function resolveRetryPolicy(options: RetryPolicyOptions | undefined, entry: string): Required<RetryPolicyOptions> {
  const out = { ...DEFAULTS };
  if (options === undefined) return out;
  if (typeof options !== 'object' || options === null) throw invalid(entry, options, `Pass ${entry}(fn, { attempts, initialDelayMs, maxDelayMs }) or leave the options out.`);
  const { attempts, initialDelayMs, maxDelayMs } = options;
  if (attempts !== undefined) {
    if (!Number.isInteger(attempts) || attempts < 1) throw invalid(`${entry}.attempts`, attempts, 'Pass a whole number of attempts >= 1.');
    out.attempts = attempts;
  }
  for (const [key, value] of [['initialDelayMs', initialDelayMs], ['maxDelayMs', maxDelayMs]] as const) {
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) throw invalid(`${entry}.${key}`, value, 'Pass milliseconds >= 0.');
    out[key] = value;
  }
  if (out.initialDelayMs > out.maxDelayMs) out.maxDelayMs = out.initialDelayMs;
  return out;
}

/** Delay before retry number `retry` (1-based): exponential, capped, half of it random. */
export function retryDelayMs(retry: number, policy: Required<RetryPolicyOptions>, random: () => number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(retry - 1, 30));
  return base / 2 + (random() * base) / 2;
}

/** What the retry loop needs from the manager. */
export interface RetryHost {
  clock: Clock;
  random: () => number;
  /** Counts one retry (`stats.counters.transactionRetries`). */
  retried(): void;
}

/** Runs `attempt` until it succeeds, fails with an error that is not retryable, or attempts run out. */
export async function runWithRetry<T>(attempt: () => Promise<T>, policy: Required<RetryPolicyOptions>, host: RetryHost): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (n >= policy.attempts || !isRetryable(error)) throw error;
      host.retried();
      const delay = retryDelayMs(n, policy, host.random);
      await new Promise<void>((resolve) => host.clock.setTimer(resolve, delay, true));
    }
  }
}

/** One leased connection, as the transaction needs it. */
export interface TransactionLease {
  readonly db: Knex;
}

/**
 * One attempt of a transaction on a connection of its own: BEGIN (with the isolation level and
 * READ ONLY asked), `fn(trx)`, COMMIT. A session lost once COMMIT was sent becomes `E_COMMIT_UNKNOWN`.
 */
export async function transactionAttempt<T>(lease: TransactionLease, fn: (trx: Knex.Transaction) => Promise<T> | T, options: TransactionOptions): Promise<T> {
  let commitSent = false;
  const config: Knex.TransactionConfig = {};
  if (options.isolationLevel !== undefined) config.isolationLevel = options.isolationLevel;
  if (options.readOnly === true) config.readOnly = true;
  try {
    return await lease.db.transaction(async (trx) => {
      // knex announces each statement just before writing it: from COMMIT on, a lost session
      // may have committed.
      trx.on('query', (query: { sql?: unknown }) => {
        if (typeof query.sql === 'string' && /^\s*COMMIT\b/i.test(query.sql)) commitSent = true;
      });
      return fn(trx);
    }, config);
  } catch (error) {
    if (commitSent && isConnectionLost(error)) {
      throw new ConnectionManagerError(
        'E_COMMIT_UNKNOWN',
        `The connection was lost after COMMIT was sent (${errorMessage(error)}): the transaction may or may not have committed, so it was not retried. Check the data (or make the work idempotent) before running it again.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Checks `transaction()`'s own options. @throws ConnectionManagerError `E_INVALID_CONFIG`. */
export function checkTransactionOptions(options: TransactionOptions | undefined): void {
  if (options === undefined) return;
  if (options.isolationLevel !== undefined && !ISOLATION_LEVELS.includes(options.isolationLevel)) {
    throw invalid('transaction.isolationLevel', options.isolationLevel, `Pass one of ${ISOLATION_LEVELS.map((l) => `'${l}'`).join(', ')}.`);
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') throw invalid('transaction.readOnly', options.readOnly, 'Pass true or false.');
}

/** `manager.withRetry(fn, options)`. */
export function withRetry<T>(fn: () => Promise<T> | T, options: RetryPolicyOptions | undefined, host: RetryHost): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new ConnectionManagerError('E_INVALID_CONFIG', 'withRetry(fn): fn must be a function, e.g. withRetry(async () => ...).'));
  return Promise.resolve().then(() => runWithRetry(async () => fn(), resolveRetryPolicy(options, 'withRetry'), host));
}

/** `manager.transaction(fn, options)`: each attempt on a connection `withConnection` lends it. */
export function runTransaction<T>(
  withConnection: (attempt: (lease: TransactionLease) => Promise<T>) => Promise<T>,
  fn: (trx: Knex.Transaction) => Promise<T> | T,
  options: TransactionOptions | undefined,
  host: RetryHost,
): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new ConnectionManagerError('E_INVALID_CONFIG', 'transaction(fn): fn must be a function, e.g. transaction(async (trx) => ...).'));
  return Promise.resolve().then(() => {
    const policy = resolveRetryPolicy(options, 'transaction');
    checkTransactionOptions(options);
    return runWithRetry(() => withConnection((lease) => transactionAttempt(lease, fn, options ?? {})), policy, host);
  });
}
