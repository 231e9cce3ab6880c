/**
 * The process-wide manager: one instance per process, config conflicts, a fresh instance after
 * close, configuration from the environment, and ready() opening exactly `min` connections.
 */
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
} from '../../lib';
import { countBackends, testDatabaseUrl, testConfig as config } from '../helpers/database';

const url = testDatabaseUrl();

afterEach(async () => {
  await closeConnectionInstance();
});

describe('getConnectionInstance', () => {
  test('returns the same manager on every call', async () => {
    const cfg = config('kcm-spec-manager-same');
    const first = getConnectionInstance(cfg);
    const second = getConnectionInstance(cfg);
    expect(second).toBe(first);
    // Without a config, the running manager is returned rather than one built from the environment.
    expect(getConnectionInstance()).toBe(first);
    // An equal (not identical) config is no conflict.
    expect(getConnectionInstance(config('kcm-spec-manager-same'))).toBe(first);
    await first.ready();
  });

  test('concurrent first calls create exactly one manager', async () => {
    const appName = 'kcm-spec-manager-concurrent';
    const cfg = config(appName, { min: 2, max: 4 });
    const managers = await Promise.all(Array.from({ length: 10 }, async () => getConnectionInstance(cfg)));
    for (const m of managers) expect(m).toBe(managers[0]);
    await managers[0].ready();
    expect(await countBackends(url, appName)).toBe(2);
    // A second manager would still hold its own sessions after the singleton closes.
    await closeConnectionInstance();
    expect(await countBackends(url, appName)).toBe(0);
  });

  test('a differing config throws E_CONFIG_CONFLICT and leaves the running manager alone', async () => {
    const manager = getConnectionInstance(config('kcm-spec-manager-conflict', { min: 1, max: 4 }));
    expect(() => getConnectionInstance(config('kcm-spec-manager-conflict', { min: 1, max: 5 }))).toThrow(
      expect.objectContaining({ name: 'ConnectionManagerError', code: 'E_CONFIG_CONFLICT', message: expect.stringContaining('pool.max') }),
    );
    expect(() => getConnectionInstance(config('kcm-spec-manager-other-name', { min: 1, max: 4 }))).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_CONFLICT' }),
    );
    expect(manager.isOpen).toBe(true);
    expect(getConnectionInstance()).toBe(manager);
    await manager.withConnection(async (conn) => expect((await conn.query('select 1 as one')).rows).toEqual([{ one: 1 }]));
  });

  test('after close() the next call creates a fresh, working manager', async () => {
    const appName = 'kcm-spec-manager-fresh';
    const first = getConnectionInstance(config(appName, { min: 1, max: 2 }));
    await first.ready();
    await first.close();
    expect(first.isOpen).toBe(false);
    expect(await countBackends(url, appName)).toBe(0);

    // Even a different config is accepted once the old manager is closed.
    const second = getConnectionInstance(config(appName, { min: 2, max: 3 }));
    expect(second).not.toBe(first);
    expect(second.isOpen).toBe(true);
    await second.ready();
    expect(second.getPoolStats()).toMatchObject({ min: 2, max: 3, total: 2 });
    expect(await countBackends(url, appName)).toBe(2);
    const pid = await second.withConnection(async (conn) => (await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid);
    expect(typeof pid).toBe('number');
    await expect(first.getConnection()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
  });

  test('closeConnectionInstance() closes the singleton and the next call makes a new one', async () => {
    const cfg = config('kcm-spec-manager-close-instance', { min: 1, max: 2 });
    const first = getConnectionInstance(cfg);
    await first.ready();
    await closeConnectionInstance();
    expect(first.isOpen).toBe(false);
    const second = getConnectionInstance(cfg);
    expect(second).not.toBe(first);
    await second.ready();
  });

  describe('without a config', () => {
    const names = ['DATABASE_URL', 'KCM_POOL_MIN', 'KCM_POOL_MAX', 'KCM_ACQUIRE_TIMEOUT_MS', 'KCM_LOG_LEVEL', 'KCM_RETRY_ATTEMPTS'];
    let saved: Record<string, string | undefined>;

    beforeEach(() => {
      saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    });

    afterEach(() => {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n];
        else process.env[n] = saved[n];
      }
    });

    test('reads DATABASE_URL and the KCM_* variables', async () => {
      const appName = 'kcm-spec-manager-env';
      const envUrl = new URL(url);
      envUrl.searchParams.set('application_name', appName);
      process.env.DATABASE_URL = envUrl.toString();
      process.env.KCM_POOL_MIN = '3';
      process.env.KCM_POOL_MAX = '5';
      process.env.KCM_ACQUIRE_TIMEOUT_MS = '1234';
      process.env.KCM_RETRY_ATTEMPTS = '2';
      process.env.KCM_LOG_LEVEL = 'error';

      const manager: ConnectionManager = getConnectionInstance();
      expect(manager.config.connection).toBe(envUrl.toString());
      expect(manager.config.pool).toMatchObject({ min: 3, max: 5, acquireTimeoutMs: 1234 });
      expect(manager.config.retry.attempts).toBe(2);
      await manager.ready();
      expect(manager.getPoolStats()).toMatchObject({ min: 3, max: 5, total: 3 });
      expect(await countBackends(url, appName)).toBe(3);
    });

    test('bad KCM_* values throw E_INVALID_CONFIG naming the option', () => {
      process.env.DATABASE_URL = url;
      process.env.KCM_POOL_MAX = 'twenty';
      expect(() => getConnectionInstance()).toThrow(
        expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('pool.max') }),
      );
      process.env.KCM_POOL_MAX = '2';
      process.env.KCM_POOL_MIN = '3';
      expect(() => getConnectionInstance()).toThrow(
        expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('pool.min') }),
      );
    });

    test('no DATABASE_URL throws E_INVALID_CONFIG', () => {
      delete process.env.DATABASE_URL;
      expect(() => getConnectionInstance()).toThrow(
        expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('DATABASE_URL') }),
      );
    });
  });
});

describe('ready()', () => {
  test('resolves with exactly min connections open', async () => {
    const appName = 'kcm-spec-manager-ready';
    const manager = getConnectionInstance(config(appName, { min: 4, max: 8 }));
    await manager.ready();
    const stats = manager.getPoolStats();
    expect(stats).toMatchObject({ min: 4, max: 8, total: 4, idle: 4, inUse: 0, pending: 0, waiting: 0 });
    expect(stats.connections).toHaveLength(4);
    expect(stats.counters.created).toBe(4);
    expect(await countBackends(url, appName)).toBe(4);
    // Calling it again once ready resolves at once and opens nothing more.
    await manager.ready();
    expect(manager.getPoolStats().counters.created).toBe(4);
  });

  test('with min 0 resolves without opening anything', async () => {
    const appName = 'kcm-spec-manager-ready-zero';
    const manager = getConnectionInstance(config(appName, { min: 0, max: 2 }));
    await manager.ready();
    expect(manager.getPoolStats()).toMatchObject({ total: 0, pending: 0 });
    expect(await countBackends(url, appName)).toBe(0);
  });
});
