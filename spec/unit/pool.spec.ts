/**
 * The generic pool on a fake connector and a fake clock: sizing, growth, parallel opens, FIFO
 * service, release errors, the waiting-queue limit, stats and ids. Timeouts, aborts, close,
 * connection health, connect retries and soft eviction have spec files of their own.
 */
import { ConnectionManagerError } from '../../lib/errors';
import { PoolEntry } from '../../lib/pool/entry';
import type { FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, connectionNumber, errorCode, observe } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

describe('sizing', () => {
  test('opens min connections at start and ready() resolves once they are open', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 2, max: 5 } });
    const ready = observe(pool.ready());
    expect(pool.stats().pending).toBe(2);
    await clock.flush();
    expect(ready.state).toBe('resolved');
    const s = checkInvariants(pool, connector);
    expect(s).toMatchObject({ min: 2, max: 5, total: 2, idle: 2, inUse: 0, pending: 0, waiting: 0 });
    expect(connector.openAttempts).toBe(2);
  });

  test('min 0 opens nothing until asked, and ready() resolves at once', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 } });
    await expect(pool.ready()).resolves.toBeUndefined();
    await clock.flush();
    expect(connector.openAttempts).toBe(0);
    expect(pool.stats().total).toBe(0);
  });

  test('an idle connection is handed out without opening another', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 1, max: 3 } });
    await clock.flush();
    const entry = await pool.acquire();
    expect(entry.state).toBe('inUse');
    expect(connector.openAttempts).toBe(1);
    expect(pool.stats()).toMatchObject({ total: 1, idle: 0, inUse: 1 });
    expect(pool.stats().counters.acquired).toBe(1);
    expect(pool.stats().wait.count).toBe(0);
    pool.release(entry);
    expect(pool.stats()).toMatchObject({ total: 1, idle: 1, inUse: 0 });
    expect(pool.stats().counters.released).toBe(1);
  });
});

describe('growth on demand', () => {
  test('grows up to max and counts opens in flight toward max (5 waiters, max 3: 3 opens, never 4)', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 3 } });
    connector.defaultOutcome = 'slow';
    const waiters = Array.from({ length: 5 }, () => observe(pool.acquire()));
    await clock.flush();
    expect(connector.openAttempts).toBe(3);
    expect(connector.inFlight).toBe(3);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 0, pending: 3, waiting: 5 });

    connector.waitingGates()[0]?.release();
    await clock.flush();
    expect(connector.openAttempts).toBe(3);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, inUse: 1, pending: 2, waiting: 4 });

    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect(waiters.map((w) => w.state)).toEqual(['resolved', 'resolved', 'resolved', 'pending', 'pending']);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 3, inUse: 3, pending: 0, waiting: 2 });
    expect(connector.openAttempts).toBe(3);

    // Releases serve the two still waiting; still no fourth open.
    pool.release(waiters[0]?.value as FakeEntry);
    pool.release(waiters[1]?.value as FakeEntry);
    await clock.flush();
    expect(waiters.map((w) => w.state)).toEqual(['resolved', 'resolved', 'resolved', 'resolved', 'resolved']);
    expect(connector.openAttempts).toBe(3);
    expect(connector.peakOccupied).toBe(3);
    for (const w of waiters.slice(2)) pool.release(w.value as FakeEntry);
  });

  test('opens needed together happen in parallel, not one after the other', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 4 } });
    connector.defaultOutcome = { slow: 100 };
    const start = clock.now();
    const waiters = Array.from({ length: 4 }, () => observe(pool.acquire()));
    await clock.flush();
    expect(connector.inFlight).toBe(4);
    await clock.advanceAsync(100);
    expect(waiters.every((w) => w.state === 'resolved')).toBe(true);
    expect(clock.now() - start).toBe(100);
    for (const w of waiters) pool.release(w.value as FakeEntry);
  });

  test('opens only what the waiters need beyond the opens already in flight', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 10 } });
    connector.defaultOutcome = 'slow';
    const first = observe(pool.acquire());
    await clock.flush();
    expect(connector.openAttempts).toBe(1);
    const second = observe(pool.acquire());
    await clock.flush();
    expect(connector.openAttempts).toBe(2);
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect([first.state, second.state]).toEqual(['resolved', 'resolved']);
    pool.release(first.value as FakeEntry);
    pool.release(second.value as FakeEntry);
    // Both back idle: the next two acquires need no open at all.
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(connector.openAttempts).toBe(2);
    pool.release(a);
    pool.release(b);
  });

  test('"Pool at maximum limit" says how many slots are open and how many are still opening', async () => {
    const capture = capturingLogger('info');
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 4 }, logger: capture.logger });
    const held = await Promise.all([pool.acquire(), pool.acquire()]);
    connector.defaultOutcome = 'slow';
    // Two more callers: two opens start (4/4 occupied); they cover those two, so no line yet.
    const covered = [observe(pool.acquire()), observe(pool.acquire())];
    await clock.flush();
    const saturated = () => capture.messages().filter((m) => m.startsWith('Pool at maximum limit'));
    expect(saturated()).toEqual([]);
    // A fifth caller nothing on its way will serve.
    const uncovered = observe(pool.acquire());
    await clock.flush();
    expect(saturated()).toEqual(['Pool at maximum limit (2 open + 2 opening = 4/4), waiting for available connection…']);
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    for (const c of covered) pool.release(c.value as FakeEntry);
    await clock.flush();
    pool.release(uncovered.value as FakeEntry);
    for (const h of held) pool.release(h);
  });

  test('logs "Pool at maximum limit" once per episode of saturation', async () => {
    const capture = capturingLogger('info');
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 }, logger: capture.logger });
    const held = await pool.acquire();
    const w1 = observe(pool.acquire());
    const w2 = observe(pool.acquire());
    await clock.flush();
    const saturated = () => capture.messages().filter((m) => m.startsWith('Pool at maximum limit'));
    expect(saturated()).toEqual(['Pool at maximum limit (1 open = 1/1), waiting for available connection…']);
    pool.release(held);
    await clock.flush();
    pool.release(w1.value as FakeEntry);
    await clock.flush();
    expect(w2.state).toBe('resolved');
    const w3 = observe(pool.acquire());
    await clock.flush();
    expect(saturated()).toHaveLength(2);
    pool.release(w2.value as FakeEntry);
    await clock.flush();
    pool.release(w3.value as FakeEntry);
  });
});

