/**
 * How a wait ends other than with a connection: the acquire deadline (one per call, kept in
 * buckets per timeout value) and the caller's AbortSignal. All on the fake clock: no real sleeps.
 */
import { ConnectionManagerError } from '../../lib/errors';
import { FakeConnectError, type FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, errorCode, observe } from '../helpers/invariants';

const fakePool = checkedFakePools();

describe('acquire timeout', () => {
  test('rejects with E_ACQUIRE_TIMEOUT exactly at the deadline, with the counts in the message', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1, acquireTimeoutMs: 1_000 } });
    const held = await pool.acquire();
    const waiter = observe(pool.acquire());
    await clock.advanceAsync(999);
    expect(waiter.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(waiter.state).toBe('rejected');
    const error = waiter.error as ConnectionManagerError;
    expect(error).toBeInstanceOf(ConnectionManagerError);
    expect(error.code).toBe('E_ACQUIRE_TIMEOUT');
    expect(error.message).toContain('Timed out after 1000 ms');
    expect(error.message).toContain('total=1, idle=0, inUse=1, pending=0, waiting=0, max=1');
    expect(error.message).toContain(`Longest held: ${held.id} for 1000 ms`);
    expect(error.cause).toBeUndefined();
    expect(pool.stats()).toMatchObject({ waiting: 0, inUse: 1 });
    expect(pool.stats().counters.timedOut).toBe(1);
    // The connection goes back to idle, not to the waiter that gave up.
    pool.release(held);
    expect(pool.stats()).toMatchObject({ idle: 1, inUse: 0 });
  });

  test('carries the last connection error as cause', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 } });
    const held = await pool.acquire();
    connector.defaultOutcome = 'fail';
    const waiter = observe(pool.acquire({ timeoutMs: 1_000 }));
    await clock.advanceAsync(1_000);
    expect(waiter.state).toBe('rejected');
    const error = waiter.error as ConnectionManagerError;
    expect(error.code).toBe('E_ACQUIRE_TIMEOUT');
    expect(error.cause).toBeInstanceOf(FakeConnectError);
    expect(error.cause).toBe(pool.lastConnectError);
    expect(error.message).toContain('Last connection error: connect ECONNREFUSED');
    expect(error.message).toContain('total=1');
    pool.release(held);
  });

  test('covers a slow open: the caller gives up at its deadline and the late connection stays in the pool', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1 } });
    connector.defaultOutcome = 'slow';
    const waiter = observe(pool.acquire({ timeoutMs: 500 }));
    await clock.advanceAsync(500);
    expect(errorCode(waiter.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect(pool.stats()).toMatchObject({ pending: 1, waiting: 0 });
    connector.waitingGates()[0]?.release();
    await clock.flush();
    expect(pool.stats()).toMatchObject({ total: 1, idle: 1, pending: 0 });
  });

  test('a per-call timeout overrides acquireTimeoutMs', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1, acquireTimeoutMs: 60_000 } });
    const held = await pool.acquire();
    const waiter = observe(pool.acquire({ timeoutMs: 20 }));
    await clock.advanceAsync(20);
    expect(errorCode(waiter.error)).toBe('E_ACQUIRE_TIMEOUT');
    pool.release(held);
  });

  test('an invalid per-call timeout is refused with E_INVALID_CONFIG', async () => {
    const { pool } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    for (const timeoutMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '500', '1e1', true, 1n, null] as number[]) {
      await expect(pool.acquire({ timeoutMs })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    }
    expect(pool.stats().waiting).toBe(0);
    pool.release(held);
    // Checked before anything else: an idle connection at hand does not make a bad value pass.
    await expect(pool.acquire({ timeoutMs: '500' as never })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    expect(pool.stats()).toMatchObject({ idle: 1, inUse: 0 });
  });

  test('mixed timeouts: a short-timeout waiter behind a long-timeout one still times out on time', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const t0 = clock.now();
    const endedAt = new Map<string, number>();
    const wait = (name: string, timeoutMs: number) => {
      const w = observe(pool.acquire({ timeoutMs }));
      void w.promise.catch(() => endedAt.set(name, clock.now() - t0));
      return w;
    };
    const long = wait('long', 5_000);
    const short = wait('short', 1_000);
    await clock.advanceAsync(500);
    const short2 = wait('short2', 1_000); // deadline 1500
    const mid = wait('mid', 2_000); // deadline 2500
    await clock.advanceAsync(4_500);
    expect([long, short, short2, mid].map((w) => errorCode(w.error))).toEqual(Array(4).fill('E_ACQUIRE_TIMEOUT'));
    expect(Object.fromEntries(endedAt)).toEqual({ short: 1_000, short2: 1_500, mid: 2_500, long: 5_000 });
    pool.release(held);
  });

  test('a waiter served before its bucket timer fires does not shorten the next waiter in the bucket', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const t0 = clock.now();
    const first = observe(pool.acquire({ timeoutMs: 1_000 }));
    await clock.advanceAsync(600);
    const second = observe(pool.acquire({ timeoutMs: 1_000 }));
    let secondEnded = -1;
    void second.promise.catch(() => (secondEnded = clock.now() - t0));
    await clock.advanceAsync(100);
    pool.release(held); // first is served at 700
    await clock.advanceAsync(300); // the bucket's timer (armed for 1000) fires: second is not due
    expect(first.state).toBe('resolved');
    expect(second.state).toBe('pending');
    await clock.advanceAsync(599);
    expect(second.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(secondEnded).toBe(1_600);
    pool.release(first.value as FakeEntry);
  });

  test('no timer is left behind once the queue is empty', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    await clock.advanceAsync(pool.options.acquireTimeoutMs); // the first acquire's bucket timer
    const before = clock.pendingTimers(); // housekeeping
    const waiters = [100, 200, 100, 300].map((timeoutMs) => observe(pool.acquire({ timeoutMs })));
    expect(clock.pendingTimers()).toBe(before + 3);
    await clock.advanceAsync(300);
    expect(waiters.every((w) => w.state === 'rejected')).toBe(true);
    expect(clock.pendingTimers()).toBe(before);
    pool.release(held);
  });
});

