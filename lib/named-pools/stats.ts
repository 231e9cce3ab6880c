/**
 * The named-pool part of `getPoolStats()`: every pool by name (`pools`, the default one as
 * `primary`), the budget, and the totals over every pool the manager has had.
 */
import type { ManagerPoolStats, PoolCounters } from '../pool/stats';
import type { NamedPool } from '../manager/named-pool';
import type { ConnectionBudget } from './budget';
import type { PoolDirectory } from './directory';

/** Adds `pools`, `budget` and `totals` to `stats`, the default pool's snapshot. */
export function namedPoolStats(stats: ManagerPoolStats, main: NamedPool, directory: PoolDirectory, budget: ConnectionBudget | undefined): void {
  const open = directory.pools();
  const pools: Record<string, ManagerPoolStats> = { primary: { ...stats } };
  for (const pool of open) pools[pool.name] = pool.getPoolStats();
  const totals = directory.totals();
  const counters: PoolCounters = { ...totals.counters };
  // Open pools count from their snapshots; pools still closing, from their own pools' counters.
  const add = (from: PoolCounters): void => {
    for (const key of Object.keys(counters) as Array<keyof PoolCounters>) counters[key] += from[key];
  };
  for (const snapshot of Object.values(pools)) {
    add(snapshot.counters);
    for (const replica of Object.values(snapshot.replicas ?? {})) add(replica.counters);
  }
  for (const pool of totals.retired) for (const p of pool.pools) add(p.stats().counters);
  stats.pools = pools;
  if (budget !== undefined) stats.budget = budget.stats();
  stats.totals = { pools: [main, ...open].reduce((n, pool) => n + pool.pools.length, 0), made: totals.made, closed: totals.closed, counters };
}
