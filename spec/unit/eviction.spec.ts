/**
 * Soft eviction (lib/pool/eviction.ts): resetPool, expireConnections and renewConnections all
 * close idle connections now, retire checked-out ones on release, and refill — with new ids whose
 * N keeps counting up.
 */
import { expireConnections, renewConnections, resetPool } from '../../lib/pool/eviction';
import type { FakeConn, FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, connectionNumber, observe } from '../helpers/invariants';

const fakePool = checkedFakePools();

const ids = (setup: ReturnType<typeof fakePool>): string[] => setup.pool.stats().connections.map((c) => c.id);
const maxN = (list: string[]): number => Math.max(0, ...list.map(connectionNumber));

/** Stops the pool's own housekeeping timer, so that a test alone decides when a sweep runs. */
const stopHousekeeping = (setup: ReturnType<typeof fakePool>): void => setup.pool['housekeeper'].stop();

describe('resetPool', () => {
  test('closes idle connections now, retires checked-out ones on release, refills to min with new ids', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const held = await pool.acquire();
    const before = ids(setup);
    const idleRaw = connector.openConnections().find((c) => c !== held.raw) as FakeConn;

    const reset = observe(resetPool(pool));
    await clock.flush();
    expect(reset.value).toEqual({ count: 2, error: undefined });
    expect(idleRaw.open).toBe(false);
    expect(held.state).toBe('inUse');
    expect(held.retire).toBe(true);
    // Refilled to min: the retired one still counts as open until it comes back.
    const afterReset = checkInvariants(pool, connector);
    expect(afterReset).toMatchObject({ total: 2, inUse: 1, idle: 1 });
    const fresh = afterReset.connections.find((c) => c.id !== held.id);
    expect(connectionNumber(fresh?.id ?? '')).toBeGreaterThan(maxN(before));

    pool.release(held);
    await clock.flush();
    expect((held.raw as FakeConn).open).toBe(false);
    const after = ids(setup);
    expect(after).toHaveLength(2);
    expect(after.some((id) => before.includes(id))).toBe(false);
    expect(Math.min(...after.map(connectionNumber))).toBeGreaterThan(maxN(before));
  });

  test('callers arriving during a reset are served from new connections, not rejected', async () => {
    const setup = fakePool({ pool: { min: 2, max: 2 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const old = new Set(connector.openConnections());
    connector.defaultOutcome = 'slow';
    const reset = observe(resetPool(pool));
    await clock.flush(); // the operation runs under the pool's admin mutex, after the current tick
    const callers = [observe(pool.acquire()), observe(pool.acquire()), observe(pool.acquire())];
    await clock.flush();
    expect(callers.map((c) => c.state)).toEqual(['pending', 'pending', 'pending']);
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect(reset.state).toBe('resolved');
    expect(callers.slice(0, 2).map((c) => c.state)).toEqual(['resolved', 'resolved']);
    for (const c of callers.slice(0, 2)) expect(old.has(c.value?.raw as FakeConn)).toBe(false);
    pool.release(callers[0]?.value as FakeEntry);
    await clock.flush();
    expect(callers[2]?.state).toBe('resolved');
    pool.release(callers[1]?.value as FakeEntry);
    pool.release(callers[2]?.value as FakeEntry);
  });

  test('an open started before the reset is closed when it lands instead of being handed out', async () => {
    const setup = fakePool({ pool: { min: 0, max: 3 } });
    const { pool, connector, clock } = setup;
    connector.defaultOutcome = 'slow';
    const caller = observe(pool.acquire());
    await clock.flush();
    const [oldGate] = connector.waitingGates();
    const reset = observe(resetPool(pool));
    await clock.flush();
    oldGate?.release();
    await clock.flush();
    expect(oldGate?.conn?.open).toBe(false);
    expect(caller.state).toBe('pending');
    // The pump opens a replacement for the caller.
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect(caller.state).toBe('resolved');
    expect(caller.value?.raw).not.toBe(oldGate?.conn);
    expect(reset.state).toBe('resolved');
    pool.release(caller.value as FakeEntry);
  });

  test('N keeps counting up across resets and is never reused', async () => {
    const setup = fakePool({ pool: { min: 2, max: 3 } });
    const { pool, clock } = setup;
    await clock.flush();
    const seen = new Set<number>(ids(setup).map(connectionNumber));
    let last = maxN(ids(setup));
    for (let i = 0; i < 3; i++) {
      await resetPool(pool);
      await clock.flush();
      const now = ids(setup).map(connectionNumber);
      expect(now).toHaveLength(2);
      for (const n of now) {
        expect(seen.has(n)).toBe(false);
        expect(n).toBeGreaterThan(last);
        seen.add(n);
      }
      last = Math.max(...now);
    }
  });
});

describe('expireConnections', () => {
  test('idle connections past maxLifetimeMs are replaced; checked-out ones retire on release', async () => {
    const lifetime = 60_000;
    const setup = fakePool({ pool: { min: 1, max: 3, maxLifetimeMs: lifetime, idleTimeoutMs: 0, keepaliveIntervalMs: 0 } });
    stopHousekeeping(setup);
    const { pool, connector, clock } = setup;
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    pool.release(b);
    pool.release(c);
    // Jitter takes up to 2.5% off each lifetime; random() is 0.5 here, so 1.25% (750 ms).
    await clock.advanceAsync(lifetime - 751);
    expect(await expireConnections(pool, clock)).toBe(0);
    await clock.advanceAsync(1);
    const before = ids(setup);
    expect(await expireConnections(pool, clock)).toBe(3);
    await clock.flush();
    expect(a.state).toBe('inUse');
    expect(a.retire).toBe(true);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, inUse: 1, idle: 0 });
    expect(pool.stats().counters.expired).toBe(2);
    pool.release(a);
    await clock.flush();
    expect(pool.stats().counters.expired).toBe(3);
    // Refilled to min with a new connection.
    const after = ids(setup);
    expect(after).toHaveLength(1);
    expect(connectionNumber(after[0] as string)).toBeGreaterThan(maxN(before));
  });

  test('idle connections unused for idleTimeoutMs are closed down to min, least recently used first', async () => {
    const setup = fakePool({ pool: { min: 2, max: 5, idleTimeoutMs: 10_000, maxLifetimeMs: 0, keepaliveIntervalMs: 0 } });
    stopHousekeeping(setup);
    const { pool, connector, clock } = setup;
    await clock.flush();
    const entries = [await pool.acquire(), await pool.acquire(), await pool.acquire(), await pool.acquire()];
    for (const e of entries) {
      pool.release(e);
      await clock.advanceAsync(1_000); // released one after another: entries[0] is the least recently used
    }
    // entries[0] idle 4 s ... entries[3] idle 1 s. Nothing has reached the timeout yet.
    expect(await expireConnections(pool, clock)).toBe(0);
    await clock.advanceAsync(7_000); // [0] 11 s, [1] 10 s, [2] 9 s, [3] 8 s
    const closed = await expireConnections(pool, clock);
    await clock.flush();
    expect(closed).toBe(2);
    expect(entries.map((e) => e.state)).toEqual(['closed', 'closed', 'idle', 'idle']);
    expect(pool.stats().counters.idleClosed).toBe(2);
    // Never below min, however long they stay idle.
    await clock.advanceAsync(60_000);
    expect(await expireConnections(pool, clock)).toBe(0);
    expect(checkInvariants(pool, connector).total).toBe(2);
  });

  test('the idle timeout counts checked-out connections toward min', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4, idleTimeoutMs: 1_000, maxLifetimeMs: 0, keepaliveIntervalMs: 0 } });
    stopHousekeeping(setup);
    const { pool, clock } = setup;
    const held = await pool.acquire();
    const x = await pool.acquire();
    const y = await pool.acquire();
    pool.release(x);
    pool.release(y);
    await clock.advanceAsync(5_000);
    expect(await expireConnections(pool, clock)).toBe(1);
    await clock.flush();
    expect(pool.stats()).toMatchObject({ total: 2, inUse: 1, idle: 1 });
    pool.release(held);
  });

  test('housekeeping runs the expiry sweep by itself as fake time passes', async () => {
    const setup = fakePool({ pool: { min: 1, max: 3, idleTimeoutMs: 4_000, maxLifetimeMs: 0, keepaliveIntervalMs: 0 } });
    const { pool, clock } = setup;
    const entries = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    for (const e of entries) pool.release(e);
    await clock.advanceAsync(6_000);
    expect(pool.stats()).toMatchObject({ total: 1, idle: 1 });
    expect(pool.stats().counters.idleClosed).toBe(2);
  });
});

