/**
 * Is this value one of the pool's own records? Decided by identity, never by properties: a copy
 * (`{ ...conn }`), a prototype child (`Object.create(conn)`) or a proxy has every property of the
 * record, and accepting one would count a release twice and hand the holder's session to the next
 * caller. Only a record the entry class constructed carries its private brand, and the record
 * names the pool that made it; both checks are O(1), so release never walks the registry.
 */
import { PoolEntry } from './entry';
import { ConnectionManagerError } from '../errors';
import { notCheckedOut } from './messages';

/** True when `value` is a record that `pool` made (and not a copy, child or proxy of one). */
export function isOwnRecord<E extends PoolEntry<unknown>>(pool: object, value: unknown): value is E {
  return PoolEntry.isRecord(value) && value.owner === pool;
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
export function releaseVerdict<E extends PoolEntry<unknown>>(
  pool: object,
  value: unknown,
  poolOpen: boolean,
): typeof RELEASE | typeof IGNORE | Error {
  if (isOwnRecord<E>(pool, value)) {
    if (value.state === 'inUse') return RELEASE;
    // A record close() closed by force, released by its holder afterwards: nothing to do.
    if (!poolOpen && (value.state === 'closing' || value.state === 'closed')) return IGNORE;
    return notCheckedOut(value, true);
  }
  return new ConnectionManagerError(
    'E_NOT_CHECKED_OUT',
    'This is not a connection handed out by this manager (a copy, wrapper or proxy of one is not accepted either). Release the very object getConnection() returned, to the manager that gave it out.',
  );
}