describe('abort', () => {
  test('an already aborted signal rejects with E_ABORTED without queueing', async () => {
    const { pool, clock } = fakePool({ pool: { min: 1, max: 1 } });
    await clock.flush();
    const controller = new AbortController();
    const reason = new Error('request cancelled');
    controller.abort(reason);
    const attempt = observe(pool.acquire({ signal: controller.signal }));
    await clock.flush();
    expect(errorCode(attempt.error)).toBe('E_ABORTED');
    expect((attempt.error as Error).cause).toBe(reason);
    expect(pool.stats()).toMatchObject({ idle: 1, waiting: 0 });
    expect(pool.stats().counters.aborted).toBe(1);
  });

  test('aborting while waiting rejects with E_ABORTED and leaves the queue', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const controller = new AbortController();
    const before = observe(pool.acquire());
    const aborted = observe(pool.acquire({ signal: controller.signal }));
    const after = observe(pool.acquire());
    await clock.advanceAsync(100);
    controller.abort();
    await clock.flush();
    expect(errorCode(aborted.error)).toBe('E_ABORTED');
    expect(aborted.settlements).toBe(1);
    expect(pool.stats().waiting).toBe(2);
    expect(pool.stats().counters.aborted).toBe(1);
    pool.release(held);
    await clock.flush();
    expect(before.value).toBe(held);
    pool.release(held);
    await clock.flush();
    expect(after.value).toBe(held);
    pool.release(held);
    // Its deadline passing later changes nothing.
    await clock.advanceAsync(60_000);
    expect(pool.stats().counters.timedOut).toBe(0);
  });

  test('aborting after the connection was handed over is ignored', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const controller = new AbortController();
    const entry = await pool.acquire({ signal: controller.signal });
    controller.abort();
    await clock.flush();
    expect(entry.state).toBe('inUse');
    expect(pool.stats().counters.aborted).toBe(0);
    pool.release(entry);
  });

  test('aborting a waiter whose open is in flight leaves the new connection idle for the next caller', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1 } });
    connector.defaultOutcome = 'slow';
    const controller = new AbortController();
    const waiter = observe(pool.acquire({ signal: controller.signal }));
    await clock.flush();
    controller.abort();
    connector.waitingGates()[0]?.release();
    await clock.flush();
    expect(errorCode(waiter.error)).toBe('E_ABORTED');
    expect(pool.stats()).toMatchObject({ total: 1, idle: 1, waiting: 0 });
  });
});
