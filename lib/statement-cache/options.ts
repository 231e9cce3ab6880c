/**
 * Validation of the `statementCache` option and of the `pgbouncer` key that changes its default
 * (kept here so options.ts stays about the core). Bad values are refused with `E_INVALID_CONFIG`
 * naming the option and the fix.
 */
import { invalidConfig } from '../errors';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys, type NumberRule } from '../options-rules';

/** `statementCache`: prepared statements kept per connection (docs/options.md, "Statement cache"). */
export interface StatementCacheOptions {
  /** Most statements kept prepared on each connection (least recently used is deallocated first). Default 100. */
  size?: number;
}

/** `statementCache` with the defaults filled in. */
export type ResolvedStatementCacheOptions = Required<StatementCacheOptions>;

/** How the server is reached: straight, or through PgBouncer in that pooling mode. */
export type PgBouncerMode = 'transaction' | 'session';

/** The defaults, documented in docs/options.md. */
export const DEFAULT_STATEMENT_CACHE: Readonly<ResolvedStatementCacheOptions> = Object.freeze({ size: 100 });

const SIZE_RULE: NumberRule = { min: 1, max: 10_000, integer: true, kind: 'count', unit: 'statements per connection' };
const PGBOUNCER_MODES: readonly PgBouncerMode[] = ['transaction', 'session'];

/** `pgbouncer`, checked; undefined when left out. */
export function resolvePgBouncer(input: unknown): PgBouncerMode | undefined {
  if (input === undefined) return undefined;
  if (typeof input === 'string' && (PGBOUNCER_MODES as readonly string[]).includes(input)) return input as PgBouncerMode;
  throw invalidConfig('pgbouncer', `expected 'transaction' or 'session', got ${describe(input)}`, "Set it to PgBouncer's pool_mode ('transaction' or 'session'), or leave it out when connecting to PostgreSQL directly.");
}

/**
 * `statementCache` with the defaults filled in; `false` when turned off. Left out, it is on, except
 * behind PgBouncer in transaction mode: there consecutive statements of a session may reach
 * different server sessions, which know only the statements prepared on them (PgBouncer 1.21 and
 * later track them with `max_prepared_statements`; turn the cache on explicitly then).
 */
export function resolveStatementCache(input: unknown, pgbouncer: PgBouncerMode | undefined): ResolvedStatementCacheOptions | false {
  if (input === false) return false;
  if (input === undefined) return pgbouncer === 'transaction' ? false : { ...DEFAULT_STATEMENT_CACHE };
  if (input === true) return { ...DEFAULT_STATEMENT_CACHE };
  if (!isPlainObject(input)) {
    throw invalidConfig('statementCache', `expected an object or false, got ${describe(input)}`, 'Pass { size: 100 }, false to turn the cache off, or leave it out.');
  }
  rejectUnknownKeys('statementCache', input, ['size']);
  const out: ResolvedStatementCacheOptions = { ...DEFAULT_STATEMENT_CACHE };
  if (input.size !== undefined) out.size = checkNumber('statementCache.size', input.size, SIZE_RULE);
  return out;
}
