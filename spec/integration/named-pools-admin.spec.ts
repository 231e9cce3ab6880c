/**
 * The admin endpoint with named pools, against the real server: a second database for the pool
 * `analytics`, a `poolFactory` for `tenant-*` names and a budget. `/stats?pool=`, the triggers on one
 * pool (query or body), on every pool (`allPools`), the refusals (unknown or not-open pool → 404
 * without making it, bad parameters → 400, no token → 401 first), and `/metrics` with a series per
 * pool and the budget metrics.
 */
import * as http from 'node:http';
import { closeConnectionInstance, ConnectionManagerError, getConnectionInstance, type ConnectionManager, type ManagerPoolStats } from '../../lib';
import { startAdminServer, type AdminPool } from '../../lib/admin/server';
import { newCounters } from '../../lib/pool/stats';
import { testConfig } from '../helpers/database';
import { createDatabase, databaseUrl, dropDatabase } from '../helpers/second-database';

const TOKEN = 'named-pools-admin-spec-token-0123';
const DB = 'kcm_spec_admin_analytics';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

function call(port: number, method: string, path: string, options: { token?: string | null; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? TOKEN : options.token;
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // /metrics is text
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const ids = (stats: ManagerPoolStats): string[] => stats.connections.map((c) => c.id);

describe('admin endpoint with named pools', () => {
  let manager: ConnectionManager;
  let port: number;
  const analytics = (): ManagerPoolStats => manager.pool('analytics').getPoolStats();
  /** Both pools' connection ids and the pools made: what a refused request must leave unchanged. */
  const fingerprint = () => ({ primary: ids(manager.getPoolStats()), analytics: ids(analytics()), made: manager.getPoolStats().totals?.made });

  beforeAll(async () => {
    await createDatabase(DB);
    const tenantUrl = databaseUrl(DB);
    manager = getConnectionInstance(
      testConfig('kcm-spec-np-admin', { min: 2, max: 4 }, {
        pools: { analytics: { connection: { connectionString: databaseUrl(DB), application_name: 'kcm-spec-np-admin-analytics' }, pool: { min: 1, max: 3 } } },
        poolFactory: (name) => (name.startsWith('tenant-') ? { connection: tenantUrl, pool: { max: 2 } } : undefined),
        budget: { maxConnections: 20 },
        admin: { port: 0, token: TOKEN },
      }),
    );
    await manager.ready();
    port = (await manager.adminReady()).port;
  });

  afterAll(async () => {
    await closeConnectionInstance();
    await dropDatabase(DB);
  });

  test('/metrics carries a series per pool and the budget and pool-set metrics', async () => {
    const { text, status } = await call(port, 'GET', '/metrics', { token: null });
    expect(status).toBe(200);
    expect(text).toContain('kcm_pool_connections{pool="primary"} 2');
    expect(text).toContain('kcm_pool_connections{pool="analytics"} 1');
    expect(text).toContain('kcm_pool_max{pool="analytics"} 3');
    expect(text).toContain('kcm_pool_circuit_state{pool="analytics",state="closed"} 1');
    expect(text).toContain('kcm_pool_acquire_wait_seconds_count{pool="analytics"} 0');
    expect(text).toContain('kcm_budget_connections_max 20');
    expect(text).toContain(`kcm_budget_connections_open ${manager.getPoolStats().budget?.open}`);
    expect(text).toContain('kcm_budget_reclaimed_total 0');
    expect(text).toContain('kcm_budget_waiting_pools 0');
    expect(text).toContain('kcm_pools_open 2');
    expect(text).toContain('kcm_pools_made_total 0');
    expect(text).toContain('kcm_pools_closed_total 0');
  });

  test('GET /stats carries every pool; ?pool=NAME answers that pool alone', async () => {
    const all = await call(port, 'GET', '/stats');
    expect(all.status).toBe(200);
    const stats = all.body as unknown as ManagerPoolStats;
    expect(Object.keys(stats.pools ?? {})).toEqual(['primary', 'analytics']);
    expect(stats.budget).toMatchObject({ maxConnections: 20, reclaimed: 0, waitingPools: [] });
    expect(stats.totals).toMatchObject({ pools: 2, made: 0, closed: 0 });

    const one = await call(port, 'GET', '/stats?pool=analytics');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ min: 1, max: 3, total: 1 });
    expect(one.body.pools).toBeUndefined();
    expect((one.body as unknown as ManagerPoolStats).connections.map((c) => c.id)).toEqual(ids(analytics()));
    // Percent-encoded, as a client should send any name.
    expect((await call(port, 'GET', '/stats?pool=an%61lytics')).body).toMatchObject({ max: 3 });

    const primary = await call(port, 'GET', '/stats?pool=primary');
    expect(primary.body).toMatchObject({ min: 2, max: 4 });
    expect(primary.body.pools).toBeUndefined();
    expect((primary.body as unknown as ManagerPoolStats).connections.map((c) => c.id)).toEqual(ids(manager.getPoolStats()));
  });

  test('an unknown pool, or one only the factory knows, is 404 E_UNKNOWN_POOL and is not made', async () => {
    const before = fingerprint();
    for (const [method, path] of [['GET', '/stats?pool=nope'], ['GET', '/stats?pool=tenant-x'], ['POST', '/reset?pool=tenant-x'], ['POST', '/renew?pool=nope']]) {
      const reply = await call(port, method, path);
      expect([path, reply.status]).toEqual([path, 404]);
      expect(reply.body).toMatchObject({ ok: false, error: { code: 'E_UNKNOWN_POOL', message: expect.stringContaining('is open') } });
      expect((reply.body.error as { message: string }).message).toContain('"analytics"');
    }
    const body = await call(port, 'POST', '/expire', { body: '{"pool":"tenant-y"}' });
    expect(body.status).toBe(404);
    expect(fingerprint()).toEqual(before);
    expect(Object.keys(manager.getPoolStats().pools ?? {})).toEqual(['primary', 'analytics']);
    // The token is checked before the pool: no token says nothing about which pools exist.
    expect((await call(port, 'GET', '/stats?pool=nope', { token: null })).status).toBe(401);
    expect((await call(port, 'POST', '/reset?pool=analytics', { token: null })).status).toBe(401);
    expect(fingerprint()).toEqual(before);
  });

  test('bad pool parameters are 400 and run nothing', async () => {
    const before = fingerprint();
    const cases: Array<[string, string | undefined]> = [
      ['/reset?pool=analytics&allPools', undefined],
      ['/reset?pol=analytics', undefined],
      ['/reset?pool=', undefined],
      ['/reset?pool=analytics&pool=primary', undefined],
      ['/reset?allPools=maybe', undefined],
      ['/reset', '{"pools":"analytics"}'],
      ['/reset', 'pool=analytics'],
      ['/reset', '["analytics"]'],
      ['/reset', '{"pool":7}'],
      ['/reset', '{"allPools":"yes"}'],
      ['/reset?pool=primary', '{"pool":"analytics"}'],
      ['/reset', '{"pool":"analytics","allPools":true}'],
    ];
    for (const [path, body] of cases) {
      const reply = await call(port, 'POST', path, { body });
      expect([path, body, reply.status, (reply.body.error as { code?: string } | undefined)?.code]).toEqual([path, body, 400, 'bad_request']);
    }
    expect(fingerprint()).toEqual(before);
  });

  test('a trigger with ?pool= or a body runs on that pool only; without one, on the default pool', async () => {
    const before = fingerprint();
    const reset = await call(port, 'POST', '/reset?pool=analytics');
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ ok: true, action: 'reset', poolName: 'analytics', evicted: 1, pool: { total: 1, inUse: 0 } });
    const afterReset = fingerprint();
    expect(afterReset.primary).toEqual(before.primary);
    expect(afterReset.analytics).toHaveLength(1);
    expect(afterReset.analytics).not.toContain(before.analytics[0]);

    const renew = await call(port, 'POST', '/renew', { body: '{"pool":"analytics"}' });
    expect(renew.body).toMatchObject({ ok: true, action: 'renew', poolName: 'analytics', renewed: 1 });
    expect(fingerprint().primary).toEqual(before.primary);
    expect(analytics().counters.renewed).toBe(1);
    // The query and the body may both name it, if they agree.
    expect((await call(port, 'POST', '/expire?pool=analytics', { body: '{"pool":"analytics"}' })).body).toMatchObject({ ok: true, poolName: 'analytics', retired: 0 });

    const analyticsNow = ids(analytics());
    const primary = await call(port, 'POST', '/reset');
    expect(primary.body).toMatchObject({ ok: true, action: 'reset', poolName: 'primary', evicted: 2 });
    expect(ids(analytics())).toEqual(analyticsNow);
    for (const id of ids(manager.getPoolStats())) expect(before.primary).not.toContain(id);
  });

  test('allPools runs the trigger on every open pool and answers each one\'s count', async () => {
    const before = fingerprint();
    const expire = await call(port, 'POST', '/expire', { body: '{"allPools":true}' });
    expect(expire.status).toBe(200);
    expect(expire.body).toEqual({
      ok: true,
      action: 'expire',
      retired: 0,
      durationMs: expect.any(Number),
      pools: { primary: { retired: 0, pool: expect.objectContaining({ total: 2 }) }, analytics: { retired: 0, pool: expect.objectContaining({ total: 1 }) } },
    });

    const reset = await call(port, 'POST', '/reset?allPools=true');
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ ok: true, action: 'reset', evicted: 3, pools: { primary: { evicted: 2 }, analytics: { evicted: 1 } } });
    const after = fingerprint();
    for (const id of after.primary) expect(before.primary).not.toContain(id);
    for (const id of after.analytics) expect(before.analytics).not.toContain(id);
  });

  test('a pool made by the factory shows up in /stats and /metrics, under a label escaped for Prometheus', async () => {
    const name = 'tenant-a"b\\c';
    expect(await manager.pool(name).query('select current_database() as db')).toMatchObject({ rows: [{ db: DB }] });
    const stats = await call(port, 'GET', `/stats?pool=${encodeURIComponent(name)}`);
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ max: 2, total: 1 });

    const { text } = await call(port, 'GET', '/metrics', { token: null });
    expect(text).toContain('kcm_pool_connections{pool="tenant-a\\"b\\\\c"} 1');
    expect(text).toContain('kcm_pools_made_total 1');
    expect(text).toContain('kcm_pools_open 3');

    const reset = await call(port, 'POST', '/reset', { body: JSON.stringify({ pool: name }) });
    expect(reset.body).toMatchObject({ ok: true, poolName: name, evicted: 1 });
    // The answer's pool counts are those of the made pool (min 0: nothing refilled).
    expect(reset.body.pool).toMatchObject({ total: 0 });
  });
});

