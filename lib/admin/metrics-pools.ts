/**
 * The named-pool side of the metrics: which pools a stats snapshot holds, under the names their
 * `pool` label carries, and the metrics of the connection budget and of the set of pools.
 *
 * Names follow the pools' log lines: the default pool is `primary` and its replicas go by their
 * bare names (as before named pools existed); a named pool goes by its name (`analytics`) and its
 * replicas by `analytics/<replica>` (a pool name never contains "/", so the two cannot collide).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ManagerPoolStats, PoolStats, ReplicaPoolStats } from '../pool/stats';

/** `[name, stats]` for every pool in `stats`: the default pool and its replicas, then each named pool and its replicas. */
export function poolsOf(stats: ManagerPoolStats): Array<[string, PoolStats]> {
  const out: Array<[string, PoolStats]> = [['primary', stats], ...Object.entries(stats.replicas ?? {})];
  for (const [name, pool] of namedPools(stats)) {
    out.push([name, pool]);
    for (const [replica, r] of Object.entries(pool.replicas ?? {})) out.push([`${name}/${replica}`, r]);
  }
  return out;
}

/** `[name, stats]` of every replica pool in `stats`, the named pools' included. */
export function replicasOf(stats: ManagerPoolStats): Array<[string, ReplicaPoolStats]> {
  const out = Object.entries(stats.replicas ?? {});
  for (const [name, pool] of namedPools(stats)) {
    for (const [replica, r] of Object.entries(pool.replicas ?? {})) out.push([`${name}/${replica}`, r]);
  }
  return out;
}

/** The named pools of `stats` (every entry of `stats.pools` but the default pool, which is the top level). */
function namedPools(stats: ManagerPoolStats): Array<[string, ManagerPoolStats]> {
  return Object.entries(stats.pools ?? {}).filter(([name]) => name !== 'primary');
}

/** Names and help of the budget and pool-set metrics (docs/operations.md lists them). */
export const BUDGET_METRICS = {
  max: { name: 'kcm_budget_connections_max', help: 'budget.maxConnections: the most connections of every pool together.' },
  open: { name: 'kcm_budget_connections_open', help: 'Connections of every pool that hold or may soon hold a server session (open, being opened, being closed).' },
  reclaimed: { name: 'kcm_budget_reclaimed_total', help: 'Connections closed to give their slot of the budget to another pool.' },
  waitingPools: { name: 'kcm_budget_waiting_pools', help: 'Pools waiting for a slot of the budget now.' },
  poolsOpen: { name: 'kcm_pools_open', help: 'Pools open now: the default pool, named pools, their replicas\' pools and pools made by poolFactory.' },
  poolsMade: { name: 'kcm_pools_made_total', help: 'Pools made by poolFactory.' },
  poolsClosed: { name: 'kcm_pools_closed_total', help: 'Pools made by poolFactory and closed (idle, or to make room under maxPools).' },
} as const;

/**
 * Registers the budget metrics (when `sample` carries `budget`) and the pool-set metrics (when it
 * carries `totals`) in `registry`, read from `current()` at scrape time. Both depend only on the
 * configuration, so one snapshot at start says whether they exist.
 */
export function registerBudgetMetrics(registry: Registry, sample: ManagerPoolStats, current: () => ManagerPoolStats): void {
  const registers = [registry];
  const gauge = (metric: { name: string; help: string }, read: (s: ManagerPoolStats) => number | undefined) =>
    new Gauge({
      name: metric.name,
      help: metric.help,
      registers,
      collect() {
        const value = read(current());
        if (value !== undefined) this.set(value);
      },
    });
  const counter = (metric: { name: string; help: string }, read: (s: ManagerPoolStats) => number | undefined) =>
    new Counter({
      name: metric.name,
      help: metric.help,
      registers,
      collect() {
        const value = read(current());
        this.reset();
        if (value !== undefined) this.inc(value);
      },
    });
  if (sample.budget !== undefined) {
    gauge(BUDGET_METRICS.max, (s) => s.budget?.maxConnections);
    gauge(BUDGET_METRICS.open, (s) => s.budget?.open);
    counter(BUDGET_METRICS.reclaimed, (s) => s.budget?.reclaimed);
    gauge(BUDGET_METRICS.waitingPools, (s) => s.budget?.waitingPools.length);
  }
  if (sample.totals !== undefined) {
    gauge(BUDGET_METRICS.poolsOpen, (s) => s.totals?.pools);
    counter(BUDGET_METRICS.poolsMade, (s) => s.totals?.made);
    counter(BUDGET_METRICS.poolsClosed, (s) => s.totals?.closed);
  }
}
