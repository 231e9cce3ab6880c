/**
 * Connection settings from a function (as knex accepts them, with its `expirationChecker`), the
 * session set-up hook `pool.afterCreate`, and the knex pool options the manager refuses; against
 * the real server, through the public API (docs/knex.md, docs/options.md).
 */
import { closeConnectionInstance, getConnectionInstance, isConnectionManagerError, resolveOptions, type ConnectionManagerConfig } from '../../lib';
import { countBackends, testConfig as config, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
const NO_WAIT_RETRY = { attempts: 2, initialDelayMs: 1, maxDelayMs: 1 };

afterEach(async () => {
  await closeConnectionInstance();
});

/**
 * Waits until the sessions named with `prefix` are as many as the pool's open connections and all
 * named `name` (replaced ones close shortly after a renewal; the pool may keep one more than min).
 */
async function sessionsBecome(prefix: string, name: string, total: () => number): Promise<void> {
  let last: string[] = [];
  await until(async () => {
    last = await sessionNames(prefix);
    return last.length === total() && last.every((n) => n === name);
  }, { timeoutMs: 10_000 }).catch((error: Error) => {
    throw new Error(`${error.message}: ${total()} session(s) named ${name} expected, last seen ${JSON.stringify(last)}`);
  });
}

/** application_name of every session of this test's manager (they share a prefix), without the `:<N>` suffix. */
async function sessionNames(prefix: string): Promise<string[]> {
  return withAdminClient(url, async (c) => {
    const { rows } = await c.query<{ name: string }>(
      `select split_part(application_name, ':', 1) as name from pg_stat_activity where application_name like $1 order by 1`,
      [`${prefix}%`],
    );
    return rows.map((r) => r.name);
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('connection as a function', () => {
  test('without an expirationChecker only the first opens call it, as in knex, and its settings are used', async () => {
    const provider = jest.fn(() => ({ connectionString: url, application_name: 'kcm-fn-once' }));
    const manager = getConnectionInstance(config('unused', { min: 2, max: 3 }, { connection: provider }));
    await manager.ready();
    // The first opens (two at once here) each call it, as knex's creates do; later ones never.
    const firstCalls = provider.mock.calls.length;
    expect(firstCalls).toBeGreaterThanOrEqual(1);
    expect(await manager.triggerRenewConnections()).toBe(2);
    await manager.knex.raw('select 1');
    expect(provider).toHaveBeenCalledTimes(firstCalls);
    await sessionsBecome('kcm-fn-once', 'kcm-fn-once', () => manager.getPoolStats().total);
    // The same function is the same configuration; another function is a conflict.
    expect(getConnectionInstance(config('unused', { min: 2, max: 3 }, { connection: provider }))).toBe(manager);
    const other = () => ({ connectionString: url, application_name: 'kcm-fn-once' });
    expect(() => getConnectionInstance(config('unused', { min: 2, max: 3 }, { connection: other }))).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_CONFLICT', message: expect.stringContaining('"connection"') }) as Error,
    );
  });

  test('an async provider is called again once its expirationChecker says so: rotate, then renew', async () => {
    let generation = 1;
    let expired = false;
    const provider = jest.fn(async () => {
      await Promise.resolve();
      const settings = { connectionString: url, application_name: `kcm-fn-rotate-${generation}`, expirationChecker: () => expired };
      expired = false;
      return settings;
    });
    const manager = getConnectionInstance(config('unused', { min: 2, max: 2 }, { connection: provider }));
    await manager.ready();
    expect(await sessionNames('kcm-fn-rotate')).toEqual(['kcm-fn-rotate-1', 'kcm-fn-rotate-1']);
    const firstCalls = provider.mock.calls.length;
    // While the settings have not expired, new connections reuse them.
    await manager.triggerRenewConnections();
    expect(provider).toHaveBeenCalledTimes(firstCalls);

    generation = 2;
    expired = true; // the credentials expire
    expect(await manager.triggerRenewConnections()).toBe(2);
    // The replacements asked for new settings (each open that found them expired, as in knex).
    expect(provider.mock.calls.length).toBeGreaterThan(firstCalls);
    await sessionsBecome('kcm-fn-rotate', 'kcm-fn-rotate-2', () => manager.getPoolStats().total);
    expect((await manager.knex.raw<{ rows: Array<{ name: string }> }>('select split_part(current_setting($$application_name$$), $$:$$, 1) as name')).rows[0].name).toBe('kcm-fn-rotate-2');
  });

  test('a provider that throws fails the open with E_CONNECT (cause: its error), retried, never unhandled', async () => {
    const failure = new Error('vault is sealed');
    const provider = jest.fn(() => {
      throw failure;
    });
    const manager = getConnectionInstance(config('unused', { min: 1, max: 1 }, { connection: provider, retry: NO_WAIT_RETRY }));
    const error = await rejection(manager.ready());
    expect(isConnectionManagerError(error, 'E_CONNECT')).toBe(true);
    expect((error as Error).cause).toBe(failure);
    expect(provider).toHaveBeenCalledTimes(2);
    expect(manager.getPoolStats().counters.createErrors).toBe(2);
  });

  test('settings it returns are checked like static ones: garbage is E_CONNECT caused by E_INVALID_CONFIG', async () => {
    const manager = getConnectionInstance(
      config('unused', { min: 1, max: 1 }, { connection: (() => ({ connectionString: url, port: 'abc' })) as unknown as ConnectionManagerConfig['connection'], retry: NO_WAIT_RETRY }),
    );
    const error = await rejection(manager.ready());
    expect(isConnectionManagerError(error, 'E_CONNECT')).toBe(true);
    expect(isConnectionManagerError((error as Error).cause, 'E_INVALID_CONFIG')).toBe(true);
    expect(((error as Error).cause as Error).message).toContain('connection().port');
  });

  test('replicas accept functions too; a function given where an object belongs is refused up front', () => {
    const replicaProvider = () => url;
    const resolved = resolveOptions({ connection: url, replicas: [{ name: 'r1', connection: replicaProvider }] });
    expect(resolved.replicas[0].connection).toBe(replicaProvider);
    expect(() => resolveOptions({ connection: url, pool: { afterCreate: 'SET x' } })).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }) as Error);
  });
});

