/**
 * A lease: one physical connection from getConnection() to releaseConnection(), whichever way it
 * is used (driver fast path, knex raw, query builder, transaction); refused after release; and
 * withConnection() always gives it back.
 */
import {
  closeConnectionInstance,
  ConnectionManager,
  getConnectionInstance,
  resolveOptions,
  type PooledConnection,
} from '../../lib';
import { countBackends, testDatabaseUrl, testConfig as config } from '../helpers/database';

const url = testDatabaseUrl();

afterEach(async () => {
  await closeConnectionInstance();
});

test('every way of using a lease runs on the same backend', async () => {
  const manager = getConnectionInstance(config('kcm-spec-lease-pid'));
  await manager.ready();
  const conn = await manager.getConnection();
  try {
    const viaQuery = (await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
    const viaRaw = (await conn.db.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid')).rows[0].pid;

    // A temporary table exists only in its own session: the builder can see it only on this backend.
    await conn.query('create temporary table lease_probe (n int)');
    await conn.db('lease_probe').insert({ n: 1 });
    const viaBuilder = (await conn.db('lease_probe').select(conn.db.raw('pg_backend_pid() as pid'), 'n')) as Array<{ pid: number; n: number }>;
    expect(viaBuilder).toEqual([{ pid: viaQuery, n: 1 }]);

    const viaTransaction = await conn.db.transaction(async (trx) => {
      await trx('lease_probe').insert({ n: 2 });
      const result = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
      return result.rows[0].pid;
    });
    const viaTransactionReturn = await conn.db.transaction((trx) => trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid'));

    expect(typeof viaQuery).toBe('number');
    expect(viaRaw).toBe(viaQuery);
    expect(viaTransaction).toBe(viaQuery);
    expect(viaTransactionReturn.rows[0].pid).toBe(viaQuery);
    // The transaction committed on this session.
    expect((await conn.query('select n from lease_probe order by n')).rows).toEqual([{ n: 1 }, { n: 2 }]);
    await conn.query('drop table lease_probe');

    // The lease stays on this backend while other leases come and go.
    const others = await Promise.all([manager.getConnection(), manager.getConnection()]);
    const otherPids = await Promise.all(others.map(async (o) => (await o.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid));
    expect(otherPids).not.toContain(viaQuery);
    await Promise.all(others.map((o) => manager.releaseConnection(o)));
    expect((await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid).toBe(viaQuery);
  } finally {
    await manager.releaseConnection(conn);
  }
});

test('conn.query resolves to the driver result { rows, rowCount, fields } and takes $n bindings', async () => {
  const manager = getConnectionInstance(config('kcm-spec-lease-result'));
  await manager.withConnection(async (conn) => {
    const result = await conn.query<{ a: number; b: string }>('select $1::int as a, $2::text as b', [7, 'x']);
    expect(result.rows).toEqual([{ a: 7, b: 'x' }]);
    expect(result.rowCount).toBe(1);
    expect(result.fields.map((f) => f.name)).toEqual(['a', 'b']);
    expect(result.command).toBe('SELECT');
    const many = await conn.query('select generate_series(1, 3) as n');
    expect(many.rowCount).toBe(3);
  });
});

describe('after release', () => {
  test('query and db reject with E_NOT_CHECKED_OUT', async () => {
    // knex logs refused acquires itself; keep that out of the test output.
    const quiet = () => undefined;
    const manager = getConnectionInstance({
      ...config('kcm-spec-lease-after'),
      knex: { log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } },
    });
    const conn = await manager.getConnection();
    await manager.releaseConnection(conn);
    expect(conn.inUse).toBe(false);
    await expect(conn.query('select 1')).rejects.toMatchObject({ name: 'ConnectionManagerError', code: 'E_NOT_CHECKED_OUT' });
    await expect(conn.db.raw('select 1')).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
    await expect(conn.db('pg_class').select('oid').limit(1)).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
  });

  test('a second release rejects with E_NOT_CHECKED_OUT and changes nothing', async () => {
    const manager = getConnectionInstance(config('kcm-spec-lease-double'));
    await manager.ready();
    const conn = await manager.getConnection();
    await manager.releaseConnection(conn);
    const before = manager.getPoolStats();
    await expect(manager.releaseConnection(conn)).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
    const after = manager.getPoolStats();
    expect(after.counters.released).toBe(before.counters.released);
    expect(after).toMatchObject({ total: before.total, idle: before.idle, inUse: 0 });
  });
});

test('releasing a connection this manager did not hand out rejects with E_NOT_CHECKED_OUT', async () => {
  const manager = getConnectionInstance(config('kcm-spec-lease-foreign'));
  await manager.ready();

  const fake = { id: 'conn_1_1700000000000000000', createdAt: new Date(), lastUsed: new Date(), inUse: true } as unknown as PooledConnection;
  await expect(manager.releaseConnection(fake)).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });

  // A real connection from another manager (built directly, outside the singleton).
  const other = new ConnectionManager(resolveOptions(config('kcm-spec-lease-foreign-other', { min: 0, max: 1 })));
  try {
    const foreign = await other.getConnection();
    await expect(manager.releaseConnection(foreign)).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
    expect(foreign.inUse).toBe(true);
    expect(other.getPoolStats().inUse).toBe(1);
    await other.releaseConnection(foreign);
    expect(other.getPoolStats().inUse).toBe(0);
  } finally {
    await other.close();
  }
  expect(manager.getPoolStats().counters.released).toBe(0);
});

describe('withConnection', () => {
  test('releases the connection when the callback succeeds', async () => {
    const manager = getConnectionInstance(config('kcm-spec-lease-with-ok'));
    let leased: PooledConnection | undefined;
    const value = await manager.withConnection(async (conn) => {
      leased = conn;
      expect(conn.inUse).toBe(true);
      expect(manager.getPoolStats().inUse).toBe(1);
      return (await conn.query<{ n: number }>('select 41 + 1 as n')).rows[0].n;
    });
    expect(value).toBe(42);
    expect(leased?.inUse).toBe(false);
    expect(manager.getPoolStats()).toMatchObject({ inUse: 0, counters: { acquired: 1, released: 1 } });
  });

  test('releases the connection when the callback throws, and rethrows', async () => {
    const manager = getConnectionInstance(config('kcm-spec-lease-with-throw'));
    let leased: PooledConnection | undefined;
    const failure = new Error('callback failed');
    await expect(
      manager.withConnection(async (conn) => {
        leased = conn;
        await conn.query('select 1');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(leased?.inUse).toBe(false);
    expect(manager.getPoolStats()).toMatchObject({ inUse: 0, counters: { acquired: 1, released: 1 } });

    // A failing query inside the callback is released too.
    await expect(manager.withConnection((conn) => conn.query('select * from no_such_table_kcm'))).rejects.toMatchObject({ code: '42P01' });
    expect(manager.getPoolStats()).toMatchObject({ inUse: 0, counters: { acquired: 2, released: 2 } });
  });

  test('does not release twice when the callback released the connection itself', async () => {
    const manager = getConnectionInstance(config('kcm-spec-lease-with-self', { min: 1, max: 1 }));
    await manager.withConnection(async (conn) => {
      await manager.releaseConnection(conn);
    });
    expect(manager.getPoolStats()).toMatchObject({ inUse: 0, idle: 1, counters: { acquired: 1, released: 1 } });
    // The connection is usable by the next caller.
    await manager.withConnection((conn) => conn.query('select 1'));
  });

  test('passes the acquire options on', async () => {
    const manager = getConnectionInstance(config('kcm-spec-lease-with-options', { min: 1, max: 1 }));
    const held = await manager.getConnection();
    await expect(manager.withConnection((conn) => conn.query('select 1'), { timeoutMs: 50 })).rejects.toMatchObject({ code: 'E_ACQUIRE_TIMEOUT' });
    await manager.releaseConnection(held);
  });
});

test('PooledConnection fields', async () => {
  const appName = 'kcm-spec-lease-fields';
  const before = Date.now();
  const manager = getConnectionInstance(config(appName, { min: 1, max: 2 }));
  await manager.ready();
  const after = Date.now();

  const conn = await manager.getConnection();
  expect(conn.id).toMatch(/^conn_\d+_\d{19}$/);
  const [, n, ns] = /^conn_(\d+)_(\d{19})$/.exec(conn.id) as RegExpExecArray;
  expect(Number(n)).toBeGreaterThanOrEqual(1);
  // The suffix is the creation time in Unix nanoseconds.
  const createdMs = Number(BigInt(ns) / 1_000_000n);
  expect(createdMs).toBeGreaterThanOrEqual(before - 1);
  expect(createdMs).toBeLessThanOrEqual(after + 1);

  expect(conn.createdAt).toBeInstanceOf(Date);
  expect(conn.lastUsed).toBeInstanceOf(Date);
  expect(conn.createdAt.getTime()).toBeGreaterThanOrEqual(before);
  expect(conn.lastUsed.getTime()).toBeGreaterThanOrEqual(conn.createdAt.getTime());
  expect(conn.inUse).toBe(true);
  const leasedAt = conn.lastUsed.getTime();

  const stats = manager.getPoolStats();
  expect(stats.connections.find((c) => c.id === conn.id)).toMatchObject({ inUse: true });

  await manager.releaseConnection(conn);
  expect(conn.inUse).toBe(false);
  expect(conn.lastUsed.getTime()).toBeGreaterThanOrEqual(leasedAt);
  expect(manager.getPoolStats().connections.find((c) => c.id === conn.id)).toMatchObject({ inUse: false });

  // Connection numbers are never reused: a second connection gets a larger one.
  const a = await manager.getConnection();
  const b = await manager.getConnection();
  const numbers = [a, b].map((c) => Number(/^conn_(\d+)_/.exec(c.id)?.[1]));
  expect(new Set(numbers).size).toBe(2);
  expect(Math.max(...numbers)).toBeGreaterThan(Number(n));
  await manager.releaseConnection(a);
  await manager.releaseConnection(b);
  expect(await countBackends(url, appName)).toBe(2);
});
