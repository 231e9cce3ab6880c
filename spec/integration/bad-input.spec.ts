/**
 * Bad input never crashes the process or corrupts the pool (docs/errors.md, docs/lifecycle.md
 * "Order of checks"). Each case runs against the real server, asserts the error code, and then
 * that the pool still works: a `SELECT 1` on a fresh lease, counts back where they were. The
 * cases that used to kill the process run in a child process (spec/fixtures/bad-input-child.ts).
 */
import { ConnectionManager, isConnectionManagerError, resolveOptions, type PooledConnection } from '../../lib';
import { errorCode } from '../helpers/invariants';
import { testConfig, testDatabaseUrl } from '../helpers/database';
import { runFixture } from '../helpers/child';


function runChild(scenario: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runFixture('bad-input-child.ts', [scenario, testDatabaseUrl()], 25_000);
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string | undefined; message: string; error: unknown }> {
  try {
    await promise;
  } catch (error) {
    return { code: errorCode(error), message: error instanceof Error ? error.message : String(error), error };
  }
  throw new Error('expected a rejection');
}

let manager: ConnectionManager;

beforeEach(async () => {
  manager = new ConnectionManager(resolveOptions(testConfig('kcm-spec-bad-input', { min: 1, max: 2 })));
  await manager.ready();
});

afterEach(async () => {
  await manager.close();
});

/** The pool is intact: counts as expected and a fresh lease runs SELECT 1. */
async function expectIntact(expected: { total?: number; inUse: number }): Promise<void> {
  const before = manager.getPoolStats();
  expect(before.inUse).toBe(expected.inUse);
  expect(before.waiting).toBe(0);
  expect(before.total).toBe(before.idle + before.inUse);
  if (expected.total !== undefined) expect(before.total).toBe(expected.total);
  const conn = await manager.getConnection({ timeoutMs: 5_000 });
  expect((await conn.query<{ one: number }>('SELECT 1 AS one')).rows[0].one).toBe(1);
  await manager.releaseConnection(conn);
  expect(manager.getPoolStats().inUse).toBe(expected.inUse);
}

describe('1. a signal that is not an AbortSignal', () => {
  test('is refused with E_INVALID_CONFIG before anything is queued', async () => {
    for (const signal of [{}, 'x', 1, null, { aborted: false }]) {
      const r = await rejection(manager.getConnection({ signal: signal as AbortSignal }));
      expect(r.code).toBe('E_INVALID_CONFIG');
      expect(r.message).toContain('"signal"');
      const w = await rejection(manager.withConnection(() => 1, { signal: signal as AbortSignal }));
      expect(w.code).toBe('E_INVALID_CONFIG');
      const q = await rejection(manager.query('SELECT 1', [], { signal: signal as AbortSignal }));
      expect(q.code).toBe('E_INVALID_CONFIG');
    }
    await expectIntact({ inUse: 0 });
  });

  test('in a child process: refused, and a signal whose clean-up throws neither kills the process nor strands a connection', async () => {
    const { code, stdout, stderr } = await runChild('signal');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({
      plainObject: 'E_INVALID_CONFIG',
      string: 'E_INVALID_CONFIG',
      waitingAfterRefusals: 0,
      brokenAtDeadline: 'E_ACQUIRE_TIMEOUT',
      handedOver: true,
      select1: 1,
      counts: { total: 1, idle: 1, inUse: 0, waiting: 0 },
    });
  });
});

