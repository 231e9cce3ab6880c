/**
 * The manager's integration scenarios run through a real PgBouncer, in the mode each spec file picks
 * (pgbouncer-session.spec.ts, pgbouncer-transaction.spec.ts): leases, manager.knex, transactions,
 * rollback on release, validation and keepalive, the triggers, killed server sessions and a
 * PostgreSQL restart behind the running PgBouncer.
 */
import type { Knex } from 'knex';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type ConnectionManagerConfig } from '../../lib';
import type { PgBouncerPoolMode } from '../../scripts/pgbouncer';
import { withAdminClient } from '../helpers/database';
import { pgBouncerAdmin, type PgBouncerSetup } from '../helpers/pgbouncer';
import { until } from '../helpers/poll';
import { silentLogger } from '../helpers/silent-logger';

type Pool = NonNullable<ConnectionManagerConfig['pool']>;

/** Server backends serving clients (PgBouncer's server connections), other than the counting one. */
async function serverBackends(url: string): Promise<number[]> {
  return withAdminClient(url, async (c) =>
    (
      await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> 'kcm-test-admin'`,
      )
    ).rows.map((r) => r.pid),
  );
}

async function rowCount(url: string, table: string): Promise<number> {
  return withAdminClient(url, async (c) => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
}

/** The scenarios, in a describeWithPgBouncer body. */
export function pgBouncerScenarios(mode: PgBouncerPoolMode, setup: () => PgBouncerSetup): void {
  const config = (appName: string, pool: Pool = { min: 1, max: 3 }, extra: Partial<ConnectionManagerConfig> = {}): ConnectionManagerConfig => ({
    connection: { connectionString: setup().bouncer.url, application_name: appName },
    pool,
    logger: silentLogger(),
    pgbouncer: mode,
    ...extra,
  });
  const table = `kcm_pgb_${mode}`;

  beforeAll(async () => {
    await withAdminClient(setup().server.url, (c) => c.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, label text NOT NULL)`));
  });
  beforeEach(async () => {
    await withAdminClient(setup().server.url, (c) => c.query(`TRUNCATE ${table}`));
  });
  afterEach(async () => {
    await closeConnectionInstance();
  });

  test(`leases: getConnection, withConnection and conn.query; the statement cache is ${mode === 'session' ? 'on' : 'off'} by default`, async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-lease`));
    await manager.ready();
    const conn = await manager.getConnection();
    expect((await conn.query<{ n: number }>('SELECT $1::int + 1 AS n', [41])).rows[0].n).toBe(42);
    await manager.releaseConnection(conn);
    for (let i = 0; i < 10; i++) {
      const n = await manager.withConnection(async (c) => (await c.query<{ n: number }>('SELECT $1::int * 2 AS n', [i])).rows[0].n);
      expect(n).toBe(i * 2);
    }
    const stats = manager.getPoolStats();
    if (mode === 'session') expect(stats.statementCache?.hits).toBeGreaterThan(0);
    else expect(stats.statementCache).toBeUndefined();
    expect(stats).toMatchObject({ inUse: 0, counters: { validationFailures: 0 } });
  });

  test('manager.knex: the query builder and raw', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-knex`));
    await manager.knex(table).insert([{ label: 'a' }, { label: 'b' }, { label: 'c' }]);
    const rows = await manager.knex(table).select('label').where('label', '<>', 'b').orderBy('label');
    expect(rows).toEqual([{ label: 'a' }, { label: 'c' }]);
    const raw = await manager.knex.raw<{ rows: { n: number }[] }>(`SELECT count(*)::int AS n FROM ${table} WHERE label = ?`, ['b']);
    expect(raw.rows[0].n).toBe(1);
    await manager.withConnection(async (c) => expect(await c.db(table).count<{ count: string }[]>('* as count')).toEqual([{ count: '3' }]));
  });

  test('transactions: manager.transaction and knex transactions commit and roll back', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-trx`));
    await manager.transaction(async (trx) => {
      await trx(table).insert({ label: 'committed' });
    });
    await expect(
      manager.transaction(async (trx) => {
        await trx(table).insert({ label: 'rolled back' });
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    await manager.knex.transaction(async (trx: Knex.Transaction) => {
      await trx(table).insert({ label: 'knex committed' });
      // SET LOCAL lasts until the transaction ends: safe in every mode.
      await trx.raw(`SET LOCAL application_name = 'in-trx'`);
      expect((await trx.raw<{ rows: { a: string }[] }>(`SELECT current_setting('application_name') AS a`)).rows[0].a).toBe('in-trx');
    });
    const trx = await manager.knex.transaction();
    await trx(table).insert({ label: 'knex rolled back' });
    await trx.rollback();
    const labels = (await manager.knex(table).select('label').orderBy('label')).map((r: { label: string }) => r.label);
    expect(labels).toEqual(['committed', 'knex committed']);
  });

  test('a connection released inside a transaction is rolled back before anyone gets it again', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-rollback`, { min: 1, max: 1 }));
    const conn = await manager.getConnection();
    await conn.query('BEGIN');
    await conn.query(`INSERT INTO ${table} (label) VALUES ('left open')`);
    await manager.releaseConnection(conn);
    const again = await manager.getConnection();
    expect(again.id).toBe(conn.id);
    // Not in a transaction any more: the row is gone and the server holds no transaction open.
    expect((await again.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    await manager.releaseConnection(again);
    expect(await rowCount(setup().server.url, table)).toBe(0);
    const open = await withAdminClient(setup().server.url, async (c) =>
      (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'`)).rows[0].n,
    );
    expect(open).toBe(0);
  });

  test('validation (isConnectionValid) and keepalive pings go through PgBouncer', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-keepalive`, { min: 2, max: 2, keepaliveIntervalMs: 100 }));
    await manager.ready();
    const conn = await manager.getConnection();
    expect(await manager.isConnectionValid(conn)).toBe(true);
    await manager.releaseConnection(conn);
    expect(await manager.isConnectionValid(conn)).toBe(false);
    // With nothing checked out, PgBouncer still counts queries: the pings of the idle connections.
    const queries = async () =>
      (await pgBouncerAdmin<{ database: string; total_query_count: string }>(setup().bouncer, 'SHOW STATS'))
        .filter((r) => r.database === 'postgres')
        .reduce((sum, r) => sum + Number(r.total_query_count), 0);
    const before = await queries();
    await until(async () => (await queries()) >= before + 4, { timeoutMs: 15_000, intervalMs: 50, description: 'keepalive pings counted by PgBouncer' });
    // A ping may be in flight now (counted in inUse): what matters is that none was closed.
    expect(manager.getPoolStats()).toMatchObject({ total: 2, counters: { validationFailures: 0, destroyed: 0 } });
  });

  test('triggers: resetPool, triggerRenewConnections and triggerExpireConnections', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-triggers`, { min: 2, max: 4 }));
    await manager.ready();
    const ids = () => manager.getPoolStats().connections.map((c) => c.id);
    const first = ids();
    expect(await manager.resetPool()).toBe(2);
    await until(() => manager.getPoolStats().total === 2, { timeoutMs: 10_000, description: 'refilled after the reset' });
    const second = ids();
    expect(second.some((id) => first.includes(id))).toBe(false);
    expect(await manager.triggerRenewConnections()).toBe(2);
    const third = ids();
    expect(third.some((id) => second.includes(id))).toBe(false);
    // Nothing is past its idle timeout or lifetime: nothing to expire.
    expect(await manager.triggerExpireConnections()).toBe(0);
    expect((await manager.query<{ n: number }>('SELECT 1 AS n')).rows[0].n).toBe(1);
  });

  test('a session timeout in the connection options is a startup parameter PgBouncer refuses: E_CONNECT naming it', async () => {
    const manager = getConnectionInstance({
      ...config(`kcm-pgb-${mode}-startup`, { min: 0, max: 1 }),
      connection: { connectionString: setup().bouncer.url, statement_timeout: 1000 },
    });
    await expect(manager.query('SELECT 1')).rejects.toMatchObject({
      code: 'E_CONNECT',
      message: expect.stringContaining('unsupported startup parameter: statement_timeout') as unknown,
    });
  });

  /**
   * What the server sessions' end does to the manager's connections: in session mode PgBouncer closes
   * the client connection paired with each, and the manager drops those (counted as validation
   * failures) and opens new ones; in transaction mode an idle server session is PgBouncer's alone, it
   * opens another, and the manager's connections never notice. Resolves once that has happened.
   */
  async function afterServerSessionsEnd(manager: ConnectionManager, before: { total: number; failures: number; ids?: string[] }): Promise<void> {
    if (mode === 'session') {
      // Every connection it had is dropped (at least that many failures: one opened while the server
      // restarted may be dropped too) and none of them is still among its connections.
      const old = new Set(before.ids ?? []);
      await until(() => {
        const stats = manager.getPoolStats();
        return stats.counters.validationFailures >= before.failures + before.total && stats.connections.every((c) => !old.has(c.id));
      }, {
        timeoutMs: 10_000,
        description: 'every connection PgBouncer closed dropped by the manager',
      });
    } else {
      expect(manager.getPoolStats().counters.validationFailures).toBe(before.failures);
    }
  }

  async function queriesAllSucceed(manager: ConnectionManager): Promise<void> {
    for (let i = 0; i < 20; i++) {
      expect(await manager.withConnection(async (c) => (await c.query<{ n: number }>('SELECT $1::int AS n', [i])).rows[0].n)).toBe(i);
    }
    await Promise.all(Array.from({ length: 6 }, (_, i) => manager.query<{ n: number }>('SELECT $1::int AS n', [i])));
  }

  test('server sessions killed behind PgBouncer (pg_terminate_backend): the manager recovers without a failed query', async () => {
    const manager = getConnectionInstance(config(`kcm-pgb-${mode}-killed`, { min: 3, max: 3 }));
    await manager.ready();
    await Promise.all([1, 2, 3].map(() => manager.withConnection((c) => c.query('SELECT pg_sleep(0.01)'))));
    const { server } = setup();
    const victims = await serverBackends(server.url);
    expect(victims.length).toBeGreaterThan(0);
    const before = { total: manager.getPoolStats().total, failures: manager.getPoolStats().counters.validationFailures };
    await withAdminClient(server.url, (c) => c.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [victims]));
    await until(async () => (await serverBackends(server.url)).every((pid) => !victims.includes(pid)), { timeoutMs: 10_000, description: 'the killed sessions gone' });
    await afterServerSessionsEnd(manager, before);
    await queriesAllSucceed(manager);
    expect(manager.getPoolStats().total).toBe(3);
    expect((await serverBackends(server.url)).some((pid) => victims.includes(pid))).toBe(false);
  });

  test('PostgreSQL restarted behind a running PgBouncer: the manager serves again without a failed query', async () => {
    const manager: ConnectionManager = getConnectionInstance(config(`kcm-pgb-${mode}-restart`, { min: 2, max: 2 }));
    await manager.ready();
    await manager.query('SELECT 1');
    const stats = manager.getPoolStats();
    const before = { total: stats.total, failures: stats.counters.validationFailures, ids: stats.connections.map((c) => c.id) };
    const { server } = setup();
    await server.stop('fast');
    await server.start();
    await afterServerSessionsEnd(manager, before);
    await queriesAllSucceed(manager);
    await manager.knex(table).insert({ label: 'after restart' });
    expect(await rowCount(server.url, table)).toBe(1);
    expect(manager.getPoolStats().total).toBe(2);
  });
}
