/**
 * What the pool does by itself as (fake) time passes — housekeeping (lib/pool/housekeeper.ts) and
 * borrow validation: the idle timeout closes down to `min` and no further, the max lifetime is
 * jittered so connections opened together do not all expire together, keepalive pings idle
 * connections and replaces dead ones, borrow validation runs only past its threshold, keeps FIFO
 * and the caller's deadline, and never hands out a connection that failed it, leaks are reported
 * once per lease with where it was acquired, and close() leaves no timer behind.
 */
import { housekeepingPeriodMs } from '../../lib/pool/housekeeper';
import { DEFAULT_POOL_OPTIONS } from '../../lib/options';
import { systemClock } from '../../lib/pool/clock';
import { createFakePool, type FakeConn, type FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, observe } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

const rawOf = (entry: FakeEntry | undefined): FakeConn => entry?.raw as FakeConn;

/** Only the feature under test switched on. */
const QUIET = { idleTimeoutMs: 0, maxLifetimeMs: 0, keepaliveIntervalMs: 0, validationIdleThresholdMs: 0, leakDetectionThresholdMs: 0 };

describe('housekeeping period', () => {
  test('a quarter of the shortest enabled interval, between 50 ms and 30 s', () => {
    const base = { ...DEFAULT_POOL_OPTIONS, ...QUIET };
    expect(housekeepingPeriodMs(base)).toBe(30_000);
    expect(housekeepingPeriodMs({ ...base, idleTimeoutMs: 10_000 })).toBe(2_500);
    expect(housekeepingPeriodMs({ ...base, idleTimeoutMs: 10_000, keepaliveIntervalMs: 1_000 })).toBe(250);
    expect(housekeepingPeriodMs({ ...base, leakDetectionThresholdMs: 100 })).toBe(50);
    expect(housekeepingPeriodMs({ ...base, maxLifetimeMs: 3_600_000 })).toBe(30_000);
  });
});

describe('idle timeout', () => {
  test('closes connections idle past idleTimeoutMs, oldest first, down to min and never below', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 4, idleTimeoutMs: 10_000 } });
    await clock.flush();
    const leases = await Promise.all(Array.from({ length: 4 }, () => pool.acquire()));
    for (const lease of leases) pool.release(lease);
    expect(pool.stats().total).toBe(4);

    // Halfway, one of them is used again: its idle time starts over.
    await clock.advanceAsync(5_000);
    const reused = await pool.acquire();
    pool.release(reused);

    await clock.advanceAsync(4_999);
    expect(pool.stats()).toMatchObject({ total: 4, counters: { idleClosed: 0 } });

    // Past the timeout (plus one housekeeping period): the three unused ones go, the reused one stays.
    await clock.advanceAsync(1 + housekeepingPeriodMs(pool.options));
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, idle: 1, counters: { idleClosed: 3 } });
    expect(connector.openConnections()).toEqual([rawOf(reused)]);

    // However long it then sits idle, min stays open.
    await clock.advanceAsync(600_000);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, counters: { idleClosed: 3 } });
    expect(rawOf(reused).open).toBe(true);
  });

  test('a checked-out connection is never closed by the idle timeout', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 0, max: 2, idleTimeoutMs: 1_000 } });
    const held = await pool.acquire();
    await clock.advanceAsync(60_000);
    expect(rawOf(held).open).toBe(true);
    expect(pool.stats().counters.idleClosed).toBe(0);
    pool.release(held);
    await clock.advanceAsync(1_000 + housekeepingPeriodMs(pool.options));
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 0, counters: { idleClosed: 1 } });
  });
});

