/**
 * Bad input at the pool and driver level, on the fakes: the one check of per-call options, a
 * signal whose clean-up throws, look-alike releases, and the PostgreSQL connector with a driver
 * that fails each way (synchronous throw from connect, asynchronous error, an error after the
 * attempt was abandoned by its timeout). The real-server cases are in
 * spec/integration/bad-input.spec.ts.
 */
import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { validateCallOptions } from '../../lib/call-options';
import { PgConnector } from '../../lib/driver/pg-connector';
import { PoolEntry } from '../../lib/pool/entry';
import { FakeClock } from '../helpers/fake-clock';
import type { FakeConn } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, errorCode, observe } from '../helpers/invariants';
import { silentLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return errorCode(error);
  }
  return undefined;
}

describe('validateCallOptions: the one check of per-call options', () => {
  test.each([
    [{ timeoutMs: '500' }], [{ timeoutMs: true }], [{ timeoutMs: 1n }], [{ timeoutMs: Number.NaN }], [{ timeoutMs: 0 }],
    [{ timeoutMs: 2 ** 31 }], [{ signal: {} }], [{ signal: 'x' }], [{ signal: { aborted: false } }], [{ intent: 'READ' }],
    [{ timeout: 5 }], ['fast'], [null], [[]],
  ])('%p is E_INVALID_CONFIG', (options) => {
    expect(codeOf(() => validateCallOptions(options, 'getConnection'))).toBe('E_INVALID_CONFIG');
  });

  test('good options come back with their values, checked once; intent is only for getConnection/withConnection', () => {
    const signal = new AbortController().signal;
    const options = { timeoutMs: 0.5, signal, intent: 'read' as const };
    const checked = validateCallOptions(options, 'getConnection');
    expect({ ...checked }).toEqual(options);
    // Handed down again (manager to pool), checked options are recognised, not checked twice.
    expect(validateCallOptions(checked, 'acquire')).toBe(checked);
    expect({ ...validateCallOptions(undefined, 'query') }).toEqual({ timeoutMs: undefined, signal: undefined, intent: undefined });
    expect(validateCallOptions({ timeoutMs: 2 ** 31 - 1 }, 'acquire').timeoutMs).toBe(2 ** 31 - 1);
    expect(codeOf(() => validateCallOptions({ intent: 'read' }, 'query'))).toBe('E_INVALID_CONFIG');
    expect(codeOf(() => validateCallOptions({ intent: 'read' }, 'acquire'))).toBe('E_INVALID_CONFIG');
  });

  test('a getter cannot answer one thing to the check and another to the pool', () => {
    let reads = 0;
    const sly = { get timeoutMs(): unknown { reads++; return reads > 1 ? '1e1' : 5; } };
    const checked = validateCallOptions(sly, 'getConnection');
    expect(checked.timeoutMs).toBe(5);
    expect(checked.timeoutMs).toBe(5);
  });
});

/** Signal-like, with a removeEventListener that throws (a broken polyfill). */
function brokenSignal(): AbortSignal & { listeners: number } {
  const s = {
    aborted: false,
    reason: undefined,
    listeners: 0,
    addEventListener: () => void s.listeners++,
    removeEventListener: () => {
      throw new TypeError('removeEventListener exploded');
    },
  };
  return s as unknown as AbortSignal & { listeners: number };
}

