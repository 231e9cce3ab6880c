/**
 * A server session killed under the pool (pg_terminate_backend, as an operator or a failover would):
 * the process survives, the dead connection is never handed out again, and the pool replaces it.
 */
import { closeConnectionInstance, getConnectionInstance, type PooledConnection } from '../../lib';
import { countBackends, testDatabaseUrl, withAdminClient, testConfig as config } from '../helpers/database';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();

afterEach(async () => {
  await closeConnectionInstance();
});

async function pidOf(conn: PooledConnection): Promise<number> {
  return (await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
}

async function terminate(pid: number): Promise<void> {
  const killed = await withAdminClient(url, async (c) => (await c.query<{ ok: boolean }>('select pg_terminate_backend($1) as ok', [pid])).rows[0].ok);
  expect(killed).toBe(true);
}

test('an idle connection whose backend is terminated is dropped and replaced', async () => {
  const appName = 'kcm-spec-killed-idle';
  const manager = getConnectionInstance(config(appName, { min: 2, max: 2 }));
  await manager.ready();

  // Learn both connections' backends.
  const [a, b] = [await manager.getConnection(), await manager.getConnection()];
  const pids = new Map([[a.id, await pidOf(a)], [b.id, await pidOf(b)]]);
  await manager.releaseConnection(a);
  await manager.releaseConnection(b);
  const victimId = a.id;
  const victimPid = pids.get(victimId) as number;

  await terminate(victimPid);

  // The pool learns from the driver that the session is gone, drops the record and opens a new one.
  await until(() => !manager.getPoolStats().connections.some((c) => c.id === victimId), { description: 'dead connection dropped' });
  await until(() => manager.getPoolStats().total === 2, { description: 'pool refilled to min' });
  const stats = manager.getPoolStats();
  expect(stats).toMatchObject({ total: 2, idle: 2, inUse: 0 });
  expect(stats.counters).toMatchObject({ created: 3, destroyed: 1 });
  expect(stats.counters.validationFailures).toBe(1);
  expect(stats.connections.map((c) => c.id)).toContain(b.id);

  // Every connection handed out now works, and none is the dead one.
  const [x, y] = [await manager.getConnection(), await manager.getConnection()];
  expect([x.id, y.id]).not.toContain(victimId);
  const livePids = [await pidOf(x), await pidOf(y)];
  expect(livePids).not.toContain(victimPid);
  expect(livePids).toContain(pids.get(b.id));
  await manager.releaseConnection(x);
  await manager.releaseConnection(y);
  expect(await countBackends(url, appName)).toBe(2);
});

test('with max 1, the next caller gets a new working connection on a different backend', async () => {
  const appName = 'kcm-spec-killed-single';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();
  const first = await manager.getConnection();
  const firstPid = await pidOf(first);
  await manager.releaseConnection(first);

  await terminate(firstPid);
  await until(() => manager.getPoolStats().counters.destroyed === 1, { description: 'dead connection dropped' });

  const next = await manager.getConnection({ timeoutMs: 5_000 });
  expect(next.id).not.toBe(first.id);
  expect(await pidOf(next)).not.toBe(firstPid);
  await manager.releaseConnection(next);
  // The old handle stays dead.
  await expect(first.query('select 1')).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
  expect(manager.getPoolStats()).toMatchObject({ total: 1, counters: { created: 2, destroyed: 1 } });
});

test('a checked-out connection whose backend is terminated fails its query and is not reused after release', async () => {
  const appName = 'kcm-spec-killed-held';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();
  const conn = await manager.getConnection();
  const pid = await pidOf(conn);

  await terminate(pid);
  await expect(conn.query('select 1')).rejects.toBeDefined();
  expect(conn.inUse).toBe(true);
  await manager.releaseConnection(conn);

  const next = await manager.getConnection({ timeoutMs: 5_000 });
  expect(next.id).not.toBe(conn.id);
  expect(await pidOf(next)).not.toBe(pid);
  await manager.releaseConnection(next);
  const stats = manager.getPoolStats();
  expect(stats).toMatchObject({ total: 1, inUse: 0, counters: { created: 2, destroyed: 1 } });
  expect(stats.counters.validationFailures).toBe(1);
});

test('a checked-out connection killed while a knex query runs on it does not crash the process', async () => {
  const appName = 'kcm-spec-killed-busy';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();
  const conn = await manager.getConnection();
  const pid = await pidOf(conn);

  const sleeping = conn.db.raw('select pg_sleep(30)');
  sleeping.catch(() => undefined);
  await until(
    async () =>
      withAdminClient(url, async (c) => (await c.query(`select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%' and state = 'active'`, [pid])).rowCount === 1),
    { description: 'query running on the backend' },
  );
  await terminate(pid);
  await expect(sleeping).rejects.toBeDefined();
  await manager.releaseConnection(conn);

  const next = await manager.getConnection({ timeoutMs: 5_000 });
  expect(await pidOf(next)).not.toBe(pid);
  await manager.releaseConnection(next);
  expect(manager.getPoolStats()).toMatchObject({ total: 1, counters: { destroyed: 1 } });
});

test('a caller waiting for the only connection is served by its replacement when it dies', async () => {
  const appName = 'kcm-spec-killed-waiter';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();
  const conn = await manager.getConnection();
  const pid = await pidOf(conn);
  const waiting = manager.getConnection({ timeoutMs: 10_000 });
  expect(manager.getPoolStats().waiting).toBe(1);

  await terminate(pid);
  await expect(conn.query('select 1')).rejects.toBeDefined();
  await manager.releaseConnection(conn);

  const next = await waiting;
  expect(next.id).not.toBe(conn.id);
  expect(await pidOf(next)).not.toBe(pid);
  await manager.releaseConnection(next);
  expect(manager.getPoolStats()).toMatchObject({ total: 1, waiting: 0, counters: { created: 2, destroyed: 1 } });
  expect(await countBackends(url, appName)).toBe(1);
});
