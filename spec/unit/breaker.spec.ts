/**
 * The circuit breaker's state machine on the fake connector and clock: closed → open after
 * failureThreshold failed attempts with nothing open, waiters told at once, acquires failing at
 * once while open, one probe per (growing) delay, halfOpen → closed on a probe that connects (the
 * pool refills) and halfOpen → open on one that fails.
 */
import type { ConnectionManagerError } from '../../lib/errors';
import { resolveOptions } from '../../lib/options';
import { probeDelayMs } from '../../lib/resilience/breaker';
import { FakeConnectError } from '../helpers/fake-connector';
import { checkedFakePools, errorCode, observe } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();
const retry = { attempts: 3, initialDelayMs: 50, maxDelayMs: 500 };
const circuitBreaker = { failureThreshold: 3, openMs: 1_000 };

/** A pool whose database refuses every connection, with the breaker on. */
function downPool(min = 0) {
  const capture = capturingLogger('info');
  const setup = fakePool({ pool: { min, max: 3 }, retry, circuitBreaker, outcome: 'fail', logger: capture.logger });
  return { ...setup, capture };
}

describe('circuit breaker', () => {
  test('opens after failureThreshold failed attempts with nothing open; the waiting caller is told at once', async () => {
    const { pool, connector, clock } = downPool();
    const waiter = observe(pool.acquire({ timeoutMs: 30_000 }));
    expect(pool.stats().circuit).toEqual({ state: 'closed', since: null, failures: 0 });
    await clock.advanceAsync(1_000);
    expect(connector.openAttempts).toBe(3);
    const error = waiter.error as ConnectionManagerError;
    expect(error.code).toBe('E_DB_UNAVAILABLE');
    expect(error.cause).toBeInstanceOf(FakeConnectError);
    expect(error.message).toContain('next probe runs at');
    expect(error.message).toContain('since');
    const circuit = pool.stats().circuit;
    expect(circuit.state).toBe('open');
    expect(circuit.failures).toBe(3);
    expect(circuit.since).toBeInstanceOf(Date);
    expect(circuit.lastError).toContain('ECONNREFUSED');
  });

  test('while open, an acquire fails at once (before any time passes) and starts no open', async () => {
    const { pool, connector, clock } = downPool();
    void pool.acquire().catch(() => undefined);
    await clock.advanceAsync(500);
    expect(pool.stats().circuit.state).toBe('open');
    const attempts = connector.openAttempts;
    const callers = Array.from({ length: 100 }, () => observe(pool.acquire({ timeoutMs: 30_000 })));
    await clock.flush();
    expect(callers.map((c) => errorCode(c.error))).toEqual(Array(100).fill('E_DB_UNAVAILABLE'));
    expect(connector.openAttempts).toBe(attempts);
    expect(pool.waiting).toBe(0);
  });

  test('callers already waiting are all rejected when the circuit opens, not at their deadline', async () => {
    const { pool, clock } = downPool();
    const callers = Array.from({ length: 5 }, () => observe(pool.acquire({ timeoutMs: 60_000 })));
    await clock.advanceAsync(1_000);
    expect(callers.every((c) => c.state === 'rejected')).toBe(true);
    expect(new Set(callers.map((c) => errorCode(c.error)))).toEqual(new Set(['E_DB_UNAVAILABLE']));
    expect(pool.stats().counters.timedOut).toBe(0);
  });

  test('one probe per delay, the delay doubling after each failed probe up to retry.maxDelayMs × 10', async () => {
    const { pool, connector, clock, capture } = downPool();
    void pool.acquire().catch(() => undefined);
    // Attempts at 0, 37.5 and 112.5 ms (backoff with random() = 0.5): the third opens the circuit.
    await clock.advanceAsync(112.5);
    expect(pool.stats().circuit.state).toBe('open');
    const after = connector.openAttempts;
    const delays = [0, 1, 2, 3, 4].map((n) => probeDelayMs(n, 1_000, 5_000, () => 0.5));
    expect(delays).toEqual([900, 1_800, 3_600, 4_500, 4_500]);
    for (const [i, delay] of delays.entries()) {
      await clock.advanceAsync(delay - 1);
      expect(connector.openAttempts).toBe(after + i);
      await clock.advanceAsync(1);
      expect(connector.openAttempts).toBe(after + i + 1);
      expect(pool.stats().circuit.state).toBe('open');
    }
    expect(capture.messages().filter((m) => m.startsWith('Circuit half-open'))).toHaveLength(5);
    expect(capture.messages().filter((m) => m.startsWith('Circuit stays open'))).toHaveLength(5);
  });

  test('a probe that connects closes the circuit; the pool refills to min and serves again', async () => {
    const { pool, connector, clock, capture } = downPool(2);
    await clock.advanceAsync(300);
    expect(pool.stats().circuit.state).toBe('open');
    connector.defaultOutcome = 'ok';
    await clock.advanceAsync(900);
    expect(pool.stats().circuit).toMatchObject({ state: 'closed', failures: 0 });
    expect(pool.stats().circuit.lastError).toBeUndefined();
    expect(pool.stats().total).toBe(2);
    const lease = observe(pool.acquire());
    await clock.flush();
    expect(lease.state).toBe('resolved');
    expect(capture.messages().some((m) => m.startsWith('Circuit opened'))).toBe(true);
    expect(capture.messages().some((m) => m.startsWith('Circuit closed'))).toBe(true);
    pool.release(lease.value as never);
  });

  test('a probe in flight (halfOpen) still fails other callers at once', async () => {
    const { pool, connector, clock } = downPool();
    void pool.acquire().catch(() => undefined);
    await clock.advanceAsync(200);
    connector.defaultOutcome = 'hang';
    await clock.advanceAsync(900);
    expect(pool.stats().circuit.state).toBe('halfOpen');
    const caller = observe(pool.acquire());
    await clock.flush();
    expect(errorCode(caller.error)).toBe('E_DB_UNAVAILABLE');
    expect((caller.error as Error).message).toContain('a probe is running now');
  });

  test('ready() with the database down still rejects E_CONNECT after the retries; while open it rejects at once', async () => {
    const { pool, clock } = downPool();
    const first = observe(pool.ready().then(() => undefined));
    // min is 0: ready() resolves; a pool with min 2 shows the rule.
    await clock.flush();
    expect(first.state).toBe('resolved');
    const withMin = downPool(2);
    const ready = observe(withMin.pool.ready());
    await withMin.clock.advanceAsync(300);
    expect(errorCode(ready.error)).toBe('E_CONNECT');
    expect(withMin.pool.stats().circuit.state).toBe('open');
    const again = observe(withMin.pool.ready());
    await withMin.clock.flush();
    expect(errorCode(again.error)).toBe('E_CONNECT');
    expect(errorCode((again.error as Error).cause)).toBe('E_DB_UNAVAILABLE');
  });

  test('the circuit does not open while a connection is open', async () => {
    const { pool, connector, clock } = downPool();
    connector.defaultOutcome = 'ok';
    const held = observe(pool.acquire());
    await clock.flush();
    connector.defaultOutcome = 'fail';
    const second = observe(pool.acquire({ timeoutMs: 5_000 }));
    await clock.advanceAsync(5_000);
    expect(errorCode(second.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect(pool.stats().circuit.state).toBe('closed');
    expect(pool.stats().circuit.failures).toBeGreaterThanOrEqual(3);
    pool.release(held.value as never);
  });
});

describe('circuitBreaker option', () => {
  test('on by default with the documented defaults; false turns it off', () => {
    expect(resolveOptions({ connection: 'postgres://x@h/db' }).circuitBreaker).toEqual({ failureThreshold: 5, openMs: 1_000 });
    expect(resolveOptions({ connection: 'postgres://x@h/db', circuitBreaker: false }).circuitBreaker).toBe(false);
    expect(resolveOptions({ connection: 'postgres://x@h/db', circuitBreaker: { openMs: 200 } }).circuitBreaker).toEqual({ failureThreshold: 5, openMs: 200 });
  });

  test.each([
    [{ failureThreshold: 0 }, 'circuitBreaker.failureThreshold'],
    [{ openMs: -1 }, 'circuitBreaker.openMs'],
    [{ threshold: 3 }, 'circuitBreaker'],
    ['yes', 'circuitBreaker'],
  ])('%j is refused with E_INVALID_CONFIG naming %s', (value, option) => {
    expect(() => resolveOptions({ connection: 'postgres://x@h/db', circuitBreaker: value })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining(option) as string }) as Error,
    );
  });
});
