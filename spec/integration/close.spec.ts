/**
 * close(): no server session survives it, callers still waiting are told the pool closed, and a
 * closed manager refuses new work.
 */
import { closeConnectionInstance, getConnectionInstance, type ConnectionManagerConfig } from '../../lib';
import { countBackends, testConfig, testDatabaseUrl } from '../helpers/database';
import { track, until } from '../helpers/poll';

const url = testDatabaseUrl();

const quiet = () => undefined;

function config(appName: string, pool: ConnectionManagerConfig['pool']): ConnectionManagerConfig {
  // knex logs the acquires the closed pool refuses; keep that out of the test output.
  return testConfig(appName, pool, { knex: { log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } } });
}

afterEach(async () => {
  await closeConnectionInstance();
});

test('close() waits for the checked-out connection and leaves no server session', async () => {
  const appName = 'kcm-spec-close-held';
  const manager = getConnectionInstance(config(appName, { min: 3, max: 4 }));
  await manager.ready();
  const held = await manager.getConnection();
  expect(await countBackends(url, appName)).toBe(3);

  const closing = track(manager.close());
  expect(manager.isOpen).toBe(false);
  // The idle connections close now; the checked-out one stays until it is released.
  await until(async () => (await countBackends(url, appName)) === 1, { description: 'idle connections closed' });
  expect(manager.getPoolStats()).toMatchObject({ total: 1, idle: 0, inUse: 1 });
  expect(closing.settled).toBe(false);
  // The holder can finish its work.
  expect((await held.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

  // New work is refused while closing.
  await expect(manager.getConnection()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  await expect(manager.ready()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });

  await manager.releaseConnection(held);
  await closing.promise;
  expect(held.inUse).toBe(false);
  expect(await countBackends(url, appName)).toBe(0);
  expect(manager.getPoolStats()).toMatchObject({ total: 0, idle: 0, inUse: 0, pending: 0, waiting: 0, connections: [] });
  expect(manager.getPoolStats().counters.destroyed).toBe(3);
});

test('callers waiting at close() are rejected with E_POOL_CLOSED', async () => {
  const appName = 'kcm-spec-close-waiters';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 1 }));
  await manager.ready();
  const held = await manager.getConnection();

  const waiters = Array.from({ length: 3 }, () => track(manager.getConnection({ timeoutMs: 20_000 })));
  const knexQuery = track(manager.knex.raw('select 1'));
  await until(() => manager.getPoolStats().waiting === 4, { description: 'four callers waiting' });

  const closing = manager.close();
  for (const w of waiters) await expect(w.promise).rejects.toMatchObject({ name: 'ConnectionManagerError', code: 'E_POOL_CLOSED' });
  await expect(knexQuery.promise).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  expect(manager.getPoolStats().waiting).toBe(0);

  await manager.releaseConnection(held);
  await closing;
  expect(await countBackends(url, appName)).toBe(0);
});

test('getConnection() and withConnection() after close() reject with E_POOL_CLOSED', async () => {
  const appName = 'kcm-spec-close-after';
  const manager = getConnectionInstance(config(appName, { min: 2, max: 2 }));
  await manager.ready();
  await manager.close();
  expect(await countBackends(url, appName)).toBe(0);

  await expect(manager.getConnection()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  const fn = jest.fn();
  await expect(manager.withConnection(fn)).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  expect(fn).not.toHaveBeenCalled();
  await expect(manager.knex.raw('select 1')).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  await expect(manager.resetPool()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  // Closing again is harmless.
  await manager.close();
  expect(await countBackends(url, appName)).toBe(0);
});

test('close() while connections are still being opened leaves no server session', async () => {
  const appName = 'kcm-spec-close-opening';
  const manager = getConnectionInstance(config(appName, { min: 5, max: 5 }));
  const ready = track(manager.ready());
  expect(manager.getPoolStats().pending).toBe(5);
  await manager.close();
  await expect(ready.promise).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  expect(manager.getPoolStats()).toMatchObject({ total: 0, pending: 0 });
  expect(await countBackends(url, appName)).toBe(0);
});

test('a connection never released is closed by force after closeTimeoutMs', async () => {
  const appName = 'kcm-spec-close-force';
  const manager = getConnectionInstance(config(appName, { min: 1, max: 2, closeTimeoutMs: 200 }));
  await manager.ready();
  const leaked = await manager.getConnection();

  await manager.close();
  expect(await countBackends(url, appName)).toBe(0);
  expect(manager.getPoolStats()).toMatchObject({ total: 0, inUse: 0 });
  // The holder finds out: the connection is gone, and releasing it late is not an error.
  await expect(leaked.query('select 1')).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
  await expect(manager.releaseConnection(leaked)).resolves.toBeUndefined();
});
