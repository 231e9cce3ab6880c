/**
 * Warm-up (`warmUp(n)`) and `pool.minIdle` on the fake connector and clock: how many connections
 * each opens, the cap at `max`, a warm-up that cannot finish, and idle connections kept ready
 * beyond those in use without the idle timeout closing them.
 */
import { warmUp } from '../../lib/resilience/warm-up';
import { checkedFakePools, errorCode, observe } from '../helpers/invariants';
import { capturingLogger, silentLogger } from '../helpers/silent-logger';
import type { FakeEntry } from '../helpers/fake-connector';

const fakePool = checkedFakePools();

describe('warmUp', () => {
  test('opens connections in parallel until n are open, and logs it', async () => {
    const capture = capturingLogger('info');
    const { pool, connector, clock } = fakePool({ pool: { min: 1, max: 30 } });
    await clock.flush();
    const done = observe(warmUp(pool, 20, undefined, clock, capture.logger));
    await clock.flush();
    expect(done.value).toBe(20);
    expect(pool.stats()).toMatchObject({ total: 20, idle: 20, pending: 0 });
    expect(connector.openAttempts).toBe(20);
    expect(capture.messages().some((m) => m.startsWith('Warm-up: 20 connection(s) open'))).toBe(true);
  });

  test('is capped at max, and opens nothing when enough are open', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 4 } });
    const capped = observe(warmUp(pool, 10, undefined, clock, silentLogger()));
    await clock.flush();
    expect(capped.value).toBe(4);
    const again = observe(warmUp(pool, 3, undefined, clock, silentLogger()));
    await clock.flush();
    expect(again.value).toBe(4);
    expect(connector.openAttempts).toBe(4);
  });

  test('the extra connections age out by idleTimeoutMs, down to min', async () => {
    const { pool, clock } = fakePool({ pool: { min: 1, max: 10, idleTimeoutMs: 10_000 } });
    const done = observe(warmUp(pool, 6, undefined, clock, silentLogger()));
    await clock.flush();
    expect(done.value).toBe(6);
    await clock.advanceAsync(60_000);
    expect(pool.stats().total).toBe(1);
  });

  test('rejects E_CONNECT naming how far it got when opens fail, without waiting for the deadline', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 5 }, retry: { attempts: 1 }, script: ['ok', 'ok', 'fail'] });
    const done = observe(warmUp(pool, 3, { timeoutMs: 60_000 }, clock, silentLogger()));
    await clock.advanceAsync(10);
    expect(errorCode(done.error)).toBe('E_CONNECT');
    expect((done.error as Error).message).toContain('reached 2 of 3');
  });

  test.each([[-1], [1.5], ['3']])('refuses n = %j with E_INVALID_CONFIG', async (n) => {
    const { pool, clock } = fakePool();
    await expect(warmUp(pool, n, undefined, clock, silentLogger())).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
  });
});

describe('pool.minIdle', () => {
  test('keeps minIdle idle beyond those in use, up to max', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 4, minIdle: 2 } });
    await clock.flush();
    expect(pool.stats()).toMatchObject({ total: 2, idle: 2 });
    const a = observe(pool.acquire());
    await clock.flush();
    expect(pool.stats()).toMatchObject({ total: 3, idle: 2, inUse: 1 });
    const b = observe(pool.acquire());
    const c = observe(pool.acquire());
    await clock.flush();
    // Three in use, max 4: only one can be kept idle.
    expect(pool.stats()).toMatchObject({ total: 4, idle: 1, inUse: 3 });
    for (const lease of [a, b, c]) pool.release(lease.value as FakeEntry);
  });

  test('the idle timeout leaves minIdle idle connections open', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 6, minIdle: 2, idleTimeoutMs: 10_000 } });
    const done = observe(warmUp(pool, 5, undefined, clock, silentLogger()));
    await clock.flush();
    expect(done.value).toBe(5);
    await clock.advanceAsync(60_000);
    expect(pool.stats()).toMatchObject({ total: 2, idle: 2 });
  });
});
