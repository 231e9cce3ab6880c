/**
 * Opening connections when the database does not answer: retries with backoff, permanent errors
 * failing fast, E_CONNECT reaching callers when nothing is open, ready() rejecting, opens that
 * hang until createTimeoutMs, and no tight loop while the database is down.
 */
import { ConnectionManagerError } from '../../lib/errors';
import { connectBackoffMs } from '../../lib/pool/backoff';
import { DEFAULT_RETRY_OPTIONS } from '../../lib/options';
import { FakeConnectError, type FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, errorCode, observe } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

describe('retries', () => {
  test('a failing open makes exactly retry.attempts attempts, then the waiter gets E_CONNECT', async () => {
    const capture = capturingLogger('warn');
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 }, retry: { attempts: 3 }, logger: capture.logger });
    connector.defaultOutcome = 'fail';
    const t0 = clock.now();
    const waiter = observe(pool.acquire());
    let endedAt = -1;
    void waiter.promise.catch(() => (endedAt = clock.now() - t0));
    await clock.advanceAsync(5_000);
    expect(connector.openAttempts).toBe(3);
    const error = waiter.error as ConnectionManagerError;
    expect(error.code).toBe('E_CONNECT');
    expect(error.cause).toBeInstanceOf(FakeConnectError);
    expect((error.cause as FakeConnectError).attempt).toBe(3);
    expect(error.message).toContain('ECONNREFUSED');
    // Backoff between attempts: with random() = 0.5 each delay is 3/4 of the exponential base.
    const retry = { ...DEFAULT_RETRY_OPTIONS, attempts: 3 };
    expect(endedAt).toBe(connectBackoffMs(1, retry, () => 0.5) + connectBackoffMs(2, retry, () => 0.5));
    expect(pool.stats().counters.createErrors).toBe(3);
    expect(capture.messages().filter((m) => m.startsWith('Connection attempt'))).toEqual([
      'Connection attempt 1/3 failed: connect ECONNREFUSED (attempt 1); retrying',
      'Connection attempt 2/3 failed: connect ECONNREFUSED (attempt 2); retrying',
      'Connection attempt 3/3 failed: connect ECONNREFUSED (attempt 3)',
    ]);
    // min is 0 and nobody waits: no more attempts.
    await clock.advanceAsync(60_000);
    expect(connector.openAttempts).toBe(3);
  });

  test('a permanent error (bad password) is not retried', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 }, retry: { attempts: 5 } });
    connector.defaultOutcome = 'fail-permanent';
    const waiter = observe(pool.acquire());
    await clock.flush();
    expect(connector.openAttempts).toBe(1);
    expect(errorCode(waiter.error)).toBe('E_CONNECT');
    expect((waiter.error as Error).message).toContain('password authentication failed');
  });

  test('an open that succeeds on a retry serves the waiter', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 }, script: ['fail', 'fail', 'ok'] });
    const waiter = observe(pool.acquire());
    await clock.advanceAsync(1_000);
    expect(waiter.state).toBe('resolved');
    expect(connector.openAttempts).toBe(3);
    expect(pool.stats().counters).toMatchObject({ createErrors: 2, created: 1 });
    pool.release(waiter.value as FakeEntry);
  });

  test('an open that hangs is given up at createTimeoutMs and retried', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1, createTimeoutMs: 2_000 }, script: ['hang'] });
    const t0 = clock.now();
    const waiter = observe(pool.acquire({ timeoutMs: 10_000 }));
    await clock.advanceAsync(1_999);
    expect(connector.openAttempts).toBe(1);
    await clock.advanceAsync(1);
    expect(connector.gates[0]?.state).toBe('timedOut');
    expect(String(pool.lastConnectError)).toContain('timeout expired');
    await clock.advanceAsync(1_000);
    expect(waiter.state).toBe('resolved');
    expect(connector.openAttempts).toBe(2);
    expect(clock.now() - t0).toBe(3_000);
    pool.release(waiter.value as FakeEntry);
  });

  test('a hanging open does not hold up the opens started after it', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 3 }, script: ['hang', 'ok'] });
    const first = observe(pool.acquire());
    const second = observe(pool.acquire());
    await clock.flush();
    // The open for the second caller landed first; FIFO gives it to the first caller.
    expect(first.state).toBe('resolved');
    expect(second.state).toBe('pending');
    expect(connector.inFlight).toBe(1);
    pool.release(first.value as FakeEntry);
    await clock.flush();
    expect(second.state).toBe('resolved');
    pool.release(second.value as FakeEntry);
  });
});

