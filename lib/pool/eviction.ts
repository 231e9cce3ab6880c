/**
 * The admin operations, built on soft eviction (close idle now, retire checked-out ones on
 * release) and a refill. Each runs whole under the pool's admin mutex (`exclusive`), so two of
 * them — and the housekeeping expiry sweep — never interleave, however many awaits they contain.
 * They drive the pool through `PoolMaintenance` only.
 */
import type { ConnectionManagerError } from '../errors';
import type { Clock } from './clock';
import type { PoolEntry } from './entry';
import type { PoolMaintenance } from './maintenance';
import { refillError } from './messages';

/** What an admin operation did on one pool. */
export interface TriggerResult {
  /** Connections evicted, retired or replaced (see each operation). */
  count: number;
  /**
   * `E_CONNECT` when the operation could not restore the connections it closed (the server refused
   * the new ones, or they did not open in time); undefined when it finished.
   */
  error: ConnectionManagerError | undefined;
}

/**
 * Closes every idle connection now and every checked-out one when it is released, then refills
 * to `min` with new connections. Resolves once `min` are open again (checked-out old ones count
 * until released), or with `error` set when that has not happened within `pool.acquireTimeoutMs`.
 * `count` is how many connections were evicted.
 */
export function resetPool<E extends PoolEntry<unknown>>(pool: PoolMaintenance<E>): Promise<TriggerResult> {
  return pool.exclusive(async () => {
    pool.beginGeneration();
    let count = 0;
    for (const entry of pool.openEntries()) if (pool.softEvict(entry, 'reset')) count++;
    pool.pump();
    const bound = pool.options.acquireTimeoutMs;
    const refilled = await pool.whenOpen(pool.options.min, bound);
    const error = refilled || !pool.isOpen
      ? undefined
      : refillError(pool.name, 'Reset', `${pool.counts.openCount} of pool.min=${pool.options.min} connection(s) open after pool.acquireTimeoutMs=${bound} ms`, pool.lastConnectError);
    return { count, error };
  });
}

/**
 * The expiry sweep: connections past their max lifetime are retired (idle ones closed and
 * replaced now, checked-out ones on release), oldest first; idle connections unused for
 * `idleTimeoutMs` are closed, least recently used first, while more than `min` are open.
 * @returns how many connections were retired.
 */
export function expireConnections<E extends PoolEntry<unknown>>(pool: PoolMaintenance<E>, clock: Clock): Promise<number> {
  return pool.exclusive(() => {
    const { maxLifetimeMs, idleTimeoutMs, min, minIdle } = pool.options;
    const now = clock.now();
    let count = 0;
    if (maxLifetimeMs > 0) {
      for (const entry of pool.openEntries()) {
        if (!entry.retire && now >= entry.expiresMono && pool.softEvict(entry, 'expired')) count++;
      }
    }
    if (idleTimeoutMs > 0) {
      const quiet = pool.openEntries()
        .filter((e) => e.state === 'idle' && now - e.lastUsedMono >= idleTimeoutMs)
        .sort((a, b) => a.lastUsedMono - b.lastUsedMono);
      for (const entry of quiet) {
        if (pool.counts.openCount <= min || pool.counts.idleCount <= minIdle) break;
        if (pool.softEvict(entry, 'idle')) count++;
      }
    }
    pool.pump();
    return Promise.resolve(count);
  });
}

/**
 * Replaces every connection with a fresh one without lowering capacity where there is room: for
 * an idle connection the new one is opened first and the old one closed after; at `max` (or with
 * the connection budget spent) the old one is closed first and its replacement opened in the slot
 * it freed. Checked-out connections are
 * marked and replaced when released. Resolves once every idle connection has been replaced (each
 * replacement open, or failed after the pool's open retries), with `count` the connections
 * replaced or marked. The first replacement that cannot be opened ends the renewal: the idle
 * connections not yet replaced keep serving (not counted); if that replacement was for a
 * connection already closed at `max`, `error` says so.
 */
export function renewConnections<E extends PoolEntry<unknown>>(pool: PoolMaintenance<E>): Promise<TriggerResult> {
  return pool.exclusive(async () => {
    const marked = pool.openEntries().filter((e) => !e.retire);
    for (const entry of marked) pool.markRetired(entry, 'renewed');
    const idle = marked.filter((e) => e.state === 'idle');
    let refused = false;
    let lost = 0;
    const replaceOne = async (old: E): Promise<void> => {
      if (old.state !== 'idle') return; // handed out meanwhile: replaced on release
      if (pool.hasRoom()) {
        if ((await pool.openOne()) === undefined) refused = true;
        else if (old.state === 'idle') pool.softEvict(old, 'renewed');
      } else if ((await pool.replace(old, 'renewed')) === undefined) {
        refused = true;
        lost++;
      }
    };
    // Replace one at a time per free slot, so capacity never drops while there is room.
    const lanes = Math.max(1, Math.min(idle.length, pool.options.max - pool.counts.occupied));
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < idle.length && !refused && pool.isOpen) await replaceOne(idle[next++] as E);
      }),
    );
    // No replacement could be opened (the server refused it): the old ones keep serving rather
    // than lose capacity. Only idle ones: a checked-out one still needs replacing on release.
    let kept = 0;
    for (const entry of idle) {
      if (entry.state === 'idle' && entry.retire && entry.retireReason === 'renewed') {
        pool.unretire(entry);
        kept++;
      }
    }
    pool.pump();
    const error = lost === 0 || !pool.isOpen
      ? undefined
      : refillError(pool.name, 'Renewal', `${lost} connection(s) closed at pool.max could not be replaced`, pool.lastConnectError);
    return { count: marked.length - kept, error };
  });
}