describe('allPools when a pool fails', () => {
  /** A pool whose trigger resolves with `count` or rejects with `error`, counting its runs. */
  function stubPool(count: number, error?: Error): AdminPool & { runs: number } {
    const stats: ManagerPoolStats = {
      min: 0, max: 2, total: 1, idle: 1, inUse: 0, pending: 0, waiting: 0, counters: newCounters(),
      wait: { count: 0, totalMs: 0, maxMs: 0 }, connections: [], circuit: { state: 'closed', since: null, failures: 0 },
    };
    const pool = {
      runs: 0,
      getPoolStats: () => stats,
      async resetPool() {
        pool.runs++;
        if (error) throw error;
        return count;
      },
      triggerExpireConnections: async () => 0,
      triggerRenewConnections: async () => 0,
    };
    return pool;
  }

  test('runs the others, and answers 503 (a service failure) or 500 (a bug) naming the pools that failed', async () => {
    const primary = stubPool(2);
    const pools: Record<string, AdminPool & { runs: number }> = {
      primary,
      down: stubPool(0, new ConnectionManagerError('E_CONNECT', 'connect ECONNREFUSED 127.0.0.1:1')),
      analytics: stubPool(1),
    };
    const target = {
      ...primary,
      getPoolStats: (): ManagerPoolStats => ({ ...primary.getPoolStats(), pools: Object.fromEntries(Object.entries(pools).map(([n, p]) => [n, p.getPoolStats()])) }),
      pool: (name: string) => pools[name],
      resize: async () => ({ closed: 0, retiring: 0 }),
    };
    const server = await startAdminServer(target, { port: 0, token: TOKEN });
    try {
      const reply = await call(server.port, 'POST', '/reset?allPools');
      expect(reply.status).toBe(503);
      expect(reply.body).toMatchObject({
        ok: false,
        error: { code: 'E_CONNECT', message: expect.stringContaining('failed on 1 of 3 pools ("down")') },
        action: 'reset',
        evicted: 3,
        pools: { primary: { evicted: 2 }, down: { error: { code: 'E_CONNECT', message: expect.stringContaining('ECONNREFUSED') } }, analytics: { evicted: 1 } },
      });
      expect(Object.values(pools).map((p) => p.runs)).toEqual([1, 1, 1]);

      pools.down = stubPool(0, new TypeError('a bug'));
      const bug = await call(server.port, 'POST', '/reset', { body: '{"allPools":true}' });
      expect(bug.status).toBe(500);
      expect(bug.body).toMatchObject({ ok: false, error: { code: 'internal_error' }, pools: { down: { error: { code: 'internal_error', message: 'The trigger failed; see the service log.' } } } });
      expect(JSON.stringify(bug.body)).not.toContain('a bug');
    } finally {
      await server.close();
    }
  });
});