describe('2. a connection object with a bad port or field', () => {
  test.each([
    [{ port: 'abc' }, 'connection.port'],
    [{ port: -1 }, 'connection.port'],
    [{ port: 70000 }, 'connection.port'],
    [{ port: 1.5 }, 'connection.port'],
    [{ host: 5 }, 'connection.host'],
    [{ user: 5 }, 'connection.user'],
    [{ database: {} }, 'connection.database'],
    [{ password: 1234 }, 'connection.password'],
    [{ ssl: 'yes' }, 'connection.ssl'],
    [{ keepAlive: 'on' }, 'connection.keepAlive'],
    [{ connectionTimeoutMillis: '100' }, 'connection.connectionTimeoutMillis'],
    [{ statement_timeout: -5 }, 'connection.statement_timeout'],
    [{ connectionString: 'postgres://h:abc/db' }, 'connection.connectionString'],
    [{ connectionString: 5 }, 'connection.connectionString'],
  ])('%j is refused up front naming %s', (fields, option) => {
    let caught: unknown;
    try {
      resolveOptions(testConfig('kcm-spec-bad-input', { min: 0, max: 1 }, { connection: { host: '127.0.0.1', ...fields } as never }));
    } catch (error) {
      caught = error;
    }
    expect(errorCode(caught)).toBe('E_INVALID_CONFIG');
    expect((caught as Error).message).toContain(`"${option}"`);
  });

  test('a connection string with a bad port is refused without echoing the string (it may hold a password)', () => {
    let caught: unknown;
    try {
      resolveOptions({ connection: 'postgres://kcm:s3cret@127.0.0.1:70000/db' });
    } catch (error) {
      caught = error;
    }
    expect(errorCode(caught)).toBe('E_INVALID_CONFIG');
    expect((caught as Error).message).not.toContain('s3cret');
  });

  test('in a child process: refused up front, and a bad port that reaches the driver anyway fails the open without an unhandled error event', async () => {
    const { code, stdout, stderr } = await runChild('port');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({
      refused: { abc: 'E_INVALID_CONFIG', '-1': 'E_INVALID_CONFIG', '70000': 'E_INVALID_CONFIG' },
      driverLevel: { abc: 'ERR_SOCKET_BAD_PORT', '-1': 'ERR_SOCKET_BAD_PORT', '70000': 'ERR_SOCKET_BAD_PORT' },
      survived: true,
    });
  });
});

