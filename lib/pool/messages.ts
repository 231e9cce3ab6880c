/**
 * The wording of the pool's errors and log hints: what a caller or an operator reads when
 * something goes wrong. Kept apart from the pool's logic so both stay short.
 */
import * as path from 'node:path';
import { ConnectionManagerError } from '../errors';
import type { PoolEntry } from './entry';

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
