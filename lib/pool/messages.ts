/**
 * The wording of the pool's errors and log hints: what a caller or an operator reads when
 * something goes wrong. Kept apart from the pool's logic so both stay short.
 */
import * as path from 'node:path';
import { ConnectionManagerError } from '../errors';
import type { PoolEntry } from './entry';
import type { HeldConnection, PoolGauges } from './stats';

/** `E_ABORTED`, with the signal's reason as `cause`. */
export function abortedError(signal: AbortSignal | undefined): ConnectionManagerError {
  const reason: unknown = signal?.reason;
  return new ConnectionManagerError(
    'E_ABORTED',
    'Gave up waiting for a connection: the AbortSignal passed to getConnection() fired.',
    reason === undefined ? undefined : { cause: reason },
  );
}

/** `E_NOT_CHECKED_OUT` for a release of something that is not a current lease. */
export function notCheckedOut(entry: PoolEntry<unknown>, ownEntry: boolean): ConnectionManagerError {
  return new ConnectionManagerError(
    'E_NOT_CHECKED_OUT',
    ownEntry
      ? `Connection ${entry.id || '(unopened)'} is not checked out (state: ${entry.state}); was it released twice? Release each connection exactly once.`
      : 'This connection was not handed out by this manager. Release connections to the manager that gave them out.',
  );
}

/** Short, single-line message of any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.message}${typeof code === 'string' && !error.message.includes(code) ? ` (${code})` : ''}`;
  }
  return String(error);
}

/** This library's own directory (lib/ or dist/), whatever the directory above it is called. */
const LIBRARY_DIR = path.resolve(__dirname, '..') + path.sep;

/** The first stack frame outside this library, for "acquired at" hints. */
export function firstUserFrame(stack: string): string {
  const frames = stack.split('\n').slice(1).map((l) => l.trim());
  const user = frames.find(
    (f) => !f.includes(LIBRARY_DIR) && !/knex-connection-manager[\\/](lib|dist)[\\/]/.test(f) && !f.includes('node:internal'),
  );
  return user ?? frames[0] ?? 'at an unknown place';
}

/** The gauges in one line, for error messages and log lines. */
export function describeCounts(g: PoolGauges): string {
  return `total=${g.total}, idle=${g.idle}, inUse=${g.inUse}, pending=${g.pending}, waiting=${g.waiting}, max=${g.max}`;
}

/** The gauges as log metadata. */
export function countsMeta(g: PoolGauges): Record<string, number> {
  return { total: g.total, idle: g.idle, inUse: g.inUse, pending: g.pending, waiting: g.waiting, max: g.max };
}

/**
 * The line logged when callers start queueing at `max`. It says what fills the slots: open
 * connections, and those still being opened or closed, which count toward `max` too.
 */
export function saturatedMessage(g: PoolGauges): string {
  const parts = [`${g.total} open`];
  if (g.pending > 0) parts.push(`${g.pending} opening`);
  if (g.closing > 0) parts.push(`${g.closing} closing`);
  const occupied = g.total + g.pending + g.closing;
  return `Pool at maximum limit (${parts.join(' + ')} = ${occupied}/${g.max}), waiting for available connection…`;
}

/** `E_QUEUE_FULL`. */
export function queueFullError(maxWaiting: number, g: PoolGauges): ConnectionManagerError {
  return new ConnectionManagerError(
    'E_QUEUE_FULL',
    `Too many callers waiting for a connection (${g.waiting}, pool.maxWaiting=${maxWaiting}; ${describeCounts(g)}). Shed load or raise pool.maxWaiting / pool.max.`,
  );
}

/** `E_ACQUIRE_TIMEOUT`, naming the longest holders and, as `cause`, the last connection error. */
export function acquireTimeoutError(
  poolName: string,
  timeoutMs: number,
  g: PoolGauges,
  held: readonly HeldConnection[],
  lastConnectError: unknown,
): ConnectionManagerError {
  const holders = held
    .map((h) => `${h.id} for ${h.heldMs} ms${h.acquiredAt ? ` (acquired ${firstUserFrame(h.acquiredAt)})` : ''}`)
    .join('; ');
  const last = lastConnectError === undefined ? '' : ` Last connection error: ${errorMessage(lastConnectError)}.`;
  return new ConnectionManagerError(
    'E_ACQUIRE_TIMEOUT',
    `Timed out after ${timeoutMs} ms waiting for a connection (pool "${poolName}": ${describeCounts(g)}).` +
      (holders ? ` Longest held: ${holders}.` : '') +
      last +
      ' Release connections sooner, raise pool.max, or raise the timeout.',
    lastConnectError === undefined ? undefined : { cause: lastConnectError },
  );
}

/** `E_POOL_CLOSED` for a pool that is closing or closed. */
export function poolClosedError(poolName: string, closed: boolean): ConnectionManagerError {
  return new ConnectionManagerError(
    'E_POOL_CLOSED',
    `The connection pool "${poolName}" is ${closed ? 'closed' : 'closing'}. Call getConnectionInstance() again to create a new manager.`,
  );
}

/** `E_CONNECT` for an open that gave up, with its error as `cause`. */
export function connectError(poolName: string, error: unknown): ConnectionManagerError {
  return new ConnectionManagerError(
    'E_CONNECT',
    `Could not open a connection to the database (pool "${poolName}"): ${errorMessage(error)}. Check that the server is up and the connection settings are right; the pool keeps retrying with backoff.`,
    { cause: error },
  );
}

/**
 * `E_CONNECT` for an admin operation that closed connections but could not open their replacements
 * (`detail` says how far it got).
 */
export function refillError(poolName: string, what: string, detail: string, lastConnectError: unknown): ConnectionManagerError {
  const last = lastConnectError === undefined ? '' : ` Last connection error: ${errorMessage(lastConnectError)}.`;
  return new ConnectionManagerError(
    'E_CONNECT',
    `${what} of pool "${poolName}" did not finish: ${detail}.${last} The pool opens connections again as callers and pool.min need them; check that the server accepts new connections.`,
    lastConnectError === undefined ? undefined : { cause: lastConnectError },
  );
}