describe('renewConnections', () => {
  test('replaces every idle connection, opening the new one before closing the old when there is room', async () => {
    const setup = fakePool({ pool: { min: 3, max: 6 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const before = ids(setup);
    const totalsAtClose: number[] = [];
    connector.onClose = () => totalsAtClose.push(pool.stats().total + pool.stats().pending);
    const renewed = await renewConnections(pool);
    await clock.flush();
    expect(renewed).toEqual({ count: 3, error: undefined });
    expect(connector.closes).toBe(3);
    // Capacity never dropped below what it was.
    expect(Math.min(...totalsAtClose)).toBeGreaterThanOrEqual(3);
    const after = ids(setup);
    expect(after).toHaveLength(3);
    expect(Math.min(...after.map(connectionNumber))).toBeGreaterThan(maxN(before));
    expect(pool.stats().counters.renewed).toBe(3);
  });

  test('checked-out connections are replaced when released', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4 } });
    const { pool, clock } = setup;
    await clock.flush();
    const held = await pool.acquire();
    const before = ids(setup);
    expect((await renewConnections(pool)).count).toBe(2);
    await clock.flush();
    expect(held.state).toBe('inUse');
    pool.release(held);
    await clock.flush();
    expect(held.state).toBe('closed');
    const after = ids(setup);
    expect(after).toHaveLength(2);
    expect(after.some((id) => before.includes(id))).toBe(false);
  });

  test('at max there is no room to open first: each is closed, then replaced', async () => {
    const setup = fakePool({ pool: { min: 2, max: 2 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const before = ids(setup);
    const renewing = observe(renewConnections(pool));
    await clock.flush();
    expect(renewing.value).toEqual({ count: 2, error: undefined });
    expect(connector.peakOccupied).toBeLessThanOrEqual(2);
    const after = ids(setup);
    expect(after).toHaveLength(2);
    expect(after.some((id) => before.includes(id))).toBe(false);
  });

  test('a connection handed out while renewal is under way is replaced on release', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    connector.defaultOutcome = 'slow';
    const renewing = observe(renewConnections(pool));
    await clock.flush();
    // Both old connections are still idle (marked) while their replacements are being opened.
    const caller = await pool.acquire();
    expect(caller.retire).toBe(true);
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect(renewing.state).toBe('resolved');
    pool.release(caller);
    await clock.flush();
    expect(caller.state).toBe('closed');
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect(checkInvariants(pool, connector).connections.every((c) => connectionNumber(c.id) > caller.seq)).toBe(true);
  });

  test('when the replacement cannot be opened, the old connection keeps serving', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const before = ids(setup);
    connector.defaultOutcome = 'fail-permanent'; // e.g. a rotated password that is wrong
    await renewConnections(pool);
    await clock.flush();
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2, idle: 2 });
    expect(ids(setup)).toEqual(before);
    const caller = await pool.acquire();
    expect(before).toContain(caller.id);
    pool.release(caller);
  });
});

