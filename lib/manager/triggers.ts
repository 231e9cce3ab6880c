/**
 * The admin operations across a manager's pools: each runs on the primary and every replica at
 * once (each pool serialises its own operations under its admin mutex). The primary's outcome
 * decides the result; a replica that could not finish is logged and left to its health checks, so
 * a replica being down never fails an operation on the primary.
 */
import type { Logger } from 'winston';
import type { Clock } from '../pool/clock';
import { expireConnections, renewConnections, resetPool, type TriggerResult } from '../pool/eviction';
import type { PoolMaintenance } from '../pool/maintenance';
import type { PoolEntry } from '../pool/entry';

/**
 * Runs `operation` on every pool (the primary first in `pools`), sums the counts and logs
 * `summary(count)` at `info`.
 * @throws the primary's `E_CONNECT` when it could not finish.
 */
export async function runOnEveryPool<E extends PoolEntry<unknown>>(
  pools: readonly PoolMaintenance<E>[],
  operation: (pool: PoolMaintenance<E>) => Promise<TriggerResult>,
  log: Logger,
  summary: (count: number) => string,
): Promise<number> {
  const results = await Promise.all(pools.map((pool) => operation(pool)));
  let count = 0;
  for (const [i, result] of results.entries()) {
    count += result.count;
    if (result.error && i > 0) log.warn(result.error.message, { pool: pools[i]?.name });
  }
  const primaryError = results[0]?.error;
  if (primaryError) {
    log.error(primaryError.message, { pool: pools[0]?.name });
    throw primaryError;
  }
  log.info(summary(count));
  return count;
}

/** `resetPool()` on every pool; the summary gives how many the primary (first in `pools`) has open again. */
export function resetEveryPool<E extends PoolEntry<unknown>>(pools: readonly PoolMaintenance<E>[], log: Logger): Promise<number> {
  return runOnEveryPool(pools, resetPool, log, (n) => `Pool reset: ${n} connection(s) evicted, refilled to ${pools[0]?.counts.openCount ?? 0}`);
}

/** The expiry sweep on every pool now. */
export function expireEveryPool<E extends PoolEntry<unknown>>(pools: readonly PoolMaintenance<E>[], clock: Clock, log: Logger): Promise<number> {
  const expire = async (pool: PoolMaintenance<E>) => ({ count: await expireConnections(pool, clock), error: undefined });
  return runOnEveryPool(pools, expire, log, (n) => `Expiry sweep: ${n} connection(s) retired`);
}

/** `renewConnections()` on every pool. */
export function renewEveryPool<E extends PoolEntry<unknown>>(pools: readonly PoolMaintenance<E>[], log: Logger): Promise<number> {
  return runOnEveryPool(pools, renewConnections, log, (n) => `Renewal: ${n} connection(s) replaced`);
}
