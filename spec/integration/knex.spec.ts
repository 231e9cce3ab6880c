/**
 * `manager.knex` is a plain knex instance whose pool is the manager: its queries check connections
 * out and back in through the same records, limits and stats as explicit leases.
 */
import { closeConnectionInstance, getConnectionInstance, type PoolStats } from '../../lib';
import { countBackends, testDatabaseUrl, withAdminClient, testConfig as config } from '../helpers/database';
import { track, until } from '../helpers/poll';

const url = testDatabaseUrl();
const TABLE = 'kcm_spec_knex_items';

afterEach(async () => {
  await closeConnectionInstance();
});

afterAll(async () => {
  await withAdminClient(url, (c) => c.query(`drop table if exists ${TABLE}`));
});

test('schema, insert, select and transactions through manager.knex are counted by the manager', async () => {
  const manager = getConnectionInstance(config('kcm-spec-knex-crud', { min: 1, max: 3 }));
  await manager.ready();
  const knex = manager.knex;
  const start = manager.getPoolStats().counters;

  await knex.schema.dropTableIfExists(TABLE);
  await knex.schema.createTable(TABLE, (t) => {
    t.increments('id');
    t.string('name').notNullable();
  });
  await knex(TABLE).insert([{ name: 'a' }, { name: 'b' }]);
  expect(await knex(TABLE).select('name').orderBy('id')).toEqual([{ name: 'a' }, { name: 'b' }]);

  const afterCrud = manager.getPoolStats();
  expect(afterCrud.counters.acquired).toBeGreaterThanOrEqual(start.acquired + 4);
  expect(afterCrud.counters.released).toBe(afterCrud.counters.acquired);
  expect(afterCrud.inUse).toBe(0);

  // A transaction holds one connection for its whole body and gives it back at the end.
  const pids = await knex.transaction(async (trx) => {
    expect(manager.getPoolStats().inUse).toBe(1);
    await trx(TABLE).insert({ name: 'c' });
    const first = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
    const second = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
    return [first.rows[0].pid, second.rows[0].pid];
  });
  expect(pids[0]).toBe(pids[1]);
  const afterTrx = manager.getPoolStats();
  expect(afterTrx.counters.acquired).toBe(afterCrud.counters.acquired + 1);
  expect(afterTrx.counters.released).toBe(afterTrx.counters.acquired);
  expect(afterTrx.inUse).toBe(0);
  expect(await knex(TABLE).count<Array<{ count: string }>>('* as count')).toEqual([{ count: '3' }]);

  // A transaction that throws is rolled back and its connection returned.
  await expect(
    knex.transaction(async (trx) => {
      await trx(TABLE).insert({ name: 'd' });
      throw new Error('abandon');
    }),
  ).rejects.toThrow('abandon');
  expect(manager.getPoolStats().inUse).toBe(0);
  expect((await knex(TABLE).select('name').orderBy('id')).map((r: { name: string }) => r.name)).toEqual(['a', 'b', 'c']);

  // A failing knex query gives its connection back as well.
  await expect(knex('kcm_spec_no_such_table').select()).rejects.toMatchObject({ code: '42P01' });
  const end = manager.getPoolStats();
  expect(end.inUse).toBe(0);
  expect(end.counters.released).toBe(end.counters.acquired);
  // Nothing went around the manager: every knex query used one of its (at most 3) connections.
  expect(end.total).toBeLessThanOrEqual(3);
  expect(end.counters.created).toBe(end.total);
});

test('manager.knex respects max: 10 concurrent queries on max 3 never use more than 3 backends', async () => {
  const appName = 'kcm-spec-knex-max';
  const MAX = 3;
  const manager = getConnectionInstance(config(appName, { min: 1, max: MAX }));
  await manager.ready();

  const samples: PoolStats[] = [];
  const sample = () => samples.push(manager.getPoolStats());
  let running = true;
  const serverCounts: number[] = [];
  const serverSampler = (async () => {
    while (running) serverCounts.push(await countBackends(url, appName));
  })();
  const statsSampler = setInterval(sample, 2);

  const before = manager.getPoolStats().counters;
  const queries = Array.from({ length: 10 }, () => manager.knex.raw('select pg_sleep(0.05)').then((r) => (sample(), r)));
  try {
    // Ten queries on three connections: the ones knex could not get a connection for wait in line.
    await until(() => {
      const s = manager.getPoolStats();
      samples.push(s);
      return s.waiting > 0;
    }, { intervalMs: 1, description: 'knex queries waiting for a connection' });
    await Promise.all(queries);
  } finally {
    running = false;
    clearInterval(statsSampler);
    await serverSampler;
  }
  sample();

  for (const s of samples) {
    expect(s.total).toBeLessThanOrEqual(MAX);
    expect(s.total + s.pending).toBeLessThanOrEqual(MAX);
    expect(s.total).toBe(s.idle + s.inUse);
    expect(s.connections).toHaveLength(s.total);
  }
  expect(samples.some((s) => s.waiting > 0)).toBe(true);
  expect(Math.max(...samples.map((s) => s.total))).toBe(MAX);
  expect(Math.max(...serverCounts)).toBeLessThanOrEqual(MAX);

  const after = manager.getPoolStats();
  expect(after.counters.acquired - before.acquired).toBe(10);
  expect(after.counters.released - before.released).toBe(10);
  expect(after.wait.count).toBeGreaterThan(0);
  expect(after).toMatchObject({ total: MAX, inUse: 0, waiting: 0 });
  expect(await countBackends(url, appName)).toBe(MAX);
});

test('knex queries and explicit leases share one pool', async () => {
  const appName = 'kcm-spec-knex-shared';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();

  const lease = await manager.getConnection();
  const leasePid = (await lease.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;

  // The only connection is leased: a knex query has to wait for it.
  const query = track(manager.knex.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid'));
  await until(() => manager.getPoolStats().waiting === 1, { description: 'knex query waiting for the leased connection' });
  expect(query.settled).toBe(false);
  expect(manager.getPoolStats()).toMatchObject({ total: 1, inUse: 1, pending: 0 });

  await manager.releaseConnection(lease);
  const result = await query.promise;
  expect(result.rows[0].pid).toBe(leasePid);

  // And the other way round: a lease waits while a knex transaction holds the connection.
  let releaseTrx: () => void = () => undefined;
  const trxHeld = new Promise<void>((resolve) => (releaseTrx = resolve));
  const trx = manager.knex.transaction(async (t) => {
    await t.raw('select 1');
    await trxHeld;
  });
  await until(() => manager.getPoolStats().inUse === 1, { description: 'transaction holding the connection' });
  const waiting = track(manager.getConnection());
  await until(() => manager.getPoolStats().waiting === 1, { description: 'lease waiting behind the transaction' });
  expect(waiting.settled).toBe(false);
  releaseTrx();
  await trx;
  const next = await waiting.promise;
  expect((await next.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid).toBe(leasePid);
  await manager.releaseConnection(next);

  const stats = manager.getPoolStats();
  expect(stats.counters.created).toBe(1);
  expect(stats.counters.released).toBe(stats.counters.acquired);
  expect(await countBackends(url, appName)).toBe(1);
});

test('manager.knex.destroy() does not close the manager, and manager.knex keeps working', async () => {
  const manager = getConnectionInstance(config('kcm-spec-knex-destroy', { min: 1, max: 2 }));
  await manager.ready();
  await manager.knex.destroy();
  expect(manager.isOpen).toBe(true);
  expect((await manager.knex.raw<{ rows: unknown[] }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  await manager.withConnection(async (conn) => {
    expect((await conn.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });
});
