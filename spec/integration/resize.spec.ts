/**
 * `manager.resize()` on the real server, under load: after a shrink, once the connections it retired
 * are back, pg_stat_activity never shows more of the manager's sessions than the new max while the
 * load goes on; after a grow the pool serves more at once. The load is bounded and stops by itself.
 */
import { closeConnectionInstance, getConnectionInstance } from '../../lib';
import { countBackends, testConfig } from '../helpers/database';
import { until } from '../helpers/poll';

afterEach(async () => {
  await closeConnectionInstance();
});

test('resize under load: shrink to 3 never shows more than 3 sessions once the retired ones are back; grow to 8 serves 8 at once', async () => {
  const appName = 'kcm-resize';
  const manager = getConnectionInstance(testConfig(appName, { min: 2, max: 10, acquireTimeoutMs: 20_000 }));
  await manager.ready();
  let running = true;
  let failures = 0;
  const workers = Array.from({ length: 16 }, async () => {
    while (running) {
      await manager.withConnection((c) => c.query('select pg_sleep(0.005)')).catch(() => failures++);
    }
  });
  await until(() => manager.getPoolStats().total === 10, { timeoutMs: 10_000, description: 'the pool at max under load' });
  const result = await manager.resize({ min: 1, max: 3 });
  expect(result.closed + result.retiring).toBe(7);
  expect(manager.getPoolStats()).toMatchObject({ min: 1, max: 3 });
  // The retired ones close as they come back (each lease is about 5 ms).
  await until(() => manager.getPoolStats().total <= 3 && manager.getPoolStats().pending === 0, { timeoutMs: 10_000, description: 'down to the new max' });
  let most = 0;
  for (let i = 0; i < 30; i++) most = Math.max(most, await countBackends(process.env.TEST_DATABASE_URL as string, appName));
  expect(most).toBeLessThanOrEqual(3);
  await manager.resize({ max: 8 });
  await until(() => manager.getPoolStats().inUse === 8, { timeoutMs: 10_000, description: 'eight in use after growing' });
  running = false;
  await Promise.all(workers);
  expect(failures).toBe(0);
  expect(await countBackends(process.env.TEST_DATABASE_URL as string, appName)).toBeLessThanOrEqual(8);
}, 60_000);
