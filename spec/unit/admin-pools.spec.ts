/**
 * The named-pool side of the admin endpoint without a server: the metrics of a stats source whose
 * pools come and go (a pool that closed stops appearing, its histogram series too; tag keys of a
 * pool made later never break a scrape), and the pool selection of a trigger request.
 */
import { PoolMetrics } from '../../lib/admin/metrics';
import { openPool, poolStatsOf, SelectionError, triggerSelection } from '../../lib/admin/pools';
import { newCounters, type ManagerPoolStats, type PoolStats, type ReplicaPoolStats, type TagStatsByKey } from '../../lib/pool/stats';

function pool(total: number, max = 5, tags?: TagStatsByKey): ManagerPoolStats {
  return {
    min: 0, max, total, idle: total, inUse: 0, pending: 0, waiting: 0,
    counters: newCounters(), wait: { count: 0, totalMs: 0, maxMs: 0 }, connections: [],
    circuit: { state: 'closed', since: null, failures: 0 },
    ...(tags ? { tags } : {}),
  };
}

function replica(total: number): ReplicaPoolStats {
  return { ...pool(total), healthy: true, lagMs: 1500, healthChanges: 0 };
}

/** A manager's stats with the default pool, and `named` as its other pools. */
function managerStats(named: Record<string, ManagerPoolStats>): ManagerPoolStats {
  const primary = pool(2, 4);
  return {
    ...primary,
    pools: { primary, ...named },
    budget: { maxConnections: 50, open: 7, reclaimed: 3, waitingPools: ['tenant-b'] },
    totals: { pools: 1 + Object.keys(named).length, made: 4, closed: 1, counters: newCounters() },
  };
}

const tag = (inUse: number): TagStatsByKey[string][string] => ({ inUse, waiting: 0, acquired: inUse, timedOut: 0, rateLimited: 0, wait: { count: 0, totalMs: 0, maxMs: 0 }, heldMs: 0 });

describe('metrics of named pools', () => {
  test('every named pool and its replicas get a series; budget and pool-set metrics read the snapshot', async () => {
    const analytics: ManagerPoolStats = { ...pool(3), replicas: { r1: replica(1) } };
    const metrics = new PoolMetrics(() => managerStats({ analytics, 'tenant-a': pool(1, 2) }));
    const text = await metrics.scrape();
    expect(text).toContain('kcm_pool_connections{pool="primary"} 2');
    expect(text).toContain('kcm_pool_connections{pool="analytics"} 3');
    expect(text).toContain('kcm_pool_connections{pool="analytics/r1"} 1');
    expect(text).toContain('kcm_pool_connections{pool="tenant-a"} 1');
    expect(text).toContain('kcm_replica_lag_seconds{pool="analytics/r1"} 1.5');
    // The default pool appears once, at the top level, not again as pools.primary.
    expect(text.match(/^kcm_pool_max\{pool="primary"\}/gm)).toHaveLength(1);
    for (const line of [
      'kcm_budget_connections_max 50', 'kcm_budget_connections_open 7', 'kcm_budget_reclaimed_total 3', 'kcm_budget_waiting_pools 1',
      'kcm_pools_open 3', 'kcm_pools_made_total 4', 'kcm_pools_closed_total 1',
    ]) expect(text).toContain(line);
  });

  test('without named pools there are no budget or pool-set metrics', async () => {
    const text = await new PoolMetrics(() => pool(2)).scrape();
    expect(text).toContain('kcm_pool_connections{pool="primary"} 2');
    expect(text).not.toMatch(/kcm_budget_|kcm_pools_/);
  });

  test('a pool that closed stops appearing, its histogram series included; made again, it starts afresh', async () => {
    let named: Record<string, ManagerPoolStats> = { 'tenant-a': pool(1), 'tenant-b': pool(1) };
    const metrics = new PoolMetrics(() => managerStats(named));
    const a = metrics.observer('tenant-a');
    metrics.observer('tenant-b');
    a.waited(20);
    a.closed(5_000, 'idle');
    let text = await metrics.scrape();
    expect(text).toContain('kcm_pool_acquire_wait_seconds_count{pool="tenant-a"} 1');
    expect(text).toContain('kcm_pool_connection_age_seconds_count{pool="tenant-a",reason="idle"} 1');

    named = { 'tenant-b': pool(1) };
    text = await metrics.scrape();
    expect(text).not.toContain('pool="tenant-a"');
    expect(text).toContain('kcm_pool_connections{pool="tenant-b"} 1');
    expect(text).toContain('kcm_pool_acquire_wait_seconds_count{pool="tenant-b"} 0');
    // The closed pool's connections still closing report nothing: its series stay gone.
    a.closed(6_000, 'poolClosed');
    expect(await metrics.scrape()).not.toContain('pool="tenant-a"');

    named = { 'tenant-a': pool(1), 'tenant-b': pool(1) };
    const again = metrics.observer('tenant-a');
    again.waited(10);
    text = await metrics.scrape();
    expect(text).toContain('kcm_pool_acquire_wait_seconds_count{pool="tenant-a"} 1');
    expect(text).not.toContain('reason="poolClosed"');
  });

  test('tag metrics keep the keys known at start; a pool with other keys leaves those out', async () => {
    let named: Record<string, ManagerPoolStats> = { analytics: pool(1, 5, { tenant: { acme: tag(1) } }) };
    const metrics = new PoolMetrics(() => managerStats(named));
    expect(await metrics.scrape()).toContain('kcm_tag_connections_in_use{pool="analytics",tenant="acme"} 1');
    named = { analytics: pool(1, 5, { tenant: { acme: tag(2) } }), 'tenant-x': pool(1, 5, { feature: { checkout: tag(1) } }) };
    const text = await metrics.scrape();
    expect(text).toContain('kcm_tag_connections_in_use{pool="analytics",tenant="acme"} 2');
    expect(text).not.toContain('feature=');
  });
});

