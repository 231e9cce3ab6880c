/**
 * Read/write splitting when the standby fails: stopped under load, and lagging behind because its
 * replay is paused. Real primary, real hot standby (spec/helpers/replica-cluster.ts); which server
 * ran a read is proven by `pg_is_in_recovery()`.
 */
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
  type ConnectionManagerConfig,
  type RoutingOptions,
} from '../../lib';
import { withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';
import { capturingLogger } from '../helpers/silent-logger';

let cluster: ReplicaCluster;
let appCounter = 0;

useReplicaCluster((c) => (cluster = c), {
  statements: [
    'CREATE TABLE routing_ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())',
    'CREATE FUNCTION routing_tick() RETURNS bigint LANGUAGE sql VOLATILE AS $$ INSERT INTO routing_ticks DEFAULT VALUES RETURNING id $$',
  ],
  replayedSql: "SELECT 1 FROM pg_proc WHERE proname = 'routing_tick'",
});

afterEach(async () => {
  await closeConnectionInstance();
  // Whatever a test did to the standby, the next one finds it running and replaying.
  await cluster.replica.start();
  await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_wal_replay_resume()'));
}, 60_000);

/**
 * A manager over the cluster. Its log goes to a capturing logger at level error (a stopped standby
 * makes the pools log every failed connection attempt): nothing is printed.
 */
function startManager(routing: RoutingOptions, logger: ConnectionManagerConfig['logger'] = capturingLogger('error').logger): ConnectionManager {
  const app = `kcm-routing-faults-${process.pid}-${++appCounter}`;
  return getConnectionInstance({
    connection: { connectionString: cluster.primaryUrl, application_name: app },
    pool: { min: 1, max: 10, acquireTimeoutMs: 20_000, createTimeoutMs: 2_000 },
    retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 100 },
    logger,
    replicas: [{ name: 'replica', connection: { connectionString: cluster.replicaUrl, application_name: `${app}-replica` } }],
    routing,
  });
}

function replicaStats(manager: ConnectionManager) {
  const stats = manager.getPoolStats().replicas?.replica;
  if (!stats) throw new Error('no replica stats');
  return stats;
}

