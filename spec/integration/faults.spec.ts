/**
 * Real failures between the pool and the server: sessions killed by the server
 * (pg_terminate_backend), connections reset by the network, a port that refuses, and a server that
 * hangs (a black hole that accepts and never answers). The pool never hands out a connection it
 * knows to be dead, every call settles within its own bounds, and service comes back by itself.
 *
 * The network faults go through spec/helpers/fault-proxy.ts, a TCP proxy on 127.0.0.1 in front of
 * the shared test server.
 */
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
  type ConnectionManagerConfig,
  type PooledConnection,
} from '../../lib';
import { testConfig, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { FaultProxy } from '../helpers/fault-proxy';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
/** Generous bound on any single call: only there to name a call that would otherwise hang forever. */
const HANG_GUARD_MS = 20_000;

let proxy: FaultProxy | undefined;

afterEach(async () => {
  await closeConnectionInstance();
  await proxy?.close();
  proxy = undefined;
});

function config(
  appName: string,
  pool: ConnectionManagerConfig['pool'],
  options: { connectionUrl?: string; retry?: ConnectionManagerConfig['retry'] } = {},
): ConnectionManagerConfig {
  return testConfig(appName, pool, {
    connection: { connectionString: options.connectionUrl ?? url, application_name: appName },
    retry: options.retry,
  });
}

/** Resolves or rejects like `promise`, but fails with a clear message if it never settles. */
function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never settled (waited ${HANG_GUARD_MS} ms)`)), HANG_GUARD_MS);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>, what: string): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await settles(promise, what);
  } catch (error) {
    return error as Error & { code?: string; cause?: unknown };
  }
  throw new Error(`${what} resolved; it was expected to fail`);
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}

async function pidOf(conn: PooledConnection): Promise<number> {
  return (await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
}

/** Server process ids of the sessions named `appName`. */
function backendPids(appName: string): Promise<number[]> {
  return withAdminClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND split_part(application_name, ':', 1) = $1 ORDER BY pid",
      [appName],
    );
    return rows.map((r) => r.pid);
  });
}

/** Terminates the given server sessions and waits until the server no longer lists them. */
async function terminate(appName: string, pids: number[]): Promise<void> {
  await withAdminClient(url, async (client) => {
    await client.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  });
  await until(async () => (await backendPids(appName)).every((pid) => !pids.includes(pid)), {
    timeoutMs: 10_000,
    intervalMs: 20,
    description: `sessions ${pids.join(', ')} to end`,
  });
}

/** Runs `select 1` through the pool; true on success. */
async function serves(manager: ConnectionManager, timeoutMs = 1_000): Promise<boolean> {
  try {
    await manager.withConnection(async (conn) => conn.query('select 1'), { timeoutMs });
    return true;
  } catch {
    return false;
  }
}

describe('sessions terminated by the server', () => {
  test('idle connections the driver saw die are never handed out', async () => {
    const appName = 'kcm-faults-terminate-idle';
    const manager = getConnectionInstance(config(appName, { min: 3, max: 3 }));
    await manager.ready();
    const before = await backendPids(appName);
    expect(before).toHaveLength(3);

    await terminate(appName, before);
    // The pool learns of it from the driver's error/end events (no query needed) and replaces them.
    await until(() => manager.getPoolStats().counters.validationFailures >= 3, { timeoutMs: 10_000, description: 'the pool to notice the dead sessions' });

    const pids = await Promise.all(
      Array.from({ length: 9 }, () => manager.withConnection(async (conn) => pidOf(conn), { timeoutMs: 10_000 })),
    );
    for (const pid of pids) expect(before).not.toContain(pid);
    expect(manager.getPoolStats().counters.validationFailures).toBe(3);
  });

  test('borrow validation catches sessions killed before the driver noticed', async () => {
    const appName = 'kcm-faults-terminate-borrow';
    // Every connection idle for more than 1 ms is checked with SELECT 1 before it is handed out.
    const manager = getConnectionInstance(config(appName, { min: 3, max: 3, validationIdleThresholdMs: 1 }));
    await manager.ready();
    const before = await backendPids(appName);
    await terminate(appName, before);

    // No waiting for the pool to notice: ask at once. Whatever it hands out works.
    const pids = await Promise.all(
      Array.from({ length: 6 }, () => manager.withConnection(async (conn) => pidOf(conn), { timeoutMs: 10_000 })),
    );
    for (const pid of pids) expect(before).not.toContain(pid);
  });

  test('a checked-out session killed: the error reaches the caller, and release retires the connection', async () => {
    const appName = 'kcm-faults-terminate-busy';
    const manager = getConnectionInstance(config(appName, { min: 1, max: 2 }));
    await manager.ready();
    const conn = await manager.getConnection();
    const pid = await pidOf(conn);
    await terminate(appName, [pid]);

    await expect(settles(conn.query('select 1'), 'query on a killed session')).rejects.toBeInstanceOf(Error);
    expect(await manager.isConnectionValid(conn)).toBe(false);
    await manager.releaseConnection(conn);

    const stats = manager.getPoolStats();
    expect(stats.connections.map((c) => c.id)).not.toContain(conn.id);
    expect(stats.total).toBe(stats.idle + stats.inUse);
    const next = await manager.withConnection(async (c) => ({ id: c.id, pid: await pidOf(c) }));
    expect(next.id).not.toBe(conn.id);
    expect(next.pid).not.toBe(pid);
  });
});

describe('network faults (fault proxy)', () => {
  test('connections reset by the network are replaced, never handed out', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port) });
    const appName = 'kcm-faults-reset';
    const manager = getConnectionInstance(config(appName, { min: 3, max: 3 }, { connectionUrl: proxy.rewrite(url) }));
    await manager.ready();
    const ids = manager.getPoolStats().connections.map((c) => c.id);

    proxy.killAll();
    await until(() => manager.getPoolStats().counters.validationFailures >= 3, { timeoutMs: 10_000, description: 'the pool to notice the resets' });
    const used = await Promise.all(Array.from({ length: 6 }, () => manager.withConnection(async (c) => (await c.query('select 1'), c.id), { timeoutMs: 10_000 })));
    for (const id of used) expect(ids).not.toContain(id);
  });

  test('a refusing port: E_CONNECT with ECONNREFUSED as the cause, then recovery', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port), mode: 'refuse' });
    const appName = 'kcm-faults-refuse';
    const manager = getConnectionInstance(
      config(appName, { min: 1, max: 2 }, { connectionUrl: proxy.rewrite(url), retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 100 } }),
    );

    const error = await rejectionOf(manager.ready(), 'ready() against a refusing port');
    expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_CONNECT' });
    expect(codeOf(error.cause)).toBe('ECONNREFUSED');
    // A refusal is worth retrying: all the configured attempts were made.
    expect(manager.getPoolStats().counters.createErrors).toBeGreaterThanOrEqual(3);

    const waiter = await rejectionOf(manager.getConnection({ timeoutMs: 5_000 }), 'getConnection() against a refusing port');
    // With the circuit open (the default breaker), the caller is told at once: E_DB_UNAVAILABLE.
    expect(['E_CONNECT', 'E_ACQUIRE_TIMEOUT', 'E_DB_UNAVAILABLE']).toContain(waiter.code);
    expect(codeOf(waiter.cause)).toBe('ECONNREFUSED');

    await proxy.setMode('pass');
    await until(() => serves(manager), { timeoutMs: 15_000, intervalMs: 20, description: 'the pool to serve again' });
    await settles(manager.ready(), 'ready() after recovery');
    expect(manager.getPoolStats().total).toBeGreaterThanOrEqual(1);
  });

  test('a server that accepts and never answers: opens end at createTimeoutMs, callers are told, recovery follows', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port), mode: 'blackhole' });
    const appName = 'kcm-faults-hung-open';
    const manager = getConnectionInstance(
      config(
        appName,
        { min: 1, max: 2, createTimeoutMs: 300 },
        { connectionUrl: proxy.rewrite(url), retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 100 } },
      ),
    );

    const error = await rejectionOf(manager.ready(), 'ready() against a hung server');
    expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_CONNECT' });
    expect(error.cause).toBeInstanceOf(Error);
    expect(proxy.accepted).toBeGreaterThanOrEqual(2);

    const waiter = await rejectionOf(manager.getConnection({ timeoutMs: 2_000 }), 'getConnection() against a hung server');
    // With the circuit open (the default breaker), the caller is told at once: E_DB_UNAVAILABLE.
    expect(['E_CONNECT', 'E_ACQUIRE_TIMEOUT', 'E_DB_UNAVAILABLE']).toContain(waiter.code);
    const stats = manager.getPoolStats();
    expect(stats).toMatchObject({ total: 0, waiting: 0 });

    await proxy.setMode('pass');
    await until(() => serves(manager), { timeoutMs: 15_000, intervalMs: 20, description: 'the pool to serve again' });
    await settles(manager.ready(), 'ready() after recovery');
  });

  test('established connections going silent: validation fails within validationTimeoutMs, the dead one is retired', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port) });
    const appName = 'kcm-faults-hung-established';
    const manager = getConnectionInstance(
      config(
        appName,
        // Default validationIdleThresholdMs (10 s): nothing validates the idle connection by itself here.
        { min: 2, max: 3, createTimeoutMs: 300, validationTimeoutMs: 300 },
        { connectionUrl: proxy.rewrite(url), retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 100 } },
      ),
    );
    await manager.ready();
    const conn = await manager.getConnection();
    expect(await manager.isConnectionValid(conn)).toBe(true);

    await proxy.setMode('blackhole');
    expect(await settles(manager.isConnectionValid(conn), 'isConnectionValid() on a silent connection')).toBe(false);
    await manager.releaseConnection(conn);
    // A connection that failed validation has a query stuck on it: it must never be handed out again.
    expect(manager.getPoolStats().connections.map((c) => c.id)).not.toContain(conn.id);

    // The pool cannot know the idle one went silent too; validating it bounds the damage.
    const idle = await settles(manager.getConnection({ timeoutMs: 5_000 }), 'getConnection() while the network is silent');
    expect(await settles(manager.isConnectionValid(idle), 'isConnectionValid() on the silent idle connection')).toBe(false);
    await manager.releaseConnection(idle);

    const waiter = await rejectionOf(manager.getConnection({ timeoutMs: 2_000 }), 'getConnection() while the server hangs');
    // With the circuit open (the default breaker), the caller is told at once: E_DB_UNAVAILABLE.
    expect(['E_CONNECT', 'E_ACQUIRE_TIMEOUT', 'E_DB_UNAVAILABLE']).toContain(waiter.code);

    await proxy.setMode('pass');
    await until(() => serves(manager), { timeoutMs: 15_000, intervalMs: 20, description: 'the pool to serve again' });
    await settles(
      manager.withConnection(async (c) => expect(await manager.isConnectionValid(c)).toBe(true)),
      'a query after recovery',
    );
  });
});
