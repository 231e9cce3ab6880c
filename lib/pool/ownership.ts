/**
 * Is this value one of the pool's own records? Decided by identity, never by properties: a copy
 * (`{ ...conn }`), a prototype child (`Object.create(conn)`) or a proxy has every property of the
 * record, and accepting one would count a release twice and hand the holder's session to the next
 * caller. The registry maps each record's creation number to the record itself, so the value must
 * be that very object.
 */
import { types } from 'node:util';
import { PoolEntry } from './entry';
import { ConnectionManagerError } from '../errors';
import { notCheckedOut } from './messages';
import type { Registry } from './registry';

/** True when `value` is the record the registry holds for its creation number. */
export function isOwnRecord<C, E extends PoolEntry<C>>(registry: Registry<C, E>, value: unknown): value is E {
  if (typeof value !== 'object' || value === null) return false;
  try {
    const seq = (value as { seq?: unknown }).seq;
    return typeof seq === 'number' && registry.get(seq) === value;
  } catch {
    return false; // a proxy whose trap throws: certainly not ours
  }
}

/** `release()` goes ahead. */
export const RELEASE = 'release';
/** `release()` does nothing: a record `close()` already closed by force, released by its holder. */
export const IGNORE = 'ignore';

/**
 * What `release(value)` should do: go ahead only for this pool's own record while checked out.
 * A record the pool closed by force during `close()` has left the registry; its holder's release
 * is ignored (matched by its owner, and it changes nothing). Never throws: a refusal is returned.
 */
export function releaseVerdict<C, E extends PoolEntry<C>>(
  pool: object,
  registry: Registry<C, E>,
  value: unknown,
  poolOpen: boolean,
): typeof RELEASE | typeof IGNORE | Error {
  if (isOwnRecord(registry, value)) {
    if (value.state === 'inUse') return RELEASE;
    if (!poolOpen && (value.state === 'closing' || value.state === 'closed')) return IGNORE;
    return notCheckedOut(value, true);
  }
  // Out of the registry but genuine: a record of this pool's, not a copy (own fields, the
  // record's class), a child (own `state`) or a proxy of one. Ignoring it changes nothing anyway.
  if (!poolOpen && !types.isProxy(value) && value instanceof PoolEntry && Object.hasOwn(value, 'state') && value.owner === pool) {
    if (value.state === 'closing' || value.state === 'closed') return IGNORE;
  }
  return new ConnectionManagerError(
    'E_NOT_CHECKED_OUT',
    'This is not a connection handed out by this manager (a copy, wrapper or proxy of one is not accepted either). Release the very object getConnection() returned, to the manager that gave it out.',
  );
}
