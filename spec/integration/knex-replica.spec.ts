/**
 * `readKnex` with a replica behaves like knex too (docs/knex.md): a replica connection knex
 * disposed of after a query timeout is closed, not lent again, and an acquire timeout is knex's
 * KnexTimeoutError. The replica's settings come from a function. One cluster for the file (costly).
 */
import { KnexTimeoutError } from 'knex';
import { getConnectionInstance, isConnectionManagerError } from '../../lib';
import { silentLogger, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';

let cluster: ReplicaCluster;

useReplicaCluster((c) => (cluster = c));

test('readKnex on a replica: a disposed connection is closed, and acquire timeouts are KnexTimeoutError', async () => {
  const replicaProvider = jest.fn(() => ({ connectionString: cluster.replicaUrl, application_name: 'kcm-knex-replica' }));
  const manager = getConnectionInstance({
    connection: { connectionString: cluster.primaryUrl, application_name: 'kcm-knex-replica-primary' },
    replicas: [{ name: 'r1', connection: replicaProvider }],
    routing: { healthCheckIntervalMs: 100 },
    pool: { min: 1, max: 1, acquireTimeoutMs: 300 },
    logger: silentLogger,
    knex: { log: { warn: () => undefined, error: () => undefined, debug: () => undefined, deprecate: () => undefined } },
  });
  await manager.ready();
  await until(() => manager.getPoolStats().replicas?.r1.healthy === true, { description: 'replica healthy' });
  expect(replicaProvider).toHaveBeenCalledTimes(1);
  const before = manager.getPoolStats().replicas?.r1.counters.validationFailures ?? 0;

  await expect(manager.readKnex.raw('select pg_sleep(30) /* kcm-replica-disposed */').timeout(50)).rejects.toBeInstanceOf(KnexTimeoutError);
  const stuck = await withAdminClient(cluster.replicaUrl, async (c) => {
    const { rows } = await c.query<{ pid: number }>("select pid from pg_stat_activity where query like '%kcm-replica-disposed%' and pid <> pg_backend_pid()");
    return rows[0]?.pid;
  });
  expect(stuck).toBeDefined();
  try {
    const next = await manager.readKnex.raw<{ rows: Array<{ pid: number; standby: boolean }> }>('select pg_backend_pid() as pid, pg_is_in_recovery() as standby');
    expect(next.rows[0].standby).toBe(true);
    expect(next.rows[0].pid).not.toBe(stuck);
    expect(manager.getPoolStats().replicas?.r1.counters.validationFailures).toBe(before + 1);
  } finally {
    await withAdminClient(cluster.replicaUrl, (c) => c.query('select pg_terminate_backend($1)', [stuck]));
  }
  // knex gave up on that statement: when its session dies, it is not run again on the primary.
  const running = (url: string) =>
    withAdminClient(url, async (c) => {
      const { rows } = await c.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where query like '%kcm-replica-disposed%' and pid <> pg_backend_pid()");
      return rows[0].n;
    });
  await until(async () => (await running(cluster.replicaUrl)) === 0, { description: 'the abandoned statement gone from the standby' });
  await until(() => manager.getPoolStats().replicas?.r1.inUse === 0, { description: 'the disposed replica connection given back' });
  expect(await running(cluster.primaryUrl)).toBe(0);

  // Both pools full: the read waits out its one deadline and fails the way knex's pool would.
  const primaryHeld = await manager.getConnection();
  const replicaHeld = await manager.getConnection({ intent: 'read' });
  try {
    const error = await manager.readKnex.raw('select ?::int as n', [3]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KnexTimeoutError);
    expect(isConnectionManagerError(error, 'E_ACQUIRE_TIMEOUT')).toBe(true);
    expect(error).toMatchObject({ sql: 'select ?::int as n', bindings: [3] });
  } finally {
    await manager.releaseConnection(primaryHeld);
    await manager.releaseConnection(replicaHeld);
  }
});
