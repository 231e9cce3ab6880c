/**
 * Declared and learned write names through the manager, over a real primary and a real hot standby
 * (spec/helpers/replica-cluster.ts). A function that writes reads like a read: the standby refuses
 * it with 25006, the manager runs it again on the primary and learns the name, and from then on the
 * statement goes to the primary directly. Counted through the manager's own stats: the replica
 * pool's `acquired` counter (a statement that reached the standby leased from it) and
 * `routing.readOnlyRefusals` (each 25006 the standby answered); what ran is counted on the primary.
 */
import { AsyncResource } from 'node:async_hooks';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type RoutingOptions } from '../../lib';
import { PoolMetrics, ROUTING_LEARNED, ROUTING_REFUSALS } from '../../lib/admin/metrics';
import { withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';
import { capturingLogger, type LogLine } from '../helpers/silent-logger';

let cluster: ReplicaCluster;
let appCounter = 0;

useReplicaCluster((c) => (cluster = c), {
  statements: [
    'CREATE TABLE rl_items (id int PRIMARY KEY, note text NOT NULL)',
    "INSERT INTO rl_items VALUES (1, 'one'), (2, 'two')",
    'CREATE TABLE rl_log (id serial PRIMARY KEY, via text NOT NULL)',
    'CREATE FUNCTION rl_tick(via text) RETURNS int LANGUAGE sql AS $$ INSERT INTO rl_log (via) VALUES (via) RETURNING id $$',
    'CREATE VIEW rl_ticking AS SELECT rl_tick(\'view\') AS id',
  ],
  replayedSql: "SELECT 1 FROM pg_views WHERE viewname = 'rl_ticking'",
});

afterEach(async () => {
  await closeConnectionInstance();
});

/** A ready manager over the cluster whose one replica is in rotation, and the warnings it logs. */
async function startManager(routing: RoutingOptions = {}): Promise<{ manager: ConnectionManager; warnings: () => LogLine[] }> {
  const { logger, lines } = capturingLogger('warn');
  const app = `kcm-learning-${process.pid}-${++appCounter}`;
  const manager = getConnectionInstance({
    connection: { connectionString: cluster.primaryUrl, application_name: app },
    pool: { min: 1, max: 4 },
    logger,
    replicas: [{ name: 'replica', connection: { connectionString: cluster.replicaUrl, application_name: `${app}-replica` } }],
    routing: { healthCheckIntervalMs: 60_000, ...routing },
  });
  await manager.ready();
  await until(() => manager.getPoolStats().replicas?.replica.healthy === true, { timeoutMs: 15_000, description: 'standby healthy' });
  return { manager, warnings: () => lines.filter((l) => l.level === 'warn' && l.message.startsWith('Learned')) };
}

/** What tells where statements went: the replica's leases, its 25006 refusals, the learned names. */
function seen(manager: ConnectionManager): { replicaAcquired: number; refusals: number; functions: readonly string[]; relations: readonly string[] } {
  const stats = manager.getPoolStats();
  return {
    replicaAcquired: stats.replicas?.replica.counters.acquired ?? Number.NaN,
    refusals: stats.routing?.readOnlyRefusals ?? Number.NaN,
    functions: stats.routing?.learned.functions ?? [],
    relations: stats.routing?.learned.relations ?? [],
  };
}

/** Rows `rl_tick(via)` wrote, read on the primary: each run of the statement writes exactly one. */
async function ticks(via: string): Promise<number> {
  return withAdminClient(cluster.primaryUrl, async (c) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM rl_log WHERE via = $1', [via])).rows[0].n));
}

/** Runs fn in an async context of its own, so that read-your-writes plays no part in where the next call goes. */
function inOwnContext<T>(fn: () => Promise<T>): Promise<T> {
  return new AsyncResource('kcm-learning-test').runInAsyncScope(fn);
}

describe('learning write functions from the standby\'s refusals', () => {
  test('manager.query: refused once and run on the primary, then sent straight to the primary', async () => {
    const { manager, warnings } = await startManager();
    const before = seen(manager);
    expect(before).toMatchObject({ refusals: 0, functions: [], relations: [] });

    const first = await inOwnContext(() => manager.query<{ id: number }>("SELECT rl_tick('query') AS id"));
    expect(first.rows[0].id).toBeGreaterThan(0);
    // It reached the standby, which refused it; it ran once, on the primary.
    expect(seen(manager)).toEqual({ replicaAcquired: before.replicaAcquired + 1, refusals: 1, functions: ['rl_tick'], relations: [] });
    expect(await ticks('query')).toBe(1);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0].message).toMatch(/Learned write function rl_tick\(\).*manager\.query.*25006.*routing\.primaryFunctions/);

    // Learned: the next statements calling it go to the primary without touching the standby.
    for (let i = 0; i < 3; i++) await inOwnContext(() => manager.query("SELECT rl_tick('query') AS id"));
    expect(seen(manager)).toEqual({ replicaAcquired: before.replicaAcquired + 1, refusals: 1, functions: ['rl_tick'], relations: [] });
    expect(await ticks('query')).toBe(4);
    expect(warnings()).toHaveLength(1);
    const metrics = await new PoolMetrics(() => manager.getPoolStats()).scrape();
    expect(metrics).toContain(`${ROUTING_LEARNED}{kind="function"} 1`);
    expect(metrics).toContain(`${ROUTING_LEARNED}{kind="relation"} 0`);
    expect(metrics).toContain(`${ROUTING_REFUSALS} 1`);

    // A read-only refusal says the statement writes, not that the standby is unwell: plain reads still go there.
    expect(manager.getPoolStats().replicas?.replica.healthy).toBe(true);
    expect((await inOwnContext(() => manager.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))).rows[0].r).toBe(true);
  });

  test('readKnex: refused once and run on the primary, then the statement never reaches the standby again', async () => {
    const { manager, warnings } = await startManager();

    const first = await inOwnContext(() => manager.readKnex.raw<{ rows: Array<{ id: number }> }>("SELECT rl_tick('knex') AS id"));
    expect(first.rows[0].id).toBeGreaterThan(0);
    expect(seen(manager)).toMatchObject({ refusals: 1, functions: ['rl_tick'] });
    expect(await ticks('knex')).toBe(1);
    expect(warnings()[0].message).toMatch(/Learned write function rl_tick\(\).*readKnex/);

    // knex leases before it shows the statement, so the standby still lends a connection; the
    // statement itself runs on the primary and the standby refuses nothing more.
    const built = await inOwnContext(() => manager.readKnex.select(manager.readKnex.raw("rl_tick('knex') AS id")));
    expect((built as Array<{ id: number }>)[0].id).toBeGreaterThan(0);
    expect(seen(manager)).toMatchObject({ refusals: 1, functions: ['rl_tick'] });
    expect(await ticks('knex')).toBe(2);
    // And what manager.query learned through readKnex it knows too: one store per manager.
    const acquired = seen(manager).replicaAcquired;
    await inOwnContext(() => manager.query("SELECT rl_tick('knex')"));
    expect(seen(manager)).toMatchObject({ replicaAcquired: acquired, refusals: 1 });
    expect(await ticks('knex')).toBe(3);
  });

  test('readKnex: a write is classified and runs on the primary, unrefused; a plain read stays on the standby', async () => {
    const { manager } = await startManager();
    const [row] = await inOwnContext(() => manager.readKnex('rl_log').insert({ via: 'knex-insert' }).returning<Array<{ id: number }>>('id'));
    expect(row.id).toBeGreaterThan(0);
    expect(await ticks('knex-insert')).toBe(1);
    expect(seen(manager).refusals).toBe(0);
    const read = await inOwnContext(() => manager.readKnex.raw<{ rows: Array<{ r: boolean }> }>('SELECT pg_is_in_recovery() AS r'));
    expect(read.rows[0].r).toBe(true);
  });

  test('a view over a writing function: the relation is learned when the statement calls no function', async () => {
    const { manager } = await startManager();
    await inOwnContext(() => manager.query('SELECT id FROM rl_ticking'));
    expect(seen(manager)).toMatchObject({ refusals: 1, functions: [], relations: ['rl_ticking'] });
    const acquired = seen(manager).replicaAcquired;
    await inOwnContext(() => manager.query('SELECT * FROM rl_ticking'));
    expect(seen(manager)).toMatchObject({ replicaAcquired: acquired, refusals: 1 });
    expect(await ticks('view')).toBe(2);
  });

  test('learnFromReadOnlyErrors: false: every call is refused and retried, nothing is learned or logged', async () => {
    const { manager, warnings } = await startManager({ learnFromReadOnlyErrors: false });
    const before = seen(manager);
    for (let i = 0; i < 2; i++) await inOwnContext(() => manager.query("SELECT rl_tick('unlearned')"));
    expect(seen(manager)).toEqual({ replicaAcquired: before.replicaAcquired + 2, refusals: 2, functions: [], relations: [] });
    expect(await ticks('unlearned')).toBe(2);
    expect(warnings()).toEqual([]);
    expect(manager.getPoolStats().routing?.learning).toBe(false);
  });
});

