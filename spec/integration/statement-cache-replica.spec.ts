/**
 * Each pool reports its own statement cache: reads through `readKnex` and `manager.query` that run on
 * a replica are cached on the replica's connections and counted in `replicas[name].statementCache`,
 * not in the primary's figures. One streaming-replication cluster for the file (costly).
 */
import { getConnectionInstance, closeConnectionInstance } from '../../lib';
import { silentLogger } from '../helpers/database';
import { until } from '../helpers/poll';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';

let cluster: ReplicaCluster;

useReplicaCluster((c) => (cluster = c));

afterEach(async () => {
  await closeConnectionInstance();
});

test('reads on a replica are cached there and counted in that replica\'s stats', async () => {
  const manager = getConnectionInstance({
    connection: { connectionString: cluster.primaryUrl, application_name: 'kcm-stmt-replica-primary' },
    replicas: [{ name: 'r1', connection: { connectionString: cluster.replicaUrl, application_name: 'kcm-stmt-replica' } }],
    routing: { healthCheckIntervalMs: 100 },
    pool: { min: 1, max: 1 },
    logger: silentLogger,
  });
  await manager.ready();
  await until(() => manager.getPoolStats().replicas?.r1.healthy === true, { description: 'replica healthy' });
  const primaryBefore = manager.getPoolStats().statementCache?.hits ?? 0;

  for (let i = 0; i < 3; i++) {
    const { rows } = await manager.readKnex.raw<{ rows: Array<{ n: number; standby: boolean }> }>('select ?::int as n, pg_is_in_recovery() as standby', [i]);
    expect(rows[0]).toEqual({ n: i, standby: true });
  }
  expect(manager.getPoolStats().replicas?.r1.statementCache?.hits).toBe(1);

  for (let i = 0; i < 3; i++) {
    const { rows } = await manager.query<{ n: number; standby: boolean }>('select $1::int + 1 as n, pg_is_in_recovery() as standby', [i]);
    expect(rows[0]).toEqual({ n: i + 1, standby: true });
  }
  const stats = manager.getPoolStats();
  expect(stats.replicas?.r1.statementCache?.hits).toBe(2);
  expect(stats.replicas?.r1.statementCache?.misses).toBeGreaterThanOrEqual(4);
  // The primary ran none of these reads (its health checks and validation are its own business).
  expect(stats.statementCache?.hits ?? 0).toBe(primaryBefore);
});
