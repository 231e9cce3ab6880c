/**
 * Growth under load: from `min` the pool opens connections on demand up to `max` and never past
 * it, callers beyond that wait in line, and every one of them is served. The stats invariants hold
 * at every sample, and the server never sees more than `max` sessions.
 */
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type PoolStats } from '../../lib';
import { countBackends, testDatabaseUrl } from '../helpers/database';

const url = testDatabaseUrl();
const silent = winston.createLogger({ silent: true });

afterEach(async () => {
  await closeConnectionInstance();
});

/** The invariants the contract promises at every observable moment. */
function checkInvariants(stats: PoolStats): void {
  expect(stats.total).toBe(stats.idle + stats.inUse);
  expect(stats.total + stats.pending).toBeLessThanOrEqual(stats.max);
  expect(stats.connections).toHaveLength(stats.total);
}

test('50 workers on min 10 / max 20: grows to exactly 20, queues the rest, serves everyone', async () => {
  const appName = 'kcm-spec-growth';
  const MIN = 10;
  const MAX = 20;
  const WORKERS = 50;
  const ROUNDS = 4;
  const manager = getConnectionInstance({
    connection: { connectionString: url, application_name: appName },
    pool: { min: MIN, max: MAX, acquireTimeoutMs: 20_000 },
    logger: silent,
  });
  await manager.ready();

  const samples: PoolStats[] = [];
  const sample = (): PoolStats => {
    const stats = manager.getPoolStats();
    samples.push(stats);
    return stats;
  };
  const initial = sample();
  expect(initial).toMatchObject({ total: MIN, idle: MIN, inUse: 0, pending: 0, waiting: 0 });
  expect(await countBackends(url, appName)).toBe(MIN);

  // The server's view, polled back to back for as long as the workers run.
  let running = true;
  const serverCounts: number[] = [];
  const serverSampler = (async () => {
    while (running) serverCounts.push(await countBackends(url, appName));
  })();
  const statsSampler = setInterval(sample, 2);

  let served = 0;
  const pids = new Set<number>();
  const ids = new Set<string>();
  const worker = async (): Promise<void> => {
    for (let round = 0; round < ROUNDS; round++) {
      const conn = await manager.getConnection();
      sample();
      expect(conn.inUse).toBe(true);
      const result = await conn.query<{ pid: number }>('select pg_sleep(0.02), pg_backend_pid() as pid');
      pids.add(result.rows[0].pid);
      ids.add(conn.id);
      await manager.releaseConnection(conn);
      sample();
      served++;
    }
  };

  const work = Array.from({ length: WORKERS }, () => worker());
  // Every worker has asked for a connection: MIN got one at once, the rest queue, and the pool
  // is opening connections up to MAX for them.
  const burst = sample();
  expect(burst.inUse).toBe(MIN);
  expect(burst.waiting).toBe(WORKERS - MIN);
  expect(burst.pending).toBe(MAX - MIN);

  try {
    await Promise.all(work);
  } finally {
    running = false;
    clearInterval(statsSampler);
    await serverSampler;
  }
  const final = sample();

  for (const s of samples) checkInvariants(s);
  expect(Math.max(...samples.map((s) => s.total))).toBe(MAX);
  expect(Math.max(...samples.map((s) => s.total + s.pending))).toBe(MAX);
  expect(samples.some((s) => s.waiting > 0)).toBe(true);

  expect(served).toBe(WORKERS * ROUNDS);
  expect(final.counters.acquired).toBe(WORKERS * ROUNDS);
  expect(final.counters.released).toBe(WORKERS * ROUNDS);
  expect(final.counters).toMatchObject({ created: MAX, destroyed: 0, timedOut: 0, aborted: 0, createErrors: 0 });
  expect(final.wait.count).toBeGreaterThan(0);
  expect(final.wait.count).toBeLessThanOrEqual(WORKERS * ROUNDS);
  expect(final).toMatchObject({ total: MAX, idle: MAX, inUse: 0, pending: 0, waiting: 0 });
  expect(pids.size).toBe(MAX);
  expect(ids.size).toBe(MAX);

  expect(serverCounts.length).toBeGreaterThan(0);
  expect(Math.max(...serverCounts)).toBeLessThanOrEqual(MAX);
  expect(await countBackends(url, appName)).toBe(MAX);
});

test('waiters are served first come, first served', async () => {
  const appName = 'kcm-spec-growth-fifo';
  const manager = getConnectionInstance({
    connection: { connectionString: url, application_name: appName },
    pool: { min: 1, max: 1 },
    logger: silent,
  });
  await manager.ready();
  const held = await manager.getConnection();

  const order: number[] = [];
  const waiters = Array.from({ length: 5 }, (_, i) =>
    manager.getConnection().then(async (conn) => {
      order.push(i);
      await manager.releaseConnection(conn);
    }),
  );
  expect(manager.getPoolStats().waiting).toBe(5);
  await manager.releaseConnection(held);
  await Promise.all(waiters);
  expect(order).toEqual([0, 1, 2, 3, 4]);
  expect(manager.getPoolStats()).toMatchObject({ total: 1, waiting: 0 });
});