describe('max lifetime', () => {
  test('connections opened together expire at different times, all within 2.5% of maxLifetimeMs, and are replaced', async () => {
    const lifetime = 100_000;
    // Lifetime jitter takes one random number per connection: spread them out.
    const randoms = [0.1, 0.5, 0.9];
    let next = 0;
    const { pool, connector, clock } = fakePool({
      // The leak threshold only shortens the housekeeping period (100 ms), to see the expiries apart.
      pool: { ...QUIET, min: 3, max: 4, maxLifetimeMs: lifetime, leakDetectionThresholdMs: 400 },
      random: () => randoms[next++ % randoms.length] as number,
    });
    const closedAt = new Map<number, number>();
    connector.onClose = (conn) => closedAt.set(conn.serial, clock.now());
    await clock.flush();
    const openedAt = clock.now();
    const first = connector.openConnections();
    expect(first).toHaveLength(3);

    await clock.advanceAsync(lifetime * 0.975 - 1);
    expect(closedAt.size).toBe(0);

    const period = housekeepingPeriodMs(pool.options);
    await clock.advanceAsync(lifetime * 0.025 + period + 1);
    const ages = first.map((conn) => (closedAt.get(conn.serial) ?? Number.NaN) - openedAt);
    for (const age of ages) {
      expect(age).toBeGreaterThanOrEqual(lifetime * 0.975);
      expect(age).toBeLessThanOrEqual(lifetime + period);
    }
    expect(new Set(ages).size).toBe(3);
    // Each was replaced: min stays open, with new connections.
    const stats = checkInvariants(pool, connector);
    expect(stats).toMatchObject({ total: 3, counters: { expired: 3 } });
    for (const conn of connector.openConnections()) expect(first).not.toContain(conn);
  });

  test('a checked-out connection past its lifetime is retired when released, not taken from its holder', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 2, maxLifetimeMs: 10_000 } });
    await clock.flush();
    const held = await pool.acquire();
    await clock.advanceAsync(20_000);
    expect(rawOf(held).open).toBe(true);
    expect(held.state).toBe('inUse');
    pool.release(held);
    await clock.flush();
    expect(rawOf(held).open).toBe(false);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, counters: { expired: 1 } });
  });
});

describe('keepalive', () => {
  test('pings connections idle for keepaliveIntervalMs, not the checked-out ones, and replaces one that fails', async () => {
    const interval = 1_000;
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 3, max: 4, keepaliveIntervalMs: interval } });
    const validate = jest.spyOn(connector, 'validate');
    await clock.flush();
    const held = await pool.acquire();
    const idle = connector.openConnections().filter((c) => c !== rawOf(held));

    await clock.advanceAsync(interval - housekeepingPeriodMs(pool.options));
    expect(validate).not.toHaveBeenCalled();
    await clock.advanceAsync(housekeepingPeriodMs(pool.options));
    expect(validate.mock.calls.map(([raw]) => raw).sort((a, b) => a.serial - b.serial)).toEqual(idle);

    // One goes silently dead (a firewall dropped it): the next ping finds out and replaces it.
    const [victim, survivor] = idle as [FakeConn, FakeConn];
    victim.valid = false;
    validate.mockClear();
    await clock.advanceAsync(interval);
    expect(validate.mock.calls.map(([raw]) => raw)).toEqual(expect.arrayContaining([victim, survivor]));
    expect(validate.mock.calls.map(([raw]) => raw)).not.toContain(rawOf(held));
    expect(victim.open).toBe(false);
    expect(survivor.open).toBe(true);
    const stats = checkInvariants(pool, connector);
    expect(stats).toMatchObject({ total: 3, idle: 2, inUse: 1, counters: { validationFailures: 1 } });
    expect(connector.opens).toBe(4);
    pool.release(held);
  });

  test('a connection used recently is not pinged', async () => {
    const interval = 1_000;
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 1, keepaliveIntervalMs: interval } });
    const validate = jest.spyOn(connector, 'validate');
    await clock.flush();
    for (let i = 0; i < 10; i++) {
      await clock.advanceAsync(interval / 2);
      pool.release(await pool.acquire());
    }
    expect(validate).not.toHaveBeenCalled();
  });
});