describe('pool selection of the admin triggers', () => {
  test('reads ?pool=, allPools and the JSON body', () => {
    expect(triggerSelection('/reset', '')).toEqual({ kind: 'default' });
    expect(triggerSelection('/reset?pool=analytics', '')).toEqual({ kind: 'one', name: 'analytics' });
    expect(triggerSelection('/reset?pool=a%20b%22c', '')).toEqual({ kind: 'one', name: 'a b"c' });
    expect(triggerSelection('/reset', ' {"pool":"analytics"} ')).toEqual({ kind: 'one', name: 'analytics' });
    expect(triggerSelection('/reset?allPools', '')).toEqual({ kind: 'all' });
    expect(triggerSelection('/reset?allPools=false', '{}')).toEqual({ kind: 'default' });
    expect(triggerSelection('/reset', '{"allPools":true}')).toEqual({ kind: 'all' });
    expect(triggerSelection('/reset?pool=x#frag', '')).toEqual({ kind: 'one', name: 'x' });
  });

  test('refuses what it cannot read with a 400 that says what to send', () => {
    for (const [url, body, message] of [
      ['/reset?pool=a&allPools=1', '', /either pool=NAME or allPools/],
      ['/reset?x=1', '', /Unknown parameter "x"/],
      ['/reset?pool=a&pool=b', '', /given 2 times/],
      ['/reset', '{', /not JSON/],
      ['/reset', 'null', /JSON object/],
      ['/reset', '{"pool":""}', /empty/],
      ['/reset?allPools=true', '{"allPools":false}', /disagree/],
    ] as const) {
      let error: unknown;
      try {
        triggerSelection(url, body);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SelectionError);
      expect(error).toMatchObject({ status: 400, code: 'bad_request', message: expect.stringMatching(message) });
    }
  });

  test('reaches only open pools, and never asks the manager for one that is not', () => {
    const asked: string[] = [];
    const stats = managerStats({ analytics: pool(1) });
    const target = {
      getPoolStats: () => stats,
      pool(name: string) {
        asked.push(name);
        return { getPoolStats: () => stats.pools?.[name] as ManagerPoolStats, resetPool: async () => 1, triggerExpireConnections: async () => 0, triggerRenewConnections: async () => 0 };
      },
    };
    expect(openPool(target, 'analytics').getPoolStats().total).toBe(1);
    expect(() => openPool(target, 'tenant-z')).toThrow(expect.objectContaining({ status: 404, code: 'E_UNKNOWN_POOL', message: expect.stringContaining('"primary", "analytics"') }));
    expect(asked).toEqual(['analytics']);
    expect(poolStatsOf(stats, 'analytics').total).toBe(1);
    // Without named pools, "primary" is the whole snapshot.
    const plain: PoolStats = pool(2);
    expect(poolStatsOf(plain, 'primary')).toBe(plain);
    expect(() => poolStatsOf(plain, 'analytics')).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_POOL' }));
  });
});