async function readOnStandby(manager: ConnectionManager): Promise<boolean> {
  return (await manager.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r;
}

describe('a standby that fails', () => {
  test('stopped under load: no read fails, reads fall back to the primary, and the standby returns after a restart', async () => {
    const manager = startManager({ healthCheckIntervalMs: 100 });
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });
    const changesBefore = replicaStats(manager).healthChanges;

    const WORKERS = 16;
    const MAX_READS_PER_WORKER = 20_000;
    let stopLoad = false;
    const tally = { standby: 0, primary: 0, failed: 0 };
    const failures: unknown[] = [];
    const worker = async () => {
      for (let i = 0; i < MAX_READS_PER_WORKER && !stopLoad; i++) {
        try {
          const { rows } = await manager.query<{ r: boolean; n: number }>('SELECT pg_is_in_recovery() AS r, count(*)::int AS n FROM routing_ticks');
          if (rows[0].r) tally.standby++;
          else tally.primary++;
        } catch (error) {
          tally.failed++;
          if (failures.length < 5) failures.push(error);
        }
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, worker));
    try {
      await until(() => tally.standby >= 200, { timeoutMs: 20_000, description: 'reads served by the standby under load' });

      await cluster.replica.stop('fast');
      await until(() => !replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby out of rotation' });
      // Reads go on, on the primary.
      const primaryReads = tally.primary;
      await until(() => tally.primary >= primaryReads + 500, { timeoutMs: 20_000, description: 'reads served by the primary' });
      expect(replicaStats(manager).healthy).toBe(false);
      expect(replicaStats(manager).unhealthyReason).toBeDefined();
    } finally {
      stopLoad = true;
      await load;
    }
    expect(failures).toEqual([]);
    expect(tally.failed).toBe(0);
    expect(await readOnStandby(manager)).toBe(false);

    await cluster.replica.start();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby back in rotation' });
    // Its pool's connections died with the server; reads still never fail, and reach the standby again.
    await until(() => readOnStandby(manager), { timeoutMs: 15_000, intervalMs: 20, description: 'a read served by the restarted standby' });
    expect(replicaStats(manager).healthChanges).toBeGreaterThanOrEqual(changesBefore + 2);
  }, 120_000);

  test('reads whose standby session was killed do not fail', async () => {
    const manager = startManager({ healthCheckIntervalMs: 60_000 });
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });
    expect(await readOnStandby(manager)).toBe(true);

    // Kill the standby's sessions of this manager (not the health probe, which is another pool's).
    const app = `${(manager.config.replicas[0].connection as { application_name: string }).application_name}`;
    await withAdminClient(cluster.replicaUrl, (c) =>
      c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE split_part(application_name, ':', 1) = $1", [app]),
    );
    // With the health check far away, only the failed read can take it out of rotation; either the
    // pool notices the dead session first (and opens a new one) or the read fails and runs again on
    // the primary: in neither case does the caller see an error.
    for (let i = 0; i < 10; i++) await expect(manager.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
  });

  test('a read the classifier cannot see writing fails on the standby with 25006 and runs again on the primary', async () => {
    const manager = startManager({ healthCheckIntervalMs: 60_000 });
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });
    const acquiredBefore = replicaStats(manager).counters.acquired;

    // A user-defined function that writes: to the classifier, a plain read.
    const { rows } = await manager.query<{ id: string }>('SELECT routing_tick() AS id');
    expect(Number(rows[0].id)).toBeGreaterThan(0);
    // It was tried on the standby first...
    expect(replicaStats(manager).counters.acquired).toBe(acquiredBefore + 1);
    // ...which did nothing wrong: a read-only error says the statement writes, not that the standby
    // is unwell, so it stays in rotation.
    expect(replicaStats(manager).healthy).toBe(true);
    expect(await readOnStandby(manager)).toBe(true);
    // The hint sends it straight to the primary.
    await manager.query('/* kcm:primary */ SELECT routing_tick() AS id');
    expect(replicaStats(manager).counters.acquired).toBe(acquiredBefore + 2);
  });

  test('an explicit read lease is not retried: its caller sees the failure', async () => {
    const manager = startManager({ healthCheckIntervalMs: 60_000 });
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });

    const lease = await manager.getConnection({ intent: 'read' });
    try {
      const pid = (await lease.query<{ pid: number; r: boolean }>('SELECT pg_backend_pid() AS pid, pg_is_in_recovery() AS r')).rows[0];
      expect(pid.r).toBe(true);
      await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_terminate_backend($1)', [pid.pid]));
      await expect(lease.query('SELECT 1')).rejects.toThrow();
    } finally {
      await manager.releaseConnection(lease);
    }
  });

  test('replay lag above maxReplicaLagMs takes the standby out; it returns once replay catches up; both changes are counted and logged', async () => {
    const { logger, messages } = capturingLogger('info');
    const manager = startManager({ maxReplicaLagMs: 200, healthCheckIntervalMs: 100 }, logger);
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });
    const changesBefore = replicaStats(manager).healthChanges;
    expect(await readOnStandby(manager)).toBe(true);

    await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_wal_replay_pause()'));
    // Keep writing on the primary (bounded by the wait) until the standby's lag is seen past the limit.
    await withAdminClient(cluster.primaryUrl, (primary) =>
      until(
        async () => {
          await primary.query('INSERT INTO routing_ticks DEFAULT VALUES');
          const stats = replicaStats(manager);
          return !stats.healthy && (stats.lagMs ?? 0) > 200;
        },
        { timeoutMs: 20_000, intervalMs: 20, description: 'standby out of rotation for lag' },
      ),
    );
    expect(replicaStats(manager).unhealthyReason).toMatch(/lag/);
    expect(replicaStats(manager).healthChanges).toBe(changesBefore + 1);
    // Reads go to the primary meanwhile.
    for (let i = 0; i < 5; i++) expect(await readOnStandby(manager)).toBe(false);

    await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_wal_replay_resume()'));
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby back in rotation after replay resumed' });
    expect(replicaStats(manager).lagMs).toBeLessThanOrEqual(200);
    expect(await readOnStandby(manager)).toBe(true);
    expect(replicaStats(manager).healthChanges).toBe(changesBefore + 2);

    const logged = messages();
    expect(logged.some((m) => /Replica "replica" taken out of rotation: replay lag \d+ ms exceeds routing\.maxReplicaLagMs=200/.test(m))).toBe(true);
    expect(logged.some((m) => /Replica "replica" back in rotation/.test(m))).toBe(true);
  }, 60_000);

  test('a caught-up standby restarted while the primary is idle stays in rotation, however old its last replayed transaction', async () => {
    // After a restart the standby's receive position starts at the beginning of a WAL segment,
    // before its replay position, until the primary sends something new.
    await cluster.replica.stop('fast');
    await cluster.replica.start();
    const manager = startManager({ maxReplicaLagMs: 200, healthCheckIntervalMs: 100 });
    await manager.ready();
    await withAdminClient(cluster.replicaUrl, async (c) => {
      // Wait until the last replayed transaction is older than the limit...
      const ageSql = 'SELECT EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000 AS age_ms';
      await until(async () => Number((await c.query<{ age_ms: string | null }>(ageSql)).rows[0].age_ms ?? 0) > 400, {
        timeoutMs: 20_000,
        intervalMs: 50,
        description: 'last replayed transaction older than the lag limit',
      });
      // ...and until a health check has run since.
      const { rows } = await c.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      const checkedSince = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_last_xact_replay_timestamp%' AND pid <> pg_backend_pid() AND query_start > $1";
      await until(async () => (await c.query<{ n: number }>(checkedSince, [rows[0].now])).rows[0].n > 0, {
        timeoutMs: 10_000,
        intervalMs: 20,
        description: 'a health check after that',
      });
    });
    expect(replicaStats(manager)).toMatchObject({ healthy: true, lagMs: 0 });
    expect(await readOnStandby(manager)).toBe(true);
  }, 60_000);

  test('a standby restarted with its replay paused is taken out once it falls behind', async () => {
    // A restart after a restartpoint leaves the standby with no replayed transaction, hence no
    // replay timestamp to date its lag by (pg_last_xact_replay_timestamp() is null); falling behind
    // must still take it out of rotation.
    await withAdminClient(cluster.primaryUrl, (c) => c.query('CHECKPOINT'));
    await withAdminClient(cluster.replicaUrl, (c) => c.query('CHECKPOINT'));
    await cluster.replica.stop('fast');
    await cluster.replica.start();
    const timestamp = await withAdminClient(cluster.replicaUrl, async (c) => (await c.query('SELECT pg_last_xact_replay_timestamp() AS t')).rows[0].t);
    expect(timestamp).toBeNull();
    const manager = startManager({ maxReplicaLagMs: 200, healthCheckIntervalMs: 100 });
    await manager.ready();
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby healthy' });

    await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_wal_replay_pause()'));
    await withAdminClient(cluster.primaryUrl, (primary) =>
      until(
        async () => {
          await primary.query('INSERT INTO routing_ticks DEFAULT VALUES');
          return !replicaStats(manager).healthy;
        },
        { timeoutMs: 20_000, intervalMs: 20, description: 'paused standby out of rotation' },
      ),
    );
    expect(await readOnStandby(manager)).toBe(false);

    await withAdminClient(cluster.replicaUrl, (c) => c.query('SELECT pg_wal_replay_resume()'));
    await until(() => replicaStats(manager).healthy, { timeoutMs: 15_000, description: 'standby back in rotation' });
    expect(await readOnStandby(manager)).toBe(true);
  }, 60_000);
});