describe('first come, first served', () => {
  test('waiters are served in arrival order even when connections come back in another order', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 3 } });
    const held = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    const order: number[] = [];
    const waiters = [0, 1, 2, 3, 4].map((i) => {
      const w = observe(pool.acquire());
      void w.promise.then(() => order.push(i));
      return w;
    });
    await clock.flush();
    pool.release(held[2] as FakeEntry);
    pool.release(held[0] as FakeEntry);
    pool.release(held[1] as FakeEntry);
    await clock.flush();
    expect(order).toEqual([0, 1, 2]);
    expect(waiters[0]?.value).toBe(held[2]);
    expect(waiters[1]?.value).toBe(held[0]);
    expect(waiters[2]?.value).toBe(held[1]);
    pool.release(waiters[1]?.value as FakeEntry);
    pool.release(waiters[0]?.value as FakeEntry);
    await clock.flush();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(waiters[3]?.value).toBe(held[0]);
    expect(waiters[4]?.value).toBe(held[2]);
    for (const w of waiters.slice(2)) pool.release(w.value as FakeEntry);
  });

  test('opens finishing out of order still serve the oldest waiter first', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 3 } });
    connector.defaultOutcome = 'slow';
    const order: number[] = [];
    const waiters = [0, 1, 2].map((i) => {
      const w = observe(pool.acquire());
      void w.promise.then(() => order.push(i));
      return w;
    });
    await clock.flush();
    const gates = connector.waitingGates();
    gates[2]?.release();
    await clock.flush();
    gates[0]?.release();
    await clock.flush();
    gates[1]?.release();
    await clock.flush();
    expect(order).toEqual([0, 1, 2]);
    expect(waiters[0]?.value?.raw).toBe(gates[2]?.conn);
    expect(waiters[1]?.value?.raw).toBe(gates[0]?.conn);
    for (const w of waiters) pool.release(w.value as FakeEntry);
  });

  test('a newcomer does not overtake a waiter queued before it', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const early = observe(pool.acquire());
    pool.release(held);
    const late = observe(pool.acquire());
    await clock.flush();
    expect(early.value).toBe(held);
    expect(late.state).toBe('pending');
    pool.release(held);
    await clock.flush();
    expect(late.value).toBe(held);
    pool.release(held);
  });

  test('wait statistics count the acquires that had to wait', async () => {
    const { pool, clock } = fakePool({ pool: { min: 1, max: 1 } });
    await clock.flush();
    const held = await pool.acquire();
    expect(pool.stats().wait.count).toBe(0);
    const waiter = observe(pool.acquire());
    await clock.advanceAsync(250);
    pool.release(held);
    await clock.flush();
    expect(waiter.state).toBe('resolved');
    expect(pool.stats().wait).toEqual({ count: 1, totalMs: 250, maxMs: 250 });
    pool.release(waiter.value as FakeEntry);
  });
});

