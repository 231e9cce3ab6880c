/**
 * `manager.knex` behaves like knex (docs/knex.md): a connection knex disposed of is never lent
 * again, knex's query events name the connection, acquire timeouts are knex's KnexTimeoutError,
 * `client.config` describes the manager's connection and limits, and `knex.destroy()` lets a script
 * exit. Every test runs against the real server through the public API.
 */
import knexFactory, { KnexTimeoutError, type Knex } from 'knex';
import { closeConnectionInstance, getConnectionInstance, isConnectionManagerError, type ConnectionManager } from '../../lib';
import { testConfig as config, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { runFixture } from '../helpers/child';

const url = testDatabaseUrl();

afterEach(async () => {
  await closeConnectionInstance();
});

/** The pid of the server session running the statement marked `marker` (other than the asking one). */
async function sessionRunning(marker: string): Promise<{ pid: number; state: string } | undefined> {
  return withAdminClient(url, async (c) => {
    const { rows } = await c.query<{ pid: number; state: string }>(
      `select pid, state from pg_stat_activity where query like $1 and pid <> pg_backend_pid()`,
      [`%${marker}%`],
    );
    return rows[0];
  });
}

async function terminate(pid: number | undefined): Promise<void> {
  if (pid !== undefined) await withAdminClient(url, (c) => c.query('select pg_terminate_backend($1)', [pid]));
}

async function pidOf(db: Knex): Promise<number> {
  const result = await db.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
  return result.rows[0].pid;
}

describe('a connection knex disposed of (query timeout without cancel) is closed, not lent again', () => {
  async function timedOutThenNext(manager: ConnectionManager, db: Knex, marker: string): Promise<void> {
    const before = manager.getPoolStats().counters;
    await expect(db.raw(`select pg_sleep(30) /* ${marker} */`).timeout(50)).rejects.toBeInstanceOf(KnexTimeoutError);
    const stuck = await sessionRunning(marker);
    expect(stuck?.state).toBe('active');
    try {
      // The next query gets another session: it does not queue behind the abandoned statement.
      expect(await pidOf(db)).not.toBe(stuck?.pid);
      const after = manager.getPoolStats();
      expect(after.counters.validationFailures).toBe(before.validationFailures + 1);
      expect(after.connections).toHaveLength(after.total);
      expect(after.inUse).toBe(0);
    } finally {
      await terminate(stuck?.pid);
    }
  }

  test('through manager.knex (and readKnex, which is manager.knex without replicas)', async () => {
    const manager = getConnectionInstance(config('kcm-spec-knex-disposed', { min: 1, max: 1 }));
    await manager.ready();
    expect(manager.readKnex).toBe(manager.knex);
    await timedOutThenNext(manager, manager.knex, 'kcm-disposed-knex');
  });

  test('a later .timeout(ms, { cancel: true }) cancels its own statement, not the abandoned one', async () => {
    const manager = getConnectionInstance(config('kcm-spec-knex-cancel', { min: 1, max: 1 }));
    await manager.ready();
    const knex = manager.knex;
    await expect(knex.raw('select pg_sleep(30) /* kcm-cancel-old */').timeout(50)).rejects.toBeInstanceOf(KnexTimeoutError);
    const old = await sessionRunning('kcm-cancel-old');
    try {
      await expect(knex.raw('select pg_sleep(30) /* kcm-cancel-new */').timeout(200, { cancel: true })).rejects.toThrow(/Defined query timeout of 200ms exceeded/);
      // The abandoned statement still runs: the cancel went to the new statement's own session.
      expect((await sessionRunning('kcm-cancel-old'))?.state).toBe('active');
      expect((await sessionRunning('kcm-cancel-new'))?.state).not.toBe('active');
    } finally {
      await terminate(old?.pid);
    }
  });

  test('through conn.db: closed when the lease is released', async () => {
    const manager = getConnectionInstance(config('kcm-spec-knex-disposed-db', { min: 1, max: 1 }));
    await manager.ready();
    const before = manager.getPoolStats().counters;
    const conn = await manager.getConnection();
    await expect(conn.db.raw('select pg_sleep(30) /* kcm-disposed-db */').timeout(50)).rejects.toBeInstanceOf(KnexTimeoutError);
    const stuck = await sessionRunning('kcm-disposed-db');
    try {
      await manager.releaseConnection(conn);
      const next = await manager.getConnection();
      const { rows } = await next.query<{ pid: number }>('select pg_backend_pid() as pid');
      expect(rows[0].pid).not.toBe(stuck?.pid);
      expect(next.id).not.toBe(conn.id);
      await manager.releaseConnection(next);
      expect(manager.getPoolStats().counters.validationFailures).toBe(before.validationFailures + 1);
    } finally {
      await terminate(stuck?.pid);
    }
  });
});

test("knex's query events carry the connection id (__knexUid), the record's id", async () => {
  const manager = getConnectionInstance(config('kcm-spec-knex-uid', { min: 1, max: 1 }));
  await manager.ready();
  const seen: Array<[string, unknown]> = [];
  manager.knex.on('query', (q: { __knexUid?: unknown }) => seen.push(['query', q.__knexUid]));
  manager.knex.on('query-response', (_r: unknown, q: { __knexUid?: unknown }) => seen.push(['query-response', q.__knexUid]));
  manager.knex.on('query-error', (_e: unknown, q: { __knexUid?: unknown }) => seen.push(['query-error', q.__knexUid]));
  await manager.knex.raw('select 1');
  await expect(manager.knex.raw('select * from kcm_spec_no_such_table')).rejects.toMatchObject({ code: '42P01' });
  const id = manager.getPoolStats().connections[0].id;
  expect(seen).toEqual([
    ['query', id],
    ['query-response', id],
    ['query', id],
    ['query-error', id],
  ]);
});

test('an acquire timeout through knex is a KnexTimeoutError with sql and bindings, and E_ACQUIRE_TIMEOUT', async () => {
  // knex logs each failed acquire (as with its own pool); kept out of the test output.
  const log = { warn: jest.fn(), error: jest.fn(), debug: jest.fn(), deprecate: jest.fn() };
  const manager = getConnectionInstance(config('kcm-spec-knex-timeout', { min: 1, max: 1, acquireTimeoutMs: 200 }, { knex: { log } }));
  await manager.ready();
  const held = await manager.getConnection();
  try {
    const error = await manager.knex.raw('select ?::int as n', [7]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KnexTimeoutError);
    expect(error).toBeInstanceOf(knexFactory.KnexTimeoutError);
    expect(isConnectionManagerError(error, 'E_ACQUIRE_TIMEOUT')).toBe(true);
    expect(isConnectionManagerError(error, 'E_POOL_CLOSED')).toBe(false);
    expect(error).toMatchObject({ code: 'E_ACQUIRE_TIMEOUT', name: 'KnexTimeoutError', sql: 'select ?::int as n', bindings: [7] });
    expect((error as Error).message).toMatch(/pool\.acquireTimeoutMs|acquireTimeoutMs|timed out|Timed out/i);
    // Other errors keep their own class.
    expect(isConnectionManagerError(Object.assign(new Error('x'), { code: 'E_ACQUIRE_TIMEOUT' }))).toBe(false);
  } finally {
    await manager.releaseConnection(held);
  }
  expect(manager.getPoolStats().counters.timedOut).toBe(1);
  expect(log.warn).toHaveBeenCalledWith(expect.stringContaining('Acquire connection error: KnexTimeoutError'));
});

test('client.config describes the connection and limits; a knex built from a copy gets a pool of its own', async () => {
  const manager = getConnectionInstance(
    config('kcm-spec-knex-config', { min: 1, max: 3, acquireTimeoutMs: 4000, idleTimeoutMs: 0 }, {
      connection: { connectionString: url, application_name: 'kcm-spec-knex-config', password: 'not-shown' },
    }),
  );
  await manager.ready();
  const source = manager.knex.client.config as Knex.Config & { connection: Record<string, unknown> };
  expect(source.connection.connectionString).toBe(url);
  expect(source.connection.password).toBe('not-shown');
  expect(Object.keys(source.connection)).not.toContain('password');
  expect(JSON.stringify(source)).not.toContain('not-shown');
  expect(source.pool).toMatchObject({ min: 1, max: 3 });
  expect(source.pool).not.toHaveProperty('idleTimeoutMillis');
  expect(source.acquireConnectionTimeout).toBe(4000);
  expect(Object.keys(source)).not.toContain('connectionPool');

  const copy = knexFactory({ ...structuredClone(source), pool: { min: 0, max: 1 } });
  try {
    const before = manager.getPoolStats().counters.acquired;
    const [a, b] = await Promise.all([pidOf(copy), pidOf(copy)]);
    expect(a).toBe(b); // its own pool of one
    expect(manager.getPoolStats().counters.acquired).toBe(before);
    expect(copy.client.pool).not.toBe(manager.knex.client.pool);
  } finally {
    await copy.destroy();
  }
  // The same holds for a connection's bound knex.
  await manager.withConnection((conn) => {
    expect(conn.db.client.config).toMatchObject({ pool: { min: 1, max: 3 }, acquireConnectionTimeout: 4000 });
    expect(Object.keys(conn.db.client.config)).not.toContain('connectionPool');
  });
});

test('a script that ends with await knex.destroy() exits by itself', async () => {
  // A hang detector, not a speed threshold: the script must end on its own.
  const { killed, code, stdout, stderr } = await runFixture('knex-destroy-child.ts', [url], 10_000);
  expect({ killed, code, stderr }).toEqual({ killed: false, code: 0, stderr: '' });
  // It exited with the manager's idle connections still open: they do not hold the process.
  expect(stdout).toContain('destroyed open=true idle=2');
});

test('knex.destroy() leaves the shared manager and manager.knex working, and calls back', async () => {
  const manager = getConnectionInstance(config('kcm-spec-knex-destroy', { min: 1, max: 2 }));
  await manager.knex.raw('select 1');
  const done = jest.fn();
  await manager.knex.destroy(done);
  expect(done).toHaveBeenCalledWith();
  expect(manager.isOpen).toBe(true);
  expect((await manager.knex.raw<{ rows: unknown[] }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  await manager.withConnection(async (conn) => {
    expect((await conn.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    // A connection's bound knex likewise: destroy() leaves it working for this and later leases.
    await conn.db.destroy();
    expect((await conn.db.raw<{ rows: unknown[] }>('select 2 as two')).rows).toEqual([{ two: 2 }]);
  });
  await manager.withConnection(async (conn) => {
    expect((await conn.db.raw<{ rows: unknown[] }>('select 3 as three')).rows).toEqual([{ three: 3 }]);
  });
});
