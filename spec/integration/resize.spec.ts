/**
 * `manager.resize()` on the real server, under load: after a shrink, once the connections it retired
 * are back, pg_stat_activity never shows more of the manager's sessions than the new max while the
 * load goes on; after a grow the pool serves more at once. The load is bounded and stops by itself.
 */
import { closeConnectionInstance, getConnectionInstance } from '../../lib';
import { countBackends, testConfig } from '../helpers/database';
import { until } from '../helpers/poll';
import { kcm } from '../helpers/kcm';

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

test('POST /resize and kcm resize: limits in the query or the body, bad ones refused with 400 and exit 1, usage errors exit 2', async () => {
  const token = 'resize-admin-token-0123456789';
  const manager = getConnectionInstance(testConfig('kcm-resize-admin', { min: 1, max: 4 }, { admin: { port: 0, token } }));
  const { url } = await manager.adminReady();
  const post = async (path: string, body?: string, auth = true): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${url}${path}`, { method: 'POST', body, headers: auth ? { Authorization: `Bearer ${token}` } : {} });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  expect(await post('/resize?max=6')).toMatchObject({ status: 200, json: { ok: true, action: 'resize', min: 1, max: 6, closed: 0, retiring: 0 } });
  expect(await post('/resize', JSON.stringify({ min: 2, max: 5 }))).toMatchObject({ status: 200, json: { min: 2, max: 5 } });
  expect(manager.getPoolStats()).toMatchObject({ min: 2, max: 5 });
  expect(await post('/resize?max=6', undefined, false)).toMatchObject({ status: 401 });
  expect(await post('/resize?min=9&max=2')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'E_INVALID_CONFIG' } } });
  expect(await post('/resize?max=abc')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'E_INVALID_CONFIG' } } });
  expect(await post('/resize?size=3')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'bad_request' } } });
  expect(await post('/resize', '{"max": 3, "drop": true}')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'bad_request' } } });
  expect(await post('/resize?max=3', '{"max": 3}')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'bad_request' } } });
  expect(await post('/resize')).toMatchObject({ status: 400, json: { ok: false, error: { code: 'bad_request' } } });
  expect(manager.getPoolStats()).toMatchObject({ min: 2, max: 5 });

  const env = { KCM_ADMIN_URL: url, KCM_ADMIN_TOKEN: token };
  const ok = await kcm(['resize', '--max', '8'], env);
  expect(ok).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Resized to min 2, max 8 in/) });
  expect(manager.getPoolStats().max).toBe(8);
  expect((await kcm(['resize', '--min', '9', '--max', '3'], env)).code).toBe(1);
  expect((await kcm(['resize'], env)).code).toBe(2);
  expect((await kcm(['resize', '--max', '0'], env)).code).toBe(2);
}, 60_000);