describe('release errors', () => {
  test('releasing twice throws E_NOT_CHECKED_OUT and changes nothing', async () => {
    const { pool } = fakePool({ pool: { min: 0, max: 2 } });
    const entry = await pool.acquire();
    pool.release(entry);
    const before = pool.stats();
    expect(() => pool.release(entry)).toThrow(ConnectionManagerError);
    try {
      pool.release(entry);
    } catch (error) {
      expect(errorCode(error)).toBe('E_NOT_CHECKED_OUT');
      expect((error as Error).message).toContain(entry.id);
    }
    expect(pool.stats()).toMatchObject({ total: before.total, idle: before.idle, inUse: 0 });
    expect(pool.stats().counters.released).toBe(1);
  });

  test("releasing another pool's connection throws E_NOT_CHECKED_OUT and leaves both pools alone", async () => {
    const a = fakePool({ pool: { min: 0, max: 2 }, name: 'a' });
    const b = fakePool({ pool: { min: 1, max: 2 }, name: 'b' });
    await b.clock.flush();
    const fromA = await a.pool.acquire();
    let thrown: unknown;
    try {
      b.pool.release(fromA);
    } catch (error) {
      thrown = error;
    }
    expect(errorCode(thrown)).toBe('E_NOT_CHECKED_OUT');
    expect(fromA.state).toBe('inUse');
    expect(a.pool.stats()).toMatchObject({ inUse: 1 });
    expect(b.pool.stats()).toMatchObject({ total: 1, idle: 1, inUse: 0 });
    a.pool.release(fromA);
  });

  test('releasing a record that was never opened throws E_NOT_CHECKED_OUT', () => {
    const { pool } = fakePool();
    const stranger = new PoolEntry<never>(pool);
    expect(() => pool.release(stranger as unknown as FakeEntry)).toThrow(
      expect.objectContaining({ code: 'E_NOT_CHECKED_OUT' }) as Error,
    );
  });
});

describe('maxWaiting', () => {
  test('more waiters than maxWaiting fail fast with E_QUEUE_FULL', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1, maxWaiting: 2 } });
    const held = await pool.acquire();
    const w1 = observe(pool.acquire());
    const w2 = observe(pool.acquire());
    const w3 = observe(pool.acquire());
    await clock.flush();
    expect(w3.state).toBe('rejected');
    expect(errorCode(w3.error)).toBe('E_QUEUE_FULL');
    expect((w3.error as Error).message).toContain('maxWaiting=2');
    expect((w3.error as Error).message).toContain('waiting=2');
    expect([w1.state, w2.state]).toEqual(['pending', 'pending']);
    expect(pool.stats().waiting).toBe(2);
    pool.release(held);
    await clock.flush();
    // A place in the queue is free again.
    const w4 = observe(pool.acquire());
    await clock.flush();
    expect(w4.state).toBe('pending');
    pool.release(w1.value as FakeEntry);
    await clock.flush();
    pool.release(w2.value as FakeEntry);
    await clock.flush();
    pool.release(w4.value as FakeEntry);
  });

  test('maxWaiting counts only callers waiting for a release: with room, the pool still grows', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2, maxWaiting: 0 } });
    connector.defaultOutcome = 'slow';
    const first = observe(pool.acquire());
    const second = observe(pool.acquire());
    await clock.flush();
    expect(connector.inFlight).toBe(2);
    const third = observe(pool.acquire());
    await clock.flush();
    expect(errorCode(third.error)).toBe('E_QUEUE_FULL');
    for (const gate of connector.waitingGates()) gate.release();
    await clock.flush();
    expect([first.state, second.state]).toEqual(['resolved', 'resolved']);
    pool.release(first.value as FakeEntry);
    pool.release(second.value as FakeEntry);
  });

  test('an idle connection is still handed out when the queue is full', async () => {
    const { pool, clock } = fakePool({ pool: { min: 1, max: 1, maxWaiting: 0 } });
    await clock.flush();
    const entry = await pool.acquire();
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'E_QUEUE_FULL' });
    pool.release(entry);
  });
});

describe('ids and stats', () => {
  test('ids are conn_<N>_<ns>, N counts up and is never reused, listing in creation order', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 3 } });
    const seen: number[] = [];
    for (let round = 0; round < 3; round++) {
      const entries = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
      for (const e of entries) seen.push(connectionNumber(e.id));
      expect(checkInvariants(pool, connector).connections.map((c) => c.id)).toEqual(
        [...entries].sort((x, y) => x.seq - y.seq).map((e) => e.id),
      );
      for (const e of entries) connector.killConnection(e.raw as never);
      for (const e of entries) pool.release(e);
      await clock.advanceAsync(10);
    }
    expect(new Set(seen).size).toBe(9);
    expect([...seen].sort((x, y) => x - y)).toEqual(seen);
    expect(pool.stats().total).toBe(0); // every connection was killed and closed on release
    const fresh = await pool.acquire();
    expect(fresh.id).toBe(`conn_${fresh.seq}_${clock.wallNowNs()}`);
    expect(fresh.seq).toBeGreaterThan(Math.max(...seen));
    pool.release(fresh);
  });

  test('connection records report dates and ages from the clock', async () => {
    const { pool, clock } = fakePool({ pool: { min: 1, max: 2 } });
    await clock.flush();
    const created = clock.wallNow();
    await clock.advanceAsync(1_500);
    const [conn] = pool.stats().connections;
    expect(conn).toMatchObject({ inUse: false, ageMs: 1_500, idleMs: 1_500 });
    expect(conn?.createdAt.getTime()).toBe(created);
    const entry = await pool.acquire();
    await clock.advanceAsync(500);
    expect(pool.stats().connections[0]).toMatchObject({ inUse: true, ageMs: 2_000, idleMs: 0 });
    expect(entry.lastUsed.getTime()).toBe(created + 1_500);
    pool.release(entry);
  });
});
