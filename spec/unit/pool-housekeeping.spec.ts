/**
 * What the pool does by itself as (fake) time passes: validation before handing out a connection
 * that sat idle for long (FIFO and the caller's deadline still hold), keepalive pings of quiet idle
 * connections, and leak reports for leases held too long.
 */
import type { FakeConn, FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, observe } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

const rawOf = (entry: FakeEntry | undefined): FakeConn => entry?.raw as FakeConn;
const quiet = { idleTimeoutMs: 0, maxLifetimeMs: 0, keepaliveIntervalMs: 0 };

describe('validation before reuse', () => {
  test('a connection idle longer than validationIdleThresholdMs is validated before it is handed out', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...quiet, min: 1, max: 2, validationIdleThresholdMs: 5_000 } });
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

  test('a stale connection that fails validation is closed and the caller gets a new one', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...quiet, min: 1, max: 2, validationIdleThresholdMs: 5_000 } });
    await clock.flush();
    const [old] = connector.openConnections();
    (old as FakeConn).valid = false;
    await clock.advanceAsync(6_000);
    const caller = observe(pool.acquire());
    await clock.flush();
    expect(caller.state).toBe('resolved');
    expect(rawOf(caller.value)).not.toBe(old);
    expect(old?.open).toBe(false);
    expect(pool.stats().counters.validationFailures).toBe(1);
    pool.release(caller.value as FakeEntry);
  });

  test('validation keeps FIFO: a caller queued behind one being validated for is served second', async () => {
    const { pool, connector, clock } = fakePool({ pool: { ...quiet, min: 2, max: 2, validationIdleThresholdMs: 5_000 } });
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
    const { pool, connector, clock } = fakePool({ pool: { ...quiet, min: 1, max: 1, validationIdleThresholdMs: 5_000 } });
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

describe('keepalive', () => {
  test('idle connections quiet for keepaliveIntervalMs are pinged; a dead one is closed and replaced', async () => {
    const { pool, connector, clock } = fakePool({
      pool: { ...quiet, min: 2, max: 3, keepaliveIntervalMs: 4_000, validationIdleThresholdMs: 0 },
    });
    await clock.flush();
    const validate = jest.spyOn(connector, 'validate');
    const [a] = connector.openConnections();
    (a as FakeConn).valid = false;
    await clock.advanceAsync(3_000);
    expect(validate).not.toHaveBeenCalled();
    await clock.advanceAsync(2_000);
    expect(validate).toHaveBeenCalledTimes(2);
    expect(a?.open).toBe(false);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2, idle: 2 });
  });
});

describe('leak detection', () => {
  test('a lease held past leakDetectionThresholdMs is reported once, with where it was acquired', async () => {
    const capture = capturingLogger('info');
    const { pool, clock } = fakePool({
      pool: { ...quiet, min: 0, max: 2, leakDetectionThresholdMs: 2_000 },
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
    expect(report?.message).toContain('pool-housekeeping.spec.ts');
    await clock.advanceAsync(10_000);
    expect(pool.stats().counters.leaksDetected).toBe(1);
    pool.release(held);
    expect(capture.messages().some((m) => m.includes('reported as a possible leak, was returned'))).toBe(true);
  });
});
