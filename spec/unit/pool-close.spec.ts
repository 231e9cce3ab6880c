/**
 * close(): waiters get E_POOL_CLOSED, idle connections close now, checked-out ones when released
 * (or by force after closeTimeoutMs), opens in flight are closed when they land, and close()
 * resolves only once no fake connection is physically open.
 */
import type { FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, errorCode, observe } from '../helpers/invariants';

const fakePool = checkedFakePools();

/** Resolves with how many fake connections were still open at the moment close() resolved. */
function closeAndCount(setup: ReturnType<typeof fakePool>) {
  return observe(setup.pool.close().then(() => setup.connector.openCount));
}

describe('close', () => {
  test('rejects every waiter with E_POOL_CLOSED and closes checked-out connections as they come back', async () => {
    const setup = fakePool({ pool: { min: 0, max: 2 } });
    const { pool, connector, clock } = setup;
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiters = [observe(pool.acquire()), observe(pool.acquire({ timeoutMs: 50 })), observe(pool.acquire())];
    const closing = closeAndCount(setup);
    await clock.flush();
    expect(waiters.map((w) => errorCode(w.error))).toEqual(['E_POOL_CLOSED', 'E_POOL_CLOSED', 'E_POOL_CLOSED']);
    expect(waiters.every((w) => w.settlements === 1)).toBe(true);
    expect(pool.isOpen).toBe(false);
    expect(closing.state).toBe('pending');
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });

    pool.release(a);
    await clock.flush();
    expect(connector.openCount).toBe(1);
    expect(closing.state).toBe('pending');
    pool.release(b);
    await clock.flush();
    expect(closing.state).toBe('resolved');
    expect(closing.value).toBe(0);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 0, pending: 0, waiting: 0 });
    // The timed waiter's deadline passing after close changes nothing.
    await clock.advanceAsync(1_000);
    expect(pool.stats().counters.timedOut).toBe(0);
  });

  test('closes idle connections at once', async () => {
    const setup = fakePool({ pool: { min: 3, max: 3 } });
    await setup.clock.flush();
    const closing = closeAndCount(setup);
    await setup.clock.flush();
    expect(closing.value).toBe(0);
    expect(setup.connector.closes).toBe(3);
    expect(setup.pool.stats().counters.destroyed).toBe(3);
  });

  test('closes by force a connection not released within closeTimeoutMs; its late release is accepted', async () => {
    const setup = fakePool({ pool: { min: 0, max: 2, closeTimeoutMs: 2_000 } });
    const { pool, connector, clock } = setup;
    const held = await pool.acquire();
    const closing = closeAndCount(setup);
    await clock.advanceAsync(1_999);
    expect(closing.state).toBe('pending');
    expect(connector.openCount).toBe(1);
    await clock.advanceAsync(1);
    expect(closing.value).toBe(0);
    expect(() => pool.release(held)).not.toThrow();
    expect(connector.doubleCloses).toBe(0);
  });

  test('an open in flight at close is closed when it lands, and close waits for it', async () => {
    const setup = fakePool({ pool: { min: 0, max: 2 } });
    const { pool, connector, clock } = setup;
    connector.defaultOutcome = 'slow';
    const waiter = observe(pool.acquire());
    await clock.flush();
    const closing = closeAndCount(setup);
    await clock.flush();
    expect(errorCode(waiter.error)).toBe('E_POOL_CLOSED');
    expect(closing.state).toBe('pending');
    connector.waitingGates()[0]?.release();
    await clock.flush();
    expect(closing.value).toBe(0);
    expect(connector.opens).toBe(1);
    expect(connector.closes).toBe(1);
    expect(pool.stats().counters.created).toBe(0);
  });

  test('an open that hangs at close ends at createTimeoutMs, then close resolves', async () => {
    const setup = fakePool({ pool: { min: 1, max: 2, createTimeoutMs: 3_000 }, script: ['hang'] });
    const { connector, clock } = setup;
    await clock.flush();
    const closing = closeAndCount(setup);
    await clock.advanceAsync(2_999);
    expect(closing.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(closing.value).toBe(0);
    expect(connector.opens).toBe(0);
  });

  test('close wakes a retry backoff instead of waiting it out', async () => {
    const setup = fakePool({ pool: { min: 1, max: 1 }, retry: { attempts: 5, initialDelayMs: 1_000, maxDelayMs: 10_000 } });
    const { connector, clock } = setup;
    connector.defaultOutcome = 'fail';
    await clock.flush(); // first attempt failed, now sleeping before the second
    expect(connector.openAttempts).toBe(1);
    const closing = closeAndCount(setup);
    await clock.flush();
    expect(closing.value).toBe(0);
    expect(connector.openAttempts).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  test('ready() callers are rejected with E_POOL_CLOSED, and ready() after close too', async () => {
    const setup = fakePool({ pool: { min: 2, max: 2 } });
    setup.connector.defaultOutcome = 'slow';
    const ready = observe(setup.pool.ready());
    const closing = closeAndCount(setup);
    await setup.clock.flush();
    expect(errorCode(ready.error)).toBe('E_POOL_CLOSED');
    await expect(setup.pool.ready()).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
    for (const gate of setup.connector.waitingGates()) gate.release();
    await setup.clock.flush();
    expect(closing.value).toBe(0);
  });

  test('close is idempotent: every call returns the same promise', async () => {
    const setup = fakePool({ pool: { min: 1, max: 1 } });
    await setup.clock.flush();
    const first = setup.pool.close();
    expect(setup.pool.close()).toBe(first);
    await setup.clock.flush();
    await expect(first).resolves.toBeUndefined();
    expect(setup.pool.close()).toBe(first);
  });

  test('a connection released inside a transaction during close is closed, not rolled back and reused', async () => {
    const setup = fakePool({ pool: { min: 0, max: 1 } });
    const { pool, connector, clock } = setup;
    const held: FakeEntry = await pool.acquire();
    const closing = closeAndCount(setup);
    (held.raw as { inTransaction: boolean }).inTransaction = true;
    pool.release(held);
    await clock.flush();
    expect(closing.value).toBe(0);
    expect(connector.closes).toBe(1);
  });
});