describe('declared write names', () => {
  test('a declared function never reaches the standby, through manager.query or readKnex', async () => {
    const { manager } = await startManager({ primaryFunctions: ['public.rl_tick'], primaryRelations: ['rl_ticking'] });
    const before = seen(manager);
    await inOwnContext(() => manager.query("SELECT rl_tick('declared') AS id"));
    await inOwnContext(() => manager.query('SELECT id FROM rl_ticking'));
    expect(seen(manager)).toEqual({ ...before, refusals: 0 });
    await inOwnContext(() => manager.readKnex.raw("SELECT rl_tick('declared') AS id"));
    expect(seen(manager).refusals).toBe(0);
    expect(await ticks('declared')).toBe(2);
  });

  test('EXPLAIN ANALYZE of a plain read is served by the standby; of a declared write function, by the primary', async () => {
    const { manager } = await startManager({ primaryFunctions: ['rl_tick'] });
    const before = seen(manager);
    const plan = await inOwnContext(() => manager.query<{ 'QUERY PLAN': string }>('EXPLAIN ANALYZE SELECT * FROM rl_items WHERE id = 1'));
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/actual time=/);
    expect(seen(manager).replicaAcquired).toBe(before.replicaAcquired + 1);

    await inOwnContext(() => manager.query("EXPLAIN ANALYZE SELECT rl_tick('explained')"));
    expect(seen(manager)).toMatchObject({ replicaAcquired: before.replicaAcquired + 1, refusals: 0 });
    expect(await ticks('explained')).toBe(1);
  });
});

describe('session-state warnings through manager.query', () => {
  test('without replicas too: each kind once per manager, with what to do instead', async () => {
    const { logger, lines } = capturingLogger('warn');
    const manager = getConnectionInstance({ connection: cluster.primaryUrl, pool: { min: 0, max: 2 }, logger });
    await manager.query('SET search_path = public');
    await manager.query("SELECT set_config('search_path', 'public', false)");
    await manager.query('CREATE TEMP TABLE rl_scratch (x int)');
    await manager.query('SELECT 1 AS plain');
    await manager.query('SET search_path = public');
    const warned = lines.filter((l) => l.meta.sessionState !== undefined);
    expect(warned.map((l) => l.meta.sessionState)).toEqual(['set', 'temp-table']);
    expect(warned[0].message).toMatch(/withConnection/);
  });
});
