/**
 * Graceful degradation with a real hot standby: while the primary is stopped and its circuit is
 * open, reads are served by the replica (read-your-writes windows notwithstanding) and writes fail
 * at once with E_DB_UNAVAILABLE; once the primary is back, writes are served again.
 */
import winston from 'winston';
import { getConnectionInstance } from '../../lib';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';
import { until } from '../helpers/poll';

const silent = winston.createLogger({ silent: true });
let cluster: ReplicaCluster;

useReplicaCluster((c) => (cluster = c));

test('primary down: reads on the replica, writes fail fast; primary back: writes served', async () => {
  const manager = getConnectionInstance({
    connection: cluster.primaryUrl,
    replicas: [{ name: 'standby', connection: cluster.replicaUrl }],
    pool: { min: 1, max: 4, acquireTimeoutMs: 10_000 },
    retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 100 },
    circuitBreaker: { failureThreshold: 2, openMs: 300 },
    logger: silent,
  });
  await manager.ready();
  await manager.withReadYourWrites(async () => {
    await manager.query('create temp table if not exists kcm_w (x int)');
    await cluster.primary.stop('fast');
    // Let the primary's opens fail until its circuit opens.
    await until(async () => {
      await manager.getConnection({ timeoutMs: 500 }).then((c) => manager.releaseConnection(c), () => undefined);
      return manager.getPoolStats().circuit.state !== 'closed';
    }, { timeoutMs: 20_000, intervalMs: 20, description: "the primary's circuit to open" });

    // Inside a read-your-writes window, a read still goes to the replica.
    const { rows } = await manager.query<{ standby: boolean }>('select pg_is_in_recovery() as standby');
    expect(rows[0].standby).toBe(true);
    const read = await manager.getConnection({ intent: 'read' });
    expect((await read.query<{ standby: boolean }>('select pg_is_in_recovery() as standby')).rows[0].standby).toBe(true);
    await manager.releaseConnection(read);
    expect((await manager.readKnex.raw('select pg_is_in_recovery() as standby')).rows[0].standby).toBe(true);

    const started = performance.now();
    await expect(manager.getConnection()).rejects.toMatchObject({ code: 'E_DB_UNAVAILABLE' });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  await cluster.primary.start();
  await until(async () => manager.withConnection((c) => c.query('select 1')).then(() => true, () => false), {
    timeoutMs: 20_000, intervalMs: 20, description: 'the primary to serve again',
  });
  expect(manager.getPoolStats().circuit.state).toBe('closed');
}, 120_000);
