/**
 * Named pools on the real PostgreSQL: a static pool over a second database, and 50 tenant pools
 * made by `poolFactory`, each logging in as a role of its own, under a budget of 20 connections.
 * pg_stat_activity is sampled while the tenants run: it never shows more of the manager's sessions
 * than the budget; every tenant's statements run as its own role; pools closed as idle, and the
 * manager at close, leave no session. Every loop is bounded and stops by itself.
 */
import { closeConnectionInstance, getConnectionInstance } from '../../lib';
import { silentLogger, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';

const TENANTS = 50;
const BUDGET = 20;
const suffix = `${process.pid}`;
const secondDb = `kcm_analytics_${suffix}`;
const tenant = (i: number): string => `kcm_tenant_${suffix}_${i}`;

function urlFor(database: string, user?: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${database}`;
  if (user !== undefined) url.username = user;
  return url.toString();
}

/** The test server's database name. */
const mainDb = (): string => new URL(testDatabaseUrl()).pathname.slice(1);

async function sessions(appName: string): Promise<Array<{ usename: string; datname: string }>> {
  return withAdminClient(testDatabaseUrl(), async (client) => {
    const { rows } = await client.query<{ usename: string; datname: string }>(
      "SELECT usename, datname FROM pg_stat_activity WHERE backend_type = 'client backend' AND split_part(application_name, ':', 1) = $1",
      [appName],
    );
    return rows;
  });
}

beforeAll(async () => {
  await withAdminClient(testDatabaseUrl(), async (client) => {
    await client.query(`CREATE DATABASE ${secondDb}`);
    for (let i = 0; i < TENANTS; i++) await client.query(`CREATE ROLE ${tenant(i)} LOGIN`);
  });
});

afterAll(async () => {
  await closeConnectionInstance();
  await withAdminClient(testDatabaseUrl(), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${secondDb} WITH (FORCE)`);
    for (let i = 0; i < TENANTS; i++) await client.query(`DROP ROLE IF EXISTS ${tenant(i)}`);
  });
});

afterEach(async () => {
  await closeConnectionInstance();
});

describe('named pools on a real server', () => {
  test('a static pool over a second database: its queries, knex and transactions run there; the default pool stays on its own', async () => {
    const appName = 'kcm-named-static';
    const manager = getConnectionInstance({
      connection: { connectionString: testDatabaseUrl(), application_name: appName },
      pool: { min: 1, max: 3 },
      pools: { analytics: { connection: { connectionString: urlFor(secondDb), application_name: appName }, pool: { max: 2 } } },
      logger: silentLogger,
    });
    const analytics = manager.pool('analytics');
    expect((await analytics.query<{ db: string }>('select current_database() as db')).rows[0].db).toBe(secondDb);
    expect((await analytics.knex.raw<{ rows: Array<{ db: string }> }>('select current_database() as db')).rows[0].db).toBe(secondDb);
    expect(await analytics.transaction(async (trx) => (await trx.raw<{ rows: Array<{ db: string }> }>('select current_database() as db')).rows[0].db)).toBe(secondDb);
    expect((await manager.query<{ db: string }>('select current_database() as db')).rows[0].db).not.toBe(secondDb);
    const stats = manager.getPoolStats();
    expect(Object.keys(stats.pools ?? {})).toEqual(['primary', 'analytics']);
    expect(stats.pools?.analytics).toMatchObject({ max: 2, min: 0 });
    expect(await analytics.resetPool()).toBeGreaterThanOrEqual(1);
    const byDb = await sessions(appName);
    expect(byDb.filter((s) => s.datname === secondDb).length).toBeLessThanOrEqual(2);
    await closeConnectionInstance();
    expect(await sessions(appName)).toEqual([]);
  });

  test(`${TENANTS} tenant pools made on demand under a budget of ${BUDGET}: never more sessions than the budget, each tenant as its own role, none left after`, async () => {
    const appName = 'kcm-named-tenants';
    const manager = getConnectionInstance({
      connection: { connectionString: testDatabaseUrl(), application_name: appName },
      pool: { min: 0, max: 4, acquireTimeoutMs: 60_000 },
      // (pg lets a connection string's user win over a `user` key: the role goes in the URL.)
      poolFactory: (name) => ({ connection: { connectionString: urlFor(mainDb(), name), application_name: appName }, pool: { max: 3 } }),
      poolIdleTimeoutMs: 1_000,
      budget: { maxConnections: BUDGET },
      logger: silentLogger,
    });
    let running = true;
    let most = 0;
    let samples = 0;
    const sampler = (async () => {
      await withAdminClient(testDatabaseUrl(), async (client) => {
        while (running) {
          const { rows } = await client.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND split_part(application_name, ':', 1) = $1",
            [appName],
          );
          most = Math.max(most, rows[0].n);
          samples++;
        }
      });
    })();
    // Every tenant runs 4 statements, 3 at a time, all tenants at once: far more demand than the budget.
    const wrong: string[] = [];
    await Promise.all(
      Array.from({ length: TENANTS }, async (_, i) => {
        const pool = manager.pool(tenant(i));
        await Promise.all(Array.from({ length: 3 }, async () => {
          for (let k = 0; k < 4; k++) {
            const { rows } = await pool.query<{ who: string }>('select current_user as who, pg_sleep(0.002)');
            if (rows[0].who !== tenant(i)) wrong.push(`${tenant(i)} ran as ${rows[0].who}`);
          }
        }));
      }),
    );
    running = false;
    await sampler;
    const stats = manager.getPoolStats();
    if (process.env.KCM_REPORT) console.log(`most sessions seen: ${most} in ${samples} samples; budget ${JSON.stringify(stats.budget)}`);
    expect(wrong).toEqual([]);
    expect(samples).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(BUDGET);
    expect(stats.budget?.reclaimed).toBeGreaterThan(0);
    expect(stats.totals?.made).toBe(TENANTS);
    // Unused for poolIdleTimeoutMs, the tenant pools close and their sessions end.
    await until(() => (manager.getPoolStats().totals?.closed ?? 0) === TENANTS, { timeoutMs: 20_000, intervalMs: 50, description: 'idle tenant pools closed' });
    await until(async () => (await sessions(appName)).length === 0, { timeoutMs: 10_000, intervalMs: 20, description: 'no session left' });
    expect(manager.getPoolStats().totals?.counters.acquired).toBeGreaterThanOrEqual(TENANTS * 12);
    await closeConnectionInstance();
    expect(await sessions(appName)).toEqual([]);
  }, 120_000);
});