describe('the pool under bad input', () => {
  test('a signal that is not an AbortSignal is refused before anything is queued', async () => {
    const { pool, connector } = fakePool({ pool: { max: 1 } });
    const held = await pool.acquire();
    for (const signal of [{}, 'x', 7]) {
      const r = observe(pool.acquire({ signal: signal as AbortSignal }));
      await Promise.resolve();
      await Promise.resolve();
      expect(r.state).toBe('rejected');
      expect(errorCode(r.error)).toBe('E_INVALID_CONFIG');
    }
    expect(pool.waiting).toBe(0);
    pool.release(held);
    checkInvariants(pool, connector);
  });

  test('a signal whose removeEventListener throws: the deadline still ends the wait (inside the timer) and a release still hands over', async () => {
    const { pool, connector, clock } = fakePool({ pool: { max: 1 } });
    const held = await pool.acquire();
    const timedOut = observe(pool.acquire({ signal: brokenSignal(), timeoutMs: 100 }));
    await clock.advanceAsync(100);
    expect(errorCode(timedOut.error)).toBe('E_ACQUIRE_TIMEOUT');
    const waiting = observe(pool.acquire({ signal: brokenSignal(), timeoutMs: 1_000 }));
    await clock.flush();
    expect(() => pool.release(held)).not.toThrow();
    await clock.flush();
    expect(waiting.state).toBe('resolved');
    expect(checkInvariants(pool, connector)).toMatchObject({ inUse: 1, waiting: 0 });
    pool.release(waiting.value as PoolEntry<FakeConn>);
    expect(checkInvariants(pool, connector)).toMatchObject({ inUse: 0, idle: 1 });
  });

  test('look-alike records are refused by identity and change nothing', async () => {
    const { pool, connector } = fakePool({ pool: { max: 2 } });
    const entry = await pool.acquire();
    const other = fakePool({ pool: { max: 1 } });
    const foreign = await other.pool.acquire();
    const before = { ...checkInvariants(pool, connector), connections: undefined };
    const lookAlikes: unknown[] = [{ ...entry }, Object.create(entry), new Proxy(entry, {}), foreign, null, undefined, 3, {}, new PoolEntry<FakeConn>(pool)];
    for (const fake of lookAlikes) {
      expect(codeOf(() => pool.release(fake as PoolEntry<FakeConn>))).toBe('E_NOT_CHECKED_OUT');
      expect(pool.owns(fake)).toBe(false);
    }
    expect({ ...checkInvariants(pool, connector), connections: undefined }).toEqual(before);
    // The next caller gets another connection, never the one still held.
    const next = await pool.acquire();
    expect(next).not.toBe(entry);
    expect(next.raw).not.toBe(entry.raw);
    pool.release(next);
    pool.release(entry);
    other.pool.release(foreign);
  });

  test('order of checks: arguments first, then closed, then aborted', async () => {
    const { pool, clock } = fakePool();
    const aborted = AbortSignal.abort();
    const first = observe(pool.acquire({ signal: aborted, timeoutMs: -5 }));
    const second = observe(pool.acquire({ signal: aborted }));
    void pool.close();
    const third = observe(pool.acquire({ signal: aborted, timeoutMs: '5' as never }));
    const fourth = observe(pool.acquire({ signal: aborted }));
    await clock.flush();
    expect([first, second, third, fourth].map((o) => errorCode(o.error))).toEqual(['E_INVALID_CONFIG', 'E_ABORTED', 'E_INVALID_CONFIG', 'E_POOL_CLOSED']);
  });
});

/** A stand-in for pg's Client: what pg does on connect, scripted. */
class FakePgClient extends EventEmitter {
  static mode: 'sync-throw' | 'async-error' | 'hang' = 'sync-throw';
  static made: FakePgClient[] = [];
  readonly connection = { stream: Object.assign(new EventEmitter(), { destroyed: false, destroy(): void { this.destroyed = true; } }) };
  connectionTimeoutHandle: NodeJS.Timeout | undefined;
  ended = false;
  finishConnect: (() => void) | undefined;

  constructor() {
    super();
    FakePgClient.made.push(this);
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Like pg: the connect timer is armed before the socket is touched. It would emit 'error'
      // on the socket; no timer here fires during the test (the spec asserts it was cleared).
      this.connectionTimeoutHandle = setTimeout(() => this.connection.stream.emit('error', new Error('timeout expired')), 60_000);
      this.connectionTimeoutHandle.unref();
      if (FakePgClient.mode === 'sync-throw') throw Object.assign(new RangeError('Port should be >= 0 and < 65536'), { code: 'ERR_SOCKET_BAD_PORT' });
      if (FakePgClient.mode === 'async-error') setImmediate(() => reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
      else this.finishConnect = resolve;
    });
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}