describe('validation on borrow', () => {
  test('only connections idle longer than validationIdleThresholdMs are checked before they are handed out', async () => {
    const threshold = 5_000;
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 2, validationIdleThresholdMs: threshold } });
    const validate = jest.spyOn(connector, 'validate');
    await clock.flush();
    const conn = connector.openConnections()[0] as FakeConn;

    await clock.advanceAsync(threshold - 1);
    let lease = await pool.acquire();
    expect(rawOf(lease)).toBe(conn);
    expect(validate).not.toHaveBeenCalled();
    pool.release(lease);

    await clock.advanceAsync(threshold + 1);
    const borrowed = observe(pool.acquire());
    await clock.flush();
    expect(borrowed.state).toBe('resolved');
    expect(rawOf(borrowed.value)).toBe(conn);
    expect(validate).toHaveBeenCalledTimes(1);
    lease = borrowed.value as FakeEntry;
    pool.release(lease);

    // Just used: handed out again without a check.
    pool.release(await pool.acquire());
    expect(validate).toHaveBeenCalledTimes(1);
  });

  test('a connection that fails the check is closed and never handed out; the caller gets a fresh one', async () => {
    const threshold = 5_000;
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 2, max: 3, validationIdleThresholdMs: threshold } });
    await clock.flush();
    const [a, b] = connector.openConnections() as [FakeConn, FakeConn];
    a.valid = false;
    b.valid = false;

    await clock.advanceAsync(threshold + 1);
    const callers = [observe(pool.acquire()), observe(pool.acquire())];
    await clock.flush();
    for (const caller of callers) {
      expect(caller.state).toBe('resolved');
      expect([a, b]).not.toContain(rawOf(caller.value));
    }
    expect(a.open).toBe(false);
    expect(b.open).toBe(false);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2, inUse: 2, counters: { validationFailures: 2 } });
    for (const caller of callers) pool.release(caller.value as FakeEntry);
  });

  test('the caller that found a stale connection queues while it is checked, and gets it when it passes', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 2, validationIdleThresholdMs: 5_000 } });
    await clock.flush();
    const validate = jest.spyOn(connector, 'validate');
    await clock.advanceAsync(4_000);
    const fresh = await pool.acquire();
    expect(validate).not.toHaveBeenCalled();
    pool.release(fresh);
    await clock.advanceAsync(5_001);
    const stale = observe(pool.acquire());
    await clock.flush();
    expect(validate).toHaveBeenCalledTimes(1);
    expect(stale.value).toBe(fresh);
    expect(pool.stats().wait.count).toBe(1); // it queued while the check ran
    pool.release(stale.value as FakeEntry);
  });

  test('validation keeps FIFO: a caller queued behind one being validated for is served second', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 2, max: 2, validationIdleThresholdMs: 5_000 } });
    await clock.flush();
    let release: (ok: boolean) => void = () => undefined;
    jest.spyOn(connector, 'validate').mockImplementationOnce(() => new Promise<boolean>((resolve) => (release = resolve)));
    await clock.advanceAsync(6_000);
    const order: string[] = [];
    const first = observe(pool.acquire());
    void first.promise.then(() => order.push('first'));
    const second = observe(pool.acquire());
    void second.promise.then(() => order.push('second'));
    await clock.flush();
    release(true);
    await clock.flush();
    expect(order).toEqual(['first', 'second']);
    expect(checkInvariants(pool, connector)).toMatchObject({ inUse: 2, waiting: 0 });
    pool.release(first.value as FakeEntry);
    pool.release(second.value as FakeEntry);
  });

  test("a validation that outlasts the caller's deadline ends in E_ACQUIRE_TIMEOUT; the connection is not lost", async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 1, max: 1, validationIdleThresholdMs: 5_000 } });
    await clock.flush();
    let release: (ok: boolean) => void = () => undefined;
    jest.spyOn(connector, 'validate').mockImplementationOnce(() => new Promise<boolean>((resolve) => (release = resolve)));
    await clock.advanceAsync(6_000);
    const caller = observe(pool.acquire({ timeoutMs: 1_000 }));
    await clock.advanceAsync(1_000);
    expect((caller.error as { code?: string }).code).toBe('E_ACQUIRE_TIMEOUT');
    release(true);
    await clock.flush();
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, idle: 1 });
  });
});