describe('pool.afterCreate', () => {
  test('runs on every new connection before anyone sees it; its connection only lives for the hook', async () => {
    const seen: Array<{ query: (sql: string) => Promise<unknown> }> = [];
    const manager = getConnectionInstance(
      config('kcm-after-create', {
        min: 2,
        max: 3,
        afterCreate: async (conn) => {
          seen.push(conn);
          await conn.query('SET statement_timeout = 4321');
          await conn.query('SELECT set_config($1, $2, false)', ['application_name', 'kcm-after-create-set']);
        },
      }),
    );
    await manager.ready();
    const rows = await manager.knex.raw<{ rows: Array<{ t: string }> }>('show statement_timeout');
    expect(rows.rows[0]).toEqual({ statement_timeout: '4321ms' });
    await manager.withConnection(async (conn) => {
      expect((await conn.query('show statement_timeout')).rows).toEqual([{ statement_timeout: '4321ms' }]);
    });
    expect(seen).toHaveLength(2);
    expect(await sessionNames('kcm-after-create-set')).toHaveLength(2);
    await expect(seen[0].query('select 1')).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
  });

  test('a throw fails the open (E_CONNECT, counted in createErrors, retried) and leaves no session behind', async () => {
    const failure = new Error('role missing');
    const hook = jest.fn(async (conn: { query: (sql: string) => Promise<unknown> }) => {
      await conn.query('select 1');
      throw failure;
    });
    const manager = getConnectionInstance(config('kcm-after-create-fail', { min: 1, max: 1, afterCreate: hook }, { retry: NO_WAIT_RETRY }));
    const error = await rejection(manager.ready());
    expect(isConnectionManagerError(error, 'E_CONNECT')).toBe(true);
    expect((error as Error).cause).toBe(failure);
    expect(hook).toHaveBeenCalledTimes(2);
    const stats = manager.getPoolStats();
    expect(stats.counters.createErrors).toBe(2);
    expect(stats.total).toBe(0);
    await closeConnectionInstance();
    expect(await countBackends(url, 'kcm-after-create-fail')).toBe(0);
  });

  test('it runs within createTimeoutMs: a hook that never ends fails the open and its session is closed', async () => {
    const manager = getConnectionInstance(
      config('kcm-after-create-hang', { min: 1, max: 1, createTimeoutMs: 300, afterCreate: () => new Promise<void>(() => undefined) }, { retry: { attempts: 1, initialDelayMs: 1, maxDelayMs: 1 } }),
    );
    const error = await rejection(manager.ready());
    expect(isConnectionManagerError(error, 'E_CONNECT')).toBe(true);
    expect(((error as Error).cause as Error).message).toMatch(/pool\.createTimeoutMs\) timed out after 300 ms/);
    // The session the hook held is closed without waiting for the hook.
    await until(async () => (await countBackends(url, 'kcm-after-create-hang')) === 0, { description: 'the hung session closed' });
  });

  test("knex's callback form (conn, done) is refused with the way to write it", () => {
    const error = (() => {
      try {
        resolveOptions({ connection: url, pool: { afterCreate: (_conn: unknown, done: () => void) => done() } });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('async (conn)') as string });
  });
});

describe('knex pool options are refused, naming the manager option to use', () => {
  test.each([
    [{ acquireConnectionTimeout: 1000 }, 'knex.acquireConnectionTimeout', 'pool.acquireTimeoutMs'],
    [{ pool: { max: 1 } }, 'knex.pool.max', 'pool.max'],
    [{ pool: { min: 0 } }, 'knex.pool.min', 'pool.min'],
    [{ pool: { idleTimeoutMillis: 5 } }, 'knex.pool.idleTimeoutMillis', 'pool.idleTimeoutMs'],
    [{ pool: { afterCreate: () => undefined } }, 'knex.pool.afterCreate', 'pool.afterCreate'],
  ])('%j', (knex, option, instead) => {
    expect(() => resolveOptions({ connection: url, knex })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringMatching(new RegExp(`"${option.replace(/\./g, '\\.')}".*${instead.replace(/\./g, '\\.')}`)) }) as Error,
    );
  });
});