describe('3. per-call numbers that are not finite numbers > 0', () => {
  const BAD: Array<[unknown, string]> = [
    ['500', '"500"'],
    [true, 'true'],
    [1n, '1n'],
    ['1e1', '"1e1"'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [0, '0'],
    [-1, '-1'],
    [2 ** 31, String(2 ** 31)],
    [null, 'null'],
  ];

  test.each(BAD)('timeoutMs %p is E_INVALID_CONFIG showing the value, at every entry', async (value, shown) => {
    const options = { timeoutMs: value as number };
    for (const call of [
      () => manager.getConnection(options),
      () => manager.getConnection({ ...options, intent: 'read' }),
      () => manager.withConnection(() => 1, options),
      () => manager.query('SELECT 1', [], options),
    ]) {
      const r = await rejection(call());
      expect(r.code).toBe('E_INVALID_CONFIG');
      expect(r.message).toContain('"timeoutMs"');
      expect(r.message).toContain(`got ${shown}`);
    }
    await expectIntact({ inUse: 0 });
  });

  test('intent must be "read", "write" or left out; unknown keys are refused; query() takes no intent', async () => {
    expect((await rejection(manager.getConnection({ intent: 'READ' as 'read' }))).code).toBe('E_INVALID_CONFIG');
    const typo = await rejection(manager.getConnection({ timeout: 10 } as never));
    expect(typo.code).toBe('E_INVALID_CONFIG');
    expect(typo.message).toContain('"timeout"');
    expect((await rejection(manager.query('SELECT 1', [], { intent: 'read' } as never))).code).toBe('E_INVALID_CONFIG');
    expect((await rejection(manager.getConnection('fast' as never))).code).toBe('E_INVALID_CONFIG');
    expect((await rejection(manager.withConnection('not a function' as never))).code).toBe('E_INVALID_CONFIG');
    let thrown: unknown;
    try {
      manager.withReadYourWrites(5 as never);
    } catch (error) {
      thrown = error;
    }
    expect(isConnectionManagerError(thrown, 'E_INVALID_CONFIG')).toBe(true);
    expect((thrown as Error).message).toContain('withReadYourWrites()');
    for (const [sql, bindings] of [[123, undefined], [null, undefined], ['  ', undefined], ['SELECT $1::int', 'x']]) {
      const r = await rejection(manager.query(sql as string, bindings as never));
      expect(r.code).toBe('E_INVALID_CONFIG');
    }
    await expectIntact({ inUse: 0 });
  });
});

describe('4. look-alike connections', () => {
  test('copies, prototype children, proxies, foreign and non-objects are E_NOT_CHECKED_OUT and change nothing', async () => {
    const conn = await manager.getConnection();
    const other = new ConnectionManager(resolveOptions(testConfig('kcm-spec-bad-input-other', { min: 0, max: 1 })));
    const foreign = await other.getConnection();
    try {
      const before = manager.getPoolStats();
      const lookAlikes: unknown[] = [
        { ...conn },
        Object.create(conn),
        new Proxy(conn, {}),
        new Proxy(conn, { get: () => { throw new Error('trap'); } }),
        foreign,
        null,
        undefined,
        42,
        'conn_1',
        {},
      ];
      for (const fake of lookAlikes) {
        expect((await rejection(manager.releaseConnection(fake as PooledConnection))).code).toBe('E_NOT_CHECKED_OUT');
        await expect(manager.isConnectionValid(fake as PooledConnection)).resolves.toBe(false);
      }
      const after = manager.getPoolStats();
      expect({ inUse: after.inUse, idle: after.idle, total: after.total, released: after.counters.released })
        .toEqual({ inUse: before.inUse, idle: before.idle, total: before.total, released: before.counters.released });
      // The holder still holds its session: the next caller gets a different backend.
      const second = await manager.getConnection();
      expect(second).not.toBe(conn);
      const pids = await Promise.all([conn, second].map(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid));
      expect(pids[0]).not.toBe(pids[1]);
      await manager.releaseConnection(second);
      await expect(manager.isConnectionValid(conn)).resolves.toBe(true);
      await manager.releaseConnection(conn);
      expect(other.getPoolStats().inUse).toBe(1);
    } finally {
      await other.releaseConnection(foreign);
      await other.close();
    }
    await expectIntact({ inUse: 0 });
  });
});

describe('5. messages fit the option\'s unit', () => {
  function messageOf(config: Record<string, unknown>): string {
    try {
      resolveOptions({ connection: testDatabaseUrl(), ...config });
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected E_INVALID_CONFIG');
  }

  test('a count too large speaks of counts, not timers or "0 disables"', () => {
    const message = messageOf({ pool: { max: 1e20 } });
    expect(message).toContain('"pool.max"');
    expect(message).toContain('connections');
    expect(message).not.toMatch(/timer|disables|milliseconds/);
  });

  test('a time too large names the timer limit; "0 disables" only where it does', () => {
    const idle = messageOf({ pool: { idleTimeoutMs: 1e20 } });
    expect(idle).toMatch(/milliseconds .*0 disables it.*longest timer/);
    const acquire = messageOf({ pool: { acquireTimeoutMs: 0 } });
    expect(acquire).toContain('milliseconds from 1');
    expect(acquire).not.toContain('disables');
    const waiting = messageOf({ pool: { maxWaiting: -1 } });
    expect(waiting).toContain('waiting callers');
    expect(waiting).toContain('Infinity');
  });
});

describe('6. the order of checks: arguments, then closed, then aborted', () => {
  test('on an open pool, bad options win over an aborted signal', async () => {
    const aborted = AbortSignal.abort();
    expect((await rejection(manager.getConnection({ signal: aborted, timeoutMs: '5' as never }))).code).toBe('E_INVALID_CONFIG');
    expect((await rejection(manager.getConnection({ signal: aborted }))).code).toBe('E_ABORTED');
    await expectIntact({ inUse: 0 });
  });

  test('on a closed manager, bad options are still E_INVALID_CONFIG; good ones E_POOL_CLOSED even with an aborted signal', async () => {
    await manager.close();
    const aborted = AbortSignal.abort();
    expect((await rejection(manager.getConnection({ timeoutMs: -1 }))).code).toBe('E_INVALID_CONFIG');
    expect((await rejection(manager.getConnection({ signal: {} as AbortSignal }))).code).toBe('E_INVALID_CONFIG');
    expect((await rejection(manager.getConnection({ signal: aborted }))).code).toBe('E_POOL_CLOSED');
    expect((await rejection(manager.query('SELECT 1', [], { signal: aborted }))).code).toBe('E_POOL_CLOSED');
  });
});