describe('leak detection', () => {
  test('a lease held past the threshold is reported once, with its id; each new lease counts again', async () => {
    const capture = capturingLogger('warn');
    const threshold = 1_000;
    const { pool, connector, clock } = fakePool({ pool: { ...QUIET, min: 0, max: 2, leakDetectionThresholdMs: threshold }, logger: capture.logger });
    const leaks = () => capture.lines.filter((l) => l.level === 'warn' && l.message.startsWith('Possible connection leak'));

    const lease = await pool.acquire();
    await clock.advanceAsync(threshold - 1);
    expect(pool.stats().counters.leaksDetected).toBe(0);
    // Many housekeeping rounds with the lease still held: one report.
    await clock.advanceAsync(20 * threshold);
    expect(pool.stats().counters.leaksDetected).toBe(1);
    expect(leaks()).toHaveLength(1);
    expect(leaks()[0]?.message).toContain(lease.id);
    expect(leaks()[0]?.meta).toMatchObject({ id: lease.id });

    // Returned quickly: nothing. Held again too long: a new lease, a new report.
    pool.release(lease);
    pool.release(await pool.acquire());
    await clock.advanceAsync(20 * threshold);
    expect(pool.stats().counters.leaksDetected).toBe(1);
    const again = await pool.acquire();
    expect(again).toBe(lease);
    await clock.advanceAsync(20 * threshold);
    expect(pool.stats().counters.leaksDetected).toBe(2);
    expect(leaks()).toHaveLength(2);
    pool.release(again);
    checkInvariants(pool, connector);
  });

  test('a lease held past leakDetectionThresholdMs is reported once, with where it was acquired', async () => {
    const capture = capturingLogger('info');
    const { pool, clock } = fakePool({
      pool: { ...QUIET, min: 0, max: 2, leakDetectionThresholdMs: 2_000 },
      logger: capture.logger,
    });
    const held = await pool.acquire();
    await clock.advanceAsync(1_900);
    expect(pool.stats().counters.leaksDetected).toBe(0);
    await clock.advanceAsync(2_000);
    expect(pool.stats().counters.leaksDetected).toBe(1);
    const report = capture.lines.find((l) => l.message.startsWith('Possible connection leak'));
    expect(report?.level).toBe('warn');
    expect(report?.message).toContain(held.id);
    expect(report?.message).toContain('housekeeping.spec.ts');
    await clock.advanceAsync(10_000);
    expect(pool.stats().counters.leaksDetected).toBe(1);
    pool.release(held);
    expect(capture.messages().some((m) => m.includes('reported as a possible leak, was returned'))).toBe(true);
  });
});

describe('timers', () => {
  test('close() stops housekeeping: no timer of the pool is left, and nothing runs afterwards', async () => {
    const { pool, connector, clock } = createFakePool({
      pool: { min: 2, max: 3, idleTimeoutMs: 5_000, maxLifetimeMs: 60_000, keepaliveIntervalMs: 1_000, leakDetectionThresholdMs: 2_000, validationIdleThresholdMs: 500 },
    });
    const validate = jest.spyOn(connector, 'validate');
    await clock.flush();
    expect(clock.pendingTimers()).toBeGreaterThan(0);
    const held = await pool.acquire();
    await clock.advanceAsync(3_000);
    pool.release(held);
    await clock.advanceAsync(3_000);

    const closed = observe(pool.close());
    await clock.flush();
    expect(closed.state).toBe('resolved');
    expect(clock.pendingTimers()).toBe(0);
    expect(connector.openCount).toBe(0);

    const attempts = connector.openAttempts;
    const validations = validate.mock.calls.length;
    await clock.advanceAsync(3_600_000);
    expect(clock.pendingTimers()).toBe(0);
    expect(connector.openAttempts).toBe(attempts);
    expect(validate.mock.calls.length).toBe(validations);
  });

  test('the real clock never keeps the process alive for the pool', () => {
    const handle = systemClock.setTimer(() => undefined, 60_000) as NodeJS.Timeout;
    try {
      expect(handle.hasRef()).toBe(false);
    } finally {
      systemClock.clearTimer(handle);
    }
  });
});