describe('database down', () => {
  test('E_CONNECT reaches the callers that waited through the failed open; later ones wait for the next', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1 } });
    connector.defaultOutcome = 'fail';
    const early = observe(pool.acquire());
    await clock.advanceAsync(50);
    const late = observe(pool.acquire());
    await clock.advanceAsync(100);
    expect(errorCode(early.error)).toBe('E_CONNECT');
    expect(late.state).toBe('pending');
    connector.defaultOutcome = 'ok';
    await clock.advanceAsync(1_000);
    expect(late.state).toBe('resolved');
    pool.release(late.value as FakeEntry);
  });

  test('with a connection open, callers are not failed by a failed open: they wait for a release', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 } });
    const held = await pool.acquire();
    connector.defaultOutcome = 'fail';
    const waiter = observe(pool.acquire({ timeoutMs: 5_000 }));
    await clock.advanceAsync(1_000);
    expect(waiter.state).toBe('pending');
    expect(connector.openAttempts).toBeGreaterThan(3);
    pool.release(held);
    await clock.flush();
    expect(waiter.value).toBe(held);
    pool.release(held);
  });

  test('no tight loop: one chain of opens over 10 s of outage backs off', async () => {
    const retry = { attempts: 3, initialDelayMs: 50, maxDelayMs: 500 };
    const { pool, connector, clock } = fakePool({ pool: { min: 1, max: 1 }, retry, outcome: 'fail' });
    await clock.advanceAsync(10_000);
    // Each round of `attempts` tries is preceded by the pool's backoff, which after a few failed
    // rounds is at least maxDelayMs / 2 (equal jitter): at most attempts × (10 s / 250 ms) tries,
    // plus a few rounds while the backoff is still growing.
    const warmupRounds = Math.ceil(Math.log2(retry.maxDelayMs / retry.initialDelayMs)) + 1;
    const bound = retry.attempts * (Math.ceil(10_000 / (retry.maxDelayMs / 2)) + warmupRounds);
    expect(connector.openAttempts).toBeLessThanOrEqual(bound);
    expect(connector.openAttempts).toBeGreaterThan(retry.attempts * 5); // and it keeps trying
    const gaps = connector.attemptTimes.slice(1).map((t, i) => t - (connector.attemptTimes[i] as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(retry.initialDelayMs / 2);
    expect(pool.stats().counters.createErrors).toBe(connector.openAttempts);
  });

  test('no tight loop with several chains and callers arriving during the outage; recovery refills', async () => {
    const retry = { attempts: 3, initialDelayMs: 50, maxDelayMs: 500 };
    const { pool, connector, clock } = fakePool({ pool: { min: 2, max: 4 }, retry, outcome: 'fail' });
    const waiters = [observe(pool.acquire({ timeoutMs: 60_000 }))];
    for (let t = 0; t < 10_000; t += 250) {
      await clock.advanceAsync(250);
      if (t % 1_000 === 0) waiters.push(observe(pool.acquire({ timeoutMs: 60_000 })));
      checkInvariants(pool, connector);
    }
    // At most `max` chains, each bounded as in the test above.
    const warmupRounds = Math.ceil(Math.log2(retry.maxDelayMs / retry.initialDelayMs)) + 1;
    const bound = pool.options.max * retry.attempts * (Math.ceil(10_000 / (retry.maxDelayMs / 2)) + warmupRounds);
    expect(connector.openAttempts).toBeLessThanOrEqual(bound);
    expect(connector.peakOccupied).toBe(0); // every attempt failed at once: nothing ever open
    expect(waiters.filter((w) => w.state === 'resolved')).toHaveLength(0);
    // Callers that waited through a whole failed open were told so, with the cause.
    const failed = waiters.filter((w) => w.state === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((w) => errorCode(w.error) === 'E_CONNECT')).toBe(true);
    // Recovery: once the database answers, the pool refills within the capped backoff.
    connector.defaultOutcome = 'ok';
    await clock.advanceAsync(2 * retry.maxDelayMs);
    expect(checkInvariants(pool, connector).total).toBeGreaterThanOrEqual(2);
    for (const w of waiters) if (w.state === 'resolved') pool.release(w.value as FakeEntry);
  });

  test('ready() rejects with E_CONNECT when an open fails, and resolves after recovery', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 2, max: 2 }, outcome: 'fail-permanent' });
    const ready = observe(pool.ready());
    await clock.flush();
    expect(errorCode(ready.error)).toBe('E_CONNECT');
    connector.defaultOutcome = 'ok';
    await clock.advanceAsync(1_000);
    await expect(pool.ready()).resolves.toBeUndefined();
    expect(pool.stats().total).toBe(2);
  });

  test('a successful open resets the backoff', async () => {
    const retry = { attempts: 1, initialDelayMs: 100, maxDelayMs: 1_000 };
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 }, retry });
    connector.defaultOutcome = 'fail';
    for (let i = 0; i < 3; i++) {
      const w = observe(pool.acquire());
      await clock.advanceAsync(2_000);
      expect(errorCode(w.error)).toBe('E_CONNECT');
    }
    // Three failures in a row: the next open waits for the backoff of a streak of 3 first.
    connector.defaultOutcome = 'ok';
    let t0 = clock.now();
    const held = observe(pool.acquire());
    await clock.advanceAsync(2_000);
    expect(connector.attemptTimes.at(-1)).toBe(t0 + connectBackoffMs(3, retry, () => 0.5));
    expect(held.state).toBe('resolved');
    // The success ended the streak: the next open starts at once.
    t0 = clock.now();
    const second = observe(pool.acquire());
    await clock.flush();
    expect(connector.attemptTimes.at(-1)).toBe(t0);
    expect(second.state).toBe('resolved');
    pool.release(held.value as FakeEntry);
    pool.release(second.value as FakeEntry);
  });
});