function fakeKnexClient(): Knex.Client {
  const client = {
    driver: { Client: FakePgClient },
    connectionSettings: {},
    acquireRawConnection(): Promise<unknown> {
      return (client as unknown as { _acquireOnlyConnection: () => Promise<unknown> })._acquireOnlyConnection();
    },
    destroyRawConnection: (raw: FakePgClient) => raw.end(),
  };
  return client as unknown as Knex.Client;
}

describe('PgConnector: no failure of a connection attempt reaches the process', () => {
  beforeEach(() => {
    FakePgClient.made = [];
  });

  test.each(['sync-throw', 'async-error'] as const)('%s: the open rejects, pg\'s connect timer is cleared and the socket destroyed, with a listener on it', async (mode) => {
    FakePgClient.mode = mode;
    const clearSpy = jest.spyOn(global, 'clearTimeout');
    const connector = new PgConnector(fakeKnexClient(), silentLogger(), new FakeClock());
    const error = await connector.open(1_000).then(() => undefined, (e: unknown) => e);
    expect(errorCode(error)).toBe(mode === 'sync-throw' ? 'ERR_SOCKET_BAD_PORT' : 'ECONNREFUSED');
    const [client] = FakePgClient.made;
    expect(clearSpy).toHaveBeenCalledWith(client.connectionTimeoutHandle);
    clearSpy.mockRestore();
    expect(client.connection.stream.destroyed).toBe(true);
    // Had the timer fired, its 'error' would have had a listener: no unhandled 'error' event.
    expect(() => client.connection.stream.emit('error', new Error('timeout expired'))).not.toThrow();
    expect(() => client.emit('error', new Error('late'))).not.toThrow();
  });

  test('an attempt abandoned at createTimeoutMs (on the Clock): a late error is absorbed and a late connection closed', async () => {
    FakePgClient.mode = 'hang';
    const clock = new FakeClock();
    const connector = new PgConnector(fakeKnexClient(), silentLogger(), clock);
    const first = observe(connector.open(500));
    await clock.advanceAsync(499);
    expect(first.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(first.state).toBe('rejected');
    expect((first.error as Error).message).toContain('timed out after 500 ms');
    const [client] = FakePgClient.made;
    expect(() => client.emit('error', new Error('server went away'))).not.toThrow();
    expect(() => client.connection.stream.emit('error', new Error('ECONNRESET'))).not.toThrow();

    const second = observe(connector.open(500));
    await clock.advanceAsync(500);
    expect(second.state).toBe('rejected');
    const late = FakePgClient.made[1];
    late.finishConnect?.();
    await clock.flush();
    expect(late.ended).toBe(true); // arrived after the pool gave up: closed, not leaked
  });

  test('validate() and close() are bounded on the Clock too', async () => {
    const clock = new FakeClock();
    const connector = new PgConnector(fakeKnexClient(), silentLogger(), clock);
    const raw = { query: () => new Promise(() => undefined), connection: { stream: { destroy: jest.fn() } } };
    const valid = observe(connector.validate(raw as never, 300));
    await clock.advanceAsync(300);
    expect(valid.value).toBe(false);
    const neverEnds = Object.assign(fakeKnexClient(), { destroyRawConnection: () => new Promise(() => undefined) });
    const closing = observe(new PgConnector(neverEnds, silentLogger(), clock).close(raw as never));
    await clock.advanceAsync(1_999);
    expect(closing.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(closing.state).toBe('resolved');
    expect(raw.connection.stream.destroy).toHaveBeenCalled();
  });
});
