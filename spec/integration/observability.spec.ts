/**
 * Observability against the real server (docs/observability.md): the manager's prom-client
 * registry without the admin endpoint, query metrics (a failed statement counted by its SQLSTATE
 * class), the OpenTelemetry pool metrics through the real SDK's in-memory exporter, each session's
 * `application_name`, and `inspect()` (a session idle in transaction, a foreign session under the
 * prefix, a pool at max).
 */
import { Client } from 'pg';
import { Registry, register as globalRegistry } from 'prom-client';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { ConnectionManager, resolveOptions, type ConnectionManagerConfig, type PooledConnection } from '../../lib';
import { QUERY_METRICS } from '../../lib/observability/query-metrics';
import { testConfig, testDatabaseUrl } from '../helpers/database';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
const managers: ConnectionManager[] = [];

function start(appName: string, extra: Partial<ConnectionManagerConfig> = {}, pool: ConnectionManagerConfig['pool'] = { min: 1, max: 3 }): ConnectionManager {
  const manager = new ConnectionManager(resolveOptions(testConfig(appName, pool, extra)));
  managers.push(manager);
  return manager;
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

/** The value of `name{labels}` in a Prometheus text page (labels matched as a subset), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const inner = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => inner.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('the prom-client registry and query metrics', () => {
  it('holds every pool metric without the admin endpoint, and merges into the application\'s registry', async () => {
    const manager = start('kcm-spec-obs-registry');
    await manager.ready();
    expect(manager.metricsRegistry).toBeInstanceOf(Registry);
    expect(manager.metricsRegistry).not.toBe(globalRegistry);
    const merged = Registry.merge([new Registry(), manager.metricsRegistry]);
    const text = await merged.metrics();
    expect(sample(text, 'kcm_pool_connections', { pool: 'primary' })).toBe(manager.getPoolStats().total);
    expect(text).toContain(`# TYPE ${QUERY_METRICS.duration} histogram`);
  });

  it('counts statements of every path by pool and route, and a failed one by its SQLSTATE class', async () => {
    const manager = start('kcm-spec-obs-queries');
    await manager.query('SELECT 1');
    await manager.knex.raw('SELECT 2');
    await manager.readKnex.raw('SELECT 3');
    await manager.withConnection(async (conn) => {
      await conn.query('SELECT 4');
      await conn.db.raw('SELECT 5');
      await expect(conn.query('SELECT * FROM kcm_no_such_table')).rejects.toMatchObject({ code: '42P01' });
    });
    await expect(manager.knex.raw('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    const text = await manager.metricsRegistry.metrics();
    const labels = { pool: 'primary', route: 'primary' };
    expect(sample(text, QUERY_METRICS.completed, labels)).toBe(7);
    expect(sample(text, `${QUERY_METRICS.duration}_count`, labels)).toBe(7);
    expect(sample(text, QUERY_METRICS.failed, { ...labels, class: '42' })).toBe(1);
    expect(sample(text, QUERY_METRICS.failed, { ...labels, class: '22' })).toBe(1);
    expect(sample(text, QUERY_METRICS.inFlight, labels)).toBe(0);
  });

  it('counts a statement as in flight while it runs', async () => {
    const manager = start('kcm-spec-obs-inflight');
    const conn = await manager.getConnection();
    const running = conn.query('SELECT pg_sleep(0.2)');
    expect(sample(await manager.metricsRegistry.metrics(), QUERY_METRICS.inFlight, { pool: 'primary' })).toBe(1);
    await running;
    await manager.releaseConnection(conn);
    expect(sample(await manager.metricsRegistry.metrics(), QUERY_METRICS.inFlight, { pool: 'primary' })).toBe(0);
  });

  it('labels statements with the holder\'s counted tag keys, with admission', async () => {
    const manager = start('kcm-spec-obs-tags', { admission: { tagKeys: ['tenant', 'route'], maxTagValues: 1 } });
    await manager.withTags({ tenant: 'acme' }, () => manager.query('SELECT 1'));
    await manager.query('SELECT 1', [], { tags: { tenant: 'acme' } });
    await manager.query('SELECT 1', [], { tags: { tenant: 'globex' } }); // past maxTagValues
    await manager.query('SELECT 1');
    const text = await manager.metricsRegistry.metrics();
    // "route" is the metrics' own label: that tag key is left out rather than collide.
    expect(sample(text, QUERY_METRICS.completed, { pool: 'primary', route: 'primary', tenant: 'acme' })).toBe(2);
    expect(sample(text, QUERY_METRICS.completed, { pool: 'primary', route: 'primary', tenant: '(other)' })).toBe(1);
    expect(sample(text, QUERY_METRICS.completed, { pool: 'primary', route: 'primary', tenant: '' })).toBe(1);
    expect(text.split('\n').filter((l) => l.startsWith(`${QUERY_METRICS.completed}{`))).toHaveLength(3);
  });

  it('labels a named pool\'s statements with its name', async () => {
    const manager = start('kcm-spec-obs-named', { pools: { analytics: { connection: { connectionString: url, application_name: 'kcm-spec-obs-named-a' }, pool: { max: 2 } } } });
    await manager.pool('analytics').query('SELECT 1');
    const text = await manager.metricsRegistry.metrics();
    expect(sample(text, QUERY_METRICS.completed, { pool: 'analytics', route: 'primary' })).toBe(1);
    expect(sample(text, 'kcm_pool_connections', { pool: 'analytics' })).toBe(1);
  });

  it('drops the series of a pool poolFactory made once it closed', async () => {
    const manager = start('kcm-spec-obs-made', {
      poolFactory: (name) => ({ connection: { connectionString: url, application_name: `kcm-spec-obs-made-${name}` }, pool: { max: 1 } }),
      poolIdleTimeoutMs: 100,
    });
    await manager.pool('tenant1').query('SELECT 1');
    expect(sample(await manager.metricsRegistry.metrics(), QUERY_METRICS.completed, { pool: 'tenant1' })).toBe(1);
    // Closed as idle past poolIdleTimeoutMs: no event tells the test, so it polls the stats.
    await until(() => manager.getPoolStats().pools?.tenant1 === undefined, { description: 'the made pool closed as idle' });
    const text = await manager.metricsRegistry.metrics();
    expect(text).not.toContain('pool="tenant1"');
    expect(sample(text, QUERY_METRICS.completed, { pool: 'primary' })).toBe(0);
  });

  it('is the registry the admin endpoint serves on /metrics', async () => {
    const manager = start('kcm-spec-obs-admin', { admin: { port: 0 } });
    await manager.query('SELECT 1');
    const { url: endpoint } = await manager.adminReady();
    const text = await (await fetch(`${endpoint}/metrics`)).text();
    expect(sample(text, QUERY_METRICS.completed, { pool: 'primary', route: 'primary' })).toBe(1);
    expect(text).toBe(await manager.metricsRegistry.metrics());
  });

  it('has no query metrics with queryMetrics: false', async () => {
    const manager = start('kcm-spec-obs-noquery', { queryMetrics: false });
    await manager.query('SELECT 1');
    expect(await manager.metricsRegistry.metrics()).not.toContain(QUERY_METRICS.completed);
  });
});

describe('OpenTelemetry', () => {
  let exporter: InMemoryMetricExporter;
  let reader: PeriodicExportingMetricReader;
  let provider: MeterProvider;

  beforeEach(() => {
    exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    // The interval is never reached: each test exports with forceFlush().
    reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);
  });

  afterEach(async () => {
    metrics.disable();
    await provider.shutdown();
  });

  async function collected(): Promise<Map<string, MetricData>> {
    await reader.forceFlush();
    const out = new Map<string, MetricData>();
    for (const resource of exporter.getMetrics()) for (const scope of resource.scopeMetrics) for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
    exporter.reset();
    return out;
  }

  function point(metric: MetricData | undefined, attributes: Record<string, string>): unknown {
    const found = metric?.dataPoints.find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
    return found?.value;
  }

  it('reports the semantic conventions\' pool metrics with the pool\'s name, and our extras under kcm.', async () => {
    const manager = start('kcm-spec-obs-otel', {}, { min: 1, max: 1, acquireTimeoutMs: 200 });
    await manager.ready();
    const held = await manager.getConnection();
    await expect(manager.getConnection({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'E_ACQUIRE_TIMEOUT' });
    const waiter = manager.getConnection();
    await manager.releaseConnection(held);
    await manager.releaseConnection(await waiter);
    await manager.query('SELECT 1');
    const got = await collected();
    const pool = { 'db.client.connection.pool.name': 'primary' };
    expect(point(got.get('db.client.connection.count'), { ...pool, 'db.client.connection.state': 'idle' })).toBe(1);
    expect(point(got.get('db.client.connection.count'), { ...pool, 'db.client.connection.state': 'used' })).toBe(0);
    expect(point(got.get('db.client.connection.max'), pool)).toBe(1);
    expect(point(got.get('db.client.connection.idle.max'), pool)).toBe(1);
    expect(point(got.get('db.client.connection.idle.min'), pool)).toBe(1);
    expect(point(got.get('db.client.connection.pending_requests'), pool)).toBe(0);
    expect(point(got.get('db.client.connection.timeouts'), pool)).toBe(1);
    expect(point(got.get('kcm.connection.open_failures'), pool)).toBe(0);
    expect(point(got.get('kcm.circuit.state'), { ...pool, 'kcm.circuit.state': 'closed' })).toBe(1);
    expect(point(got.get('kcm.connection.evictions'), { ...pool, 'kcm.eviction.reason': 'max_lifetime' })).toBe(0);
    expect((point(got.get('db.client.connection.create_time'), pool) as { count: number }).count).toBe(1);
    expect((point(got.get('db.client.connection.wait_time'), pool) as { count: number }).count).toBe(1);
    // Three leases: held, the waiter's, and the one of manager.query().
    expect((point(got.get('db.client.connection.use_time'), pool) as { count: number }).count).toBe(3);
    expect(got.get('db.client.connection.use_time')?.descriptor.unit).toBe('s');
    expect((point(got.get('db.client.operation.duration'), pool) as { count: number }).count).toBe(1);
  });

  it('reports nothing with telemetry: false', async () => {
    const manager = start('kcm-spec-obs-nootel', { telemetry: false });
    await manager.query('SELECT 1');
    const got = await collected();
    expect([...got.keys()].filter((name) => name.startsWith('db.client') || name.startsWith('kcm.'))).toEqual([]);
  });
});

describe('application_name and inspect()', () => {
  it('names each session <prefix>:<N>, N of its record id', async () => {
    const manager = start('kcm-spec-obs-name', { applicationName: 'orders-api-obs' });
    await manager.withConnection(async (conn) => {
      const n = conn.id.split('_')[1];
      expect((await conn.query<{ name: string }>("SELECT current_setting('application_name') AS name")).rows[0].name).toBe(`orders-api-obs:${n}`);
    });
  });

  it('reports a session held idle in transaction with its query, and a foreign session under the prefix as unowned', async () => {
    const prefix = 'kcm-spec-obs-inspect';
    const manager = start(prefix, {}, { min: 2, max: 2 });
    await manager.ready();
    const held: PooledConnection = await manager.getConnection();
    await held.query('BEGIN');
    await held.query('SELECT 42 AS held_in_transaction');
    const foreign = new Client({ connectionString: url, application_name: `${prefix}:999999` });
    await foreign.connect();
    try {
      // Both connections are checked out: the pool is at max, and inspect() still answers.
      const other = await manager.getConnection();
      const result = await manager.inspect();
      expect(result.connections).toHaveLength(2);
      const row = result.connections.find((c) => c.id === held.id);
      expect(row).toMatchObject({ pool: 'primary', clientState: 'inUse', state: 'idle in transaction', query: 'SELECT 42 AS held_in_transaction' });
      expect(row?.xactStart).toBeInstanceOf(Date);
      expect(row?.backendPid).toBe(held.backendPid);
      expect(held.backendPid).toEqual(expect.any(Number));
      expect(row?.applicationName).toBe(`${prefix}:${held.id.split('_')[1]}`);
      expect(result.unowned).toEqual([expect.objectContaining({ applicationName: `${prefix}:999999`, state: 'idle' })]);
      await manager.releaseConnection(other);
    } finally {
      await foreign.end();
    }
    await held.query('ROLLBACK');
    await manager.releaseConnection(held);
  });

  it('rejects inspect() after close with E_POOL_CLOSED', async () => {
    const manager = start('kcm-spec-obs-closed');
    await manager.close();
    await expect(manager.inspect()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  });
});
