/**
 * The admin triggers, all built on `Pool.softEvict` (close idle now, retire checked-out ones on
 * release) followed by a refill. Each sweep takes the registry's mutex while it picks its
 * connections, so two sweeps never interleave; it never holds the mutex across network I/O.
 */
import type { PoolEntry } from './entry';
import type { Pool } from './pool';
import type { Clock } from './clock';

/**
 * Closes every idle connection now and every checked-out one when it is released, then refills
 * to `min` with new connections. Resolves once the refill is done (or failed); never rejects.
 * @returns how many connections were evicted.
 */
export async function resetPool<C, E extends PoolEntry<C>>(pool: Pool<C, E>): Promise<number> {
  const evicted = await pool.registry.mutex.runExclusive(() => {
    pool.beginGeneration();
    let count = 0;
    for (const entry of pool.registry.openEntries()) if (pool.softEvict(entry, 'reset')) count++;
    return count;
  });
  pool.pump();
  await pool.ready().catch(() => undefined);
  return evicted;
}

/**
 * The expiry sweep: connections past their max lifetime are retired (idle ones closed and
 * replaced now, checked-out ones on release); idle connections unused for `idleTimeoutMs` are
 * closed while more than `min` are open. Never takes the pool below `min`.
 * @returns how many connections were retired.
 */
export async function expireConnections<C, E extends PoolEntry<C>>(pool: Pool<C, E>, clock: Clock): Promise<number> {
  const { maxLifetimeMs, idleTimeoutMs, min } = pool.options;
  const retired = await pool.registry.mutex.runExclusive(() => {
    const now = clock.now();
    let count = 0;
    if (maxLifetimeMs > 0) {
      for (const entry of pool.registry.openEntries()) {
        if (!entry.retire && now >= entry.expiresMono && pool.softEvict(entry, 'expired')) count++;
      }
    }
    if (idleTimeoutMs > 0) {
      for (const entry of pool.registry.idleOldestFirst()) {
        if (pool.registry.openCount <= min) break;
        if (now - entry.lastUsedMono >= idleTimeoutMs && pool.softEvict(entry, 'idle')) count++;
      }
    }
    return count;
  });
  pool.pump();
  return retired;
}

/**
 * Replaces every connection with a fresh one without lowering capacity: for an idle connection
 * the new one is opened first and the old one closed after (when the pool is at `max` there is no
 * room, so the old one is closed first); checked-out connections are replaced when released.
 * @returns how many connections were replaced or marked for replacement (not those kept because no
 *   replacement could be opened).
 */
export async function renewConnections<C, E extends PoolEntry<C>>(pool: Pool<C, E>): Promise<number> {
  const marked = await pool.registry.mutex.runExclusive(() => {
    const all = pool.registry.openEntries().filter((e) => !e.retire);
    for (const entry of all) {
      entry.retire = true;
      entry.retireReason = 'renewed';
    }
    return all;
  });
  // Idle ones: replace one at a time per free slot, so capacity never drops while there is room.
  const idle = marked.filter((e) => e.state === 'idle');
  let kept = 0;
  const replaceOne = async (old: E): Promise<void> => {
    if (old.state !== 'idle') return; // handed out meanwhile: replaced on release
    if (pool.registry.occupied < pool.options.max) {
      const fresh = await pool.startOpen();
      if (fresh === undefined) {
        // No replacement (the server refused it): keep the old one serving rather than lose capacity.
        if (old.retire && old.retireReason === 'renewed') {
          old.retire = false;
          kept++;
        }
        return;
      }
      if (old.state === 'idle') pool.softEvict(old, 'renewed');
    } else {
      // At max there is no room to open first: close the old one, then open its replacement.
      await pool.destroy(old, 'renewed');
      await pool.startOpen();
    }
  };
  const lanes = Math.max(1, Math.min(idle.length, pool.options.max - pool.registry.occupied));
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < idle.length && pool.isOpen) await replaceOne(idle[next++] as E);
    }),
  );
  pool.pump();
  return marked.length - kept;
}
