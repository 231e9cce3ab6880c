/**
 * A named pool with a read replica, on a real primary and hot standby: the named pool routes like
 * the default pool does (reads on the standby, writes on its primary), its replica's pool is named
 * `<pool>/<replica>`, and the budget counts the replica's connections too.
 */
import winston from 'winston';
import { getConnectionInstance } from '../../lib';
import { testConfig } from '../helpers/database';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';
import { until } from '../helpers/poll';

const silent = winston.createLogger({ silent: true });
let cluster: ReplicaCluster;

useReplicaCluster((c) => (cluster = c));

test('a named pool with a replica: reads on its standby, writes on its primary, all under the budget', async () => {
  const manager = getConnectionInstance({
    ...testConfig('kcm-named-replica', { min: 1, max: 2 }),
    pools: {
      reports: {
        connection: cluster.primaryUrl,
        replicas: [{ name: 'standby', connection: cluster.replicaUrl }],
        pool: { min: 1, max: 2 },
        routing: { readYourWritesMs: 0 },
      },
    },
    budget: { maxConnections: 6 },
    logger: silent,
  });
  await manager.ready();
  const reports = manager.pool('reports');
  await until(() => reports.getPoolStats().replicas?.standby?.healthy === true, { timeoutMs: 20_000, intervalMs: 20, description: 'the standby in rotation' });
  const standby = async (sql: Promise<{ rows: Array<{ standby: boolean }> }>): Promise<boolean> => (await sql).rows[0].standby;
  expect(await standby(reports.query('select pg_is_in_recovery() as standby'))).toBe(true);
  expect(await standby(reports.readKnex.raw('select pg_is_in_recovery() as standby'))).toBe(true);
  const read = await reports.getConnection({ intent: 'read' });
  expect(await standby(read.query('select pg_is_in_recovery() as standby'))).toBe(true);
  await reports.releaseConnection(read);
  // A write goes to the named pool's primary, never to the default pool's server.
  await reports.query('create table if not exists kcm_named_replica (x int)');
  await reports.query('insert into kcm_named_replica values (1)');
  expect(await standby(reports.knex.raw('select pg_is_in_recovery() as standby'))).toBe(false);
  const stats = manager.getPoolStats();
  expect(stats.pools?.reports.replicas?.standby).toMatchObject({ healthy: true });
  // The budget counts every pool: the default pool, reports' primary and its standby.
  const open = (s: { total: number; pending: number }): number => s.total + s.pending;
  expect(stats.budget?.open).toBeGreaterThanOrEqual(open(stats) + open(stats.pools?.reports as { total: number; pending: number }) + open(stats.pools?.reports.replicas?.standby as { total: number; pending: number }));
  expect(stats.budget?.open).toBeLessThanOrEqual(6);
  await reports.query('drop table kcm_named_replica');
}, 120_000);
