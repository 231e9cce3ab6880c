/**
 * The admin endpoint's /metrics against a real server: every metric name is there, gauges and
 * counters agree with getPoolStats(), the wait histogram counts callers that waited and the age
 * histogram counts closed connections by reason, replicas report health and lag, the token is
 * required only with metricsAuth, and each manager has a registry of its own.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { register as globalRegistry } from 'prom-client';
import {
  closeConnectionInstance,
  ConnectionManager,
  getConnectionInstance,
  resolveOptions,
  type ConnectionManagerConfig,
  type PooledConnection,
} from '../../lib';
import { AGE_HISTOGRAM, COUNTER_METRICS, GAUGE_METRICS, REPLICA_HEALTH_CHANGES, REPLICA_HEALTHY, REPLICA_LAG, WAIT_HISTOGRAM } from '../../lib/admin/metrics';
import { testConfig, testDatabaseUrl } from '../helpers/database';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
const TOKEN = 'metrics-spec-token-0123456789abcdef';

const direct: ConnectionManager[] = [];

afterEach(async () => {
  await closeConnectionInstance();
  await Promise.all(direct.splice(0).map((m) => m.close()));
});

function config(appName: string, extra: Partial<ConnectionManagerConfig> = {}): ConnectionManagerConfig {
  return testConfig(appName, { min: 2, max: 3 }, {
    admin: { port: 0, token: TOKEN },
    ...extra,
  });
}

function get(port: number, path: string, token?: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
    http
      .get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text: Buffer.concat(chunks).toString('utf8') }));
      })
      .on('error', reject);
  });
}

async function scrape(manager: ConnectionManager): Promise<string> {
  const reply = await get((await manager.adminReady()).port, '/metrics');
  expect(reply.status).toBe(200);
  return reply.text;
}

/** The value of the sample `name{labels}` in a Prometheus text page, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter(Boolean).sort().join(',');
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  test('has every metric, and gauges and counters agree with getPoolStats()', async () => {
    const manager = getConnectionInstance(config('kcm-spec-metrics-names'));
    await manager.ready();
    await manager.withConnection(async (conn) => conn.query('select 1'));
    const held = await manager.getConnection();
    try {
      const reply = await get((await manager.adminReady()).port, '/metrics');
      expect(reply.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = reply.text;
      const stats = manager.getPoolStats();
      const names = [...GAUGE_METRICS.map((g) => g.name), ...Object.values(COUNTER_METRICS).map((c) => c.name), WAIT_HISTOGRAM, AGE_HISTOGRAM, REPLICA_HEALTHY, REPLICA_LAG];
      for (const name of names) expect(text).toContain(`# TYPE ${name} `);
      for (const gauge of GAUGE_METRICS) {
        expect([gauge.name, sample(text, gauge.name, { pool: 'primary' })]).toEqual([gauge.name, stats[gauge.field]]);
      }
      expect(sample(text, 'kcm_pool_connections_in_use', { pool: 'primary' })).toBe(1);
      for (const [field, metric] of Object.entries(COUNTER_METRICS) as Array<[keyof typeof COUNTER_METRICS, { name: string }]>) {
        expect(text).toContain(`# TYPE ${metric.name} counter`);
        expect([metric.name, sample(text, metric.name, { pool: 'primary' })]).toEqual([metric.name, stats.counters[field]]);
      }
      expect(sample(text, 'kcm_pool_acquired_total', { pool: 'primary' })).toBeGreaterThanOrEqual(2);
      expect(text).toContain(`# TYPE ${WAIT_HISTOGRAM} histogram`);
      expect(text).toContain(`# TYPE ${AGE_HISTOGRAM} histogram`);
      // No replicas configured: no replica samples.
      expect(sample(text, REPLICA_HEALTHY, { pool: 'primary' })).toBeUndefined();
    } finally {
      await manager.releaseConnection(held);
    }
  });

  test('the wait histogram counts callers that had to wait; the age histogram counts closes by reason', async () => {
    const manager = getConnectionInstance(config('kcm-spec-metrics-histograms'));
    await manager.ready();
    const before = await scrape(manager);
    expect(sample(before, `${WAIT_HISTOGRAM}_count`, { pool: 'primary' })).toBe(manager.getPoolStats().wait.count);

    // Fill the pool, queue a caller, and let it through with a release.
    const held: PooledConnection[] = [];
    for (let i = 0; i < 3; i++) held.push(await manager.getConnection());
    const waiter = manager.getConnection({ timeoutMs: 10_000 });
    await until(() => manager.getPoolStats().waiting === 1, { description: 'the caller queues' });
    await manager.releaseConnection(held.pop() as PooledConnection);
    held.push(await waiter);
    for (const conn of held) await manager.releaseConnection(conn);

    const stats = manager.getPoolStats();
    expect(stats.wait.count).toBeGreaterThanOrEqual(1);
    const afterWait = await scrape(manager);
    expect(sample(afterWait, `${WAIT_HISTOGRAM}_count`, { pool: 'primary' })).toBe(stats.wait.count);
    expect(sample(afterWait, `${WAIT_HISTOGRAM}_bucket`, { pool: 'primary', le: '+Inf' })).toBe(stats.wait.count);
    expect(sample(afterWait, `${WAIT_HISTOGRAM}_sum`, { pool: 'primary' })).toBeCloseTo(stats.wait.totalMs / 1000, 6);

    // Closes: a reset closes every connection with reason "reset".
    const open = manager.getPoolStats().total;
    const evicted = await manager.resetPool();
    expect(evicted).toBe(open);
    await until(() => manager.getPoolStats().counters.destroyed >= evicted, { description: 'the evicted connections close' });
    const afterReset = await scrape(manager);
    expect(sample(afterReset, `${AGE_HISTOGRAM}_count`, { pool: 'primary', reason: 'reset' })).toBe(evicted);
    expect(sample(afterReset, `${AGE_HISTOGRAM}_bucket`, { pool: 'primary', reason: 'reset', le: '+Inf' })).toBe(evicted);
    expect(sample(afterReset, `${AGE_HISTOGRAM}_sum`, { pool: 'primary', reason: 'reset' })).toBeGreaterThan(0);
    expect(sample(afterReset, 'kcm_pool_connections_destroyed_total', { pool: 'primary' })).toBe(manager.getPoolStats().counters.destroyed);
  });

  test('replicas report health (0/1), lag in seconds and their own pool gauges', async () => {
    // A "replica" that is the primary itself (in rotation, lag 0) and one nobody listens for.
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const manager = getConnectionInstance(
      config('kcm-spec-metrics-replicas', {
        replicas: [
          { name: 'same', connection: { connectionString: url, application_name: 'kcm-spec-metrics-replicas' } },
          { name: 'gone', connection: `postgres://nobody@127.0.0.1:${closedPort}/none` },
        ],
        routing: { healthCheckIntervalMs: 60_000 },
        retry: { attempts: 1, initialDelayMs: 10, maxDelayMs: 10 },
      }),
    );
    await manager.ready();
    const text = await scrape(manager);
    const stats = manager.getPoolStats();
    expect(stats.replicas?.same.healthy).toBe(true);
    expect(stats.replicas?.gone.healthy).toBe(false);
    expect(sample(text, REPLICA_HEALTHY, { pool: 'same' })).toBe(1);
    expect(sample(text, REPLICA_HEALTHY, { pool: 'gone' })).toBe(0);
    expect(sample(text, REPLICA_LAG, { pool: 'same' })).toBe(0);
    expect(sample(text, REPLICA_LAG, { pool: 'gone' })).toBeUndefined(); // unknown lag: no sample
    expect(sample(text, REPLICA_HEALTH_CHANGES, { pool: 'same' })).toBe(stats.replicas?.same.healthChanges);
    expect(sample(text, 'kcm_pool_max', { pool: 'same' })).toBe(3);
    expect(sample(text, 'kcm_pool_connections', { pool: 'same' })).toBe(stats.replicas?.same.total);
    expect(sample(text, 'kcm_pool_connections', { pool: 'primary' })).toBe(stats.total);
    expect(sample(text, WAIT_HISTOGRAM + '_count', { pool: 'gone' })).toBe(0);
  });

  test('metricsAuth: true requires the token for /metrics', async () => {
    const manager = getConnectionInstance(config('kcm-spec-metrics-auth', { admin: { port: 0, token: TOKEN, metricsAuth: true } }));
    const { port } = await manager.adminReady();
    expect((await get(port, '/metrics')).status).toBe(401);
    expect((await get(port, '/metrics', 'not-the-token-at-all-0000')).status).toBe(403);
    const ok = await get(port, '/metrics', TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('kcm_pool_connections{pool="primary"}');
  });

  test('each manager has a registry of its own, apart from prom-client\'s global one', async () => {
    const a = new ConnectionManager(resolveOptions(config('kcm-spec-metrics-a', { pool: { min: 1, max: 2 } })));
    const b = new ConnectionManager(resolveOptions(config('kcm-spec-metrics-b', { pool: { min: 2, max: 5 } })));
    direct.push(a, b);
    await Promise.all([a.ready(), b.ready()]);
    expect(sample(await scrape(a), 'kcm_pool_max', { pool: 'primary' })).toBe(2);
    expect(sample(await scrape(b), 'kcm_pool_max', { pool: 'primary' })).toBe(5);
    expect(await globalRegistry.metrics()).not.toContain('kcm_');
  });
});