/** Opens every gate as it appears until `promise` settles (at most `rounds` rounds). */
async function openGatesUntilSettled(setup: ReturnType<typeof fakePool>, promise: { state: string }, rounds = 50): Promise<void> {
  for (let i = 0; i < rounds && promise.state === 'pending'; i++) {
    for (const gate of setup.connector.waitingGates()) gate.release();
    await setup.clock.flush();
  }
}

describe('admin operations resolve once their replacements are open', () => {
  test('renewal at min = max = 5 resolves only when all 5 replacements are open', async () => {
    const setup = fakePool({ pool: { min: 5, max: 5 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const before = ids(setup);
    connector.defaultOutcome = 'slow';
    // The snapshot is taken in the same turn the promise resolves.
    const renewing = observe(renewConnections(pool).then((result) => ({ result, stats: pool.stats() })));
    await clock.flush();
    expect(renewing.state).toBe('pending');
    await openGatesUntilSettled(setup, renewing);
    expect(renewing.value?.result).toEqual({ count: 5, error: undefined });
    expect(renewing.value?.stats).toMatchObject({ total: 5, idle: 5, pending: 0 });
    expect(renewing.value?.stats.connections.some((c) => before.includes(c.id))).toBe(false);
    expect(connector.peakOccupied).toBeLessThanOrEqual(5);
  });

  test('reset at min = max = 5 resolves only when refilled to 5', async () => {
    const setup = fakePool({ pool: { min: 5, max: 5 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    connector.defaultOutcome = 'slow';
    const resetting = observe(resetPool(pool).then((result) => ({ result, stats: pool.stats() })));
    await clock.flush();
    expect(resetting.state).toBe('pending');
    await openGatesUntilSettled(setup, resetting);
    expect(resetting.value?.result).toEqual({ count: 5, error: undefined });
    expect(resetting.value?.stats).toMatchObject({ total: 5, pending: 0 });
  });

  test('a reset whose refill the server refuses ends with E_CONNECT at pool.acquireTimeoutMs instead of hanging', async () => {
    const setup = fakePool({ pool: { min: 2, max: 2, acquireTimeoutMs: 10_000 }, retry: { attempts: 2, initialDelayMs: 100, maxDelayMs: 1_000 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    connector.defaultOutcome = 'fail';
    const resetting = observe(resetPool(pool));
    await clock.advanceAsync(9_999);
    expect(resetting.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(resetting.value?.count).toBe(2);
    expect(resetting.value?.error?.code).toBe('E_CONNECT');
    expect(resetting.value?.error?.message).toContain('0 of pool.min=2 connection(s) open');
    expect(resetting.value?.error?.cause).toBe(pool.lastConnectError);
    // The pool keeps trying: once the server answers again it refills.
    connector.defaultOutcome = 'ok';
    await clock.advanceAsync(2_000);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2 });
  });

  test('a renewal at max whose replacement is refused stops there: E_CONNECT, the others keep serving', async () => {
    const setup = fakePool({ pool: { min: 0, max: 3 }, retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 50 } });
    const { pool, connector, clock } = setup;
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    for (const lease of leases) pool.release(lease);
    const before = ids(setup);
    connector.defaultOutcome = 'fail-permanent';
    const renewing = observe(renewConnections(pool));
    await clock.advanceAsync(1_000);
    expect(renewing.value?.error?.code).toBe('E_CONNECT');
    expect(renewing.value?.error?.message).toContain('1 connection(s) closed at pool.max could not be replaced');
    // One was closed to make room; the other two were never touched and lost their mark.
    expect(renewing.value?.count).toBe(1);
    const after = checkInvariants(pool, connector);
    expect(after).toMatchObject({ total: 2, idle: 2, counters: { renewed: 1 } });
    for (const id of ids(setup)) expect(before).toContain(id);
    for (const entry of pool.openEntries()) expect(entry.retire).toBe(false);
  });
});

describe('admin operations are serialised by the admin mutex', () => {
  test('a reset asked for during a renewal starts only after the renewal is done', async () => {
    const setup = fakePool({ pool: { min: 2, max: 4 } });
    const { pool, connector, clock } = setup;
    await clock.flush();
    const original = ids(setup);
    connector.defaultOutcome = 'slow';
    const order: string[] = [];
    const renewing = observe(renewConnections(pool).then((r) => (order.push('renew'), r)));
    const resetting = observe(resetPool(pool).then((r) => (order.push('reset'), r)));
    await clock.flush();
    // Renewal is waiting for its first replacement; the reset has not evicted anything yet.
    expect(pool.stats().counters.destroyed).toBe(0);
    expect(pool.openEntries().every((e) => e.retireReason === 'renewed')).toBe(true);
    await openGatesUntilSettled(setup, renewing);
    const renewedIds = ids(setup);
    expect(renewedIds.some((id) => original.includes(id))).toBe(false);
    await openGatesUntilSettled(setup, resetting);
    expect(order).toEqual(['renew', 'reset']);
    expect(renewing.value).toEqual({ count: 2, error: undefined });
    // The reset evicted exactly the renewal's replacements: each connection was replaced once.
    expect(resetting.value).toEqual({ count: 2, error: undefined });
    expect(pool.stats().counters).toMatchObject({ renewed: 2, destroyed: 4 });
    expect(ids(setup).some((id) => original.includes(id) || renewedIds.includes(id))).toBe(false);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2, pending: 0 });
  });

  test('a checked-out connection marked by one operation is closed once, under the first reason', async () => {
    const setup = fakePool({ pool: { min: 1, max: 3, maxLifetimeMs: 60_000 } });
    const { pool, clock } = setup;
    stopHousekeeping(setup);
    const held = await pool.acquire();
    await clock.advanceAsync(61_000);
    expect(await expireConnections(pool, clock)).toBe(1);
    expect((await resetPool(pool)).count).toBe(0);
    expect((await renewConnections(pool)).count).toBe(0);
    pool.release(held);
    await clock.flush();
    expect(pool.stats().counters).toMatchObject({ expired: 1, renewed: 0, destroyed: 1 });
  });
});
