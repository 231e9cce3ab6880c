/**
 * The connection budget (lib/named-pools/budget.ts) over pools on the fakes: one connector shared
 * by every pool, so its `peakOccupied` (open + opening) is what the server would have seen across
 * all of them. Reclaim order, `min` respected, released connections given to a waiting pool, and
 * pools served in turn when there are more pools than the budget has connections.
 */
import { ConnectionBudget } from '../../lib/named-pools/budget';
import { renewConnections } from '../../lib/pool/eviction';
import type { PoolOptions } from '../../lib/options';
import { closeOnFakeClock, flushMicrotasks } from '../helpers/fake-clock';
import { createFakePool, FakeConnector, type FakeEntry, type FakePool } from '../helpers/fake-connector';
import { FakeClock } from '../helpers/fake-clock';
import { checkInvariants } from '../helpers/invariants';

interface Setup {
  clock: FakeClock;
  connector: FakeConnector;
  budget: ConnectionBudget;
  pools: FakePool[];
}

const live: Array<{ manager: FakePool; clock: FakeClock }> = [];

/** `count` pools (named p0, p1, …) under one budget of `max`, on one connector. */
function pools(max: number, count: number, options: PoolOptions | ((i: number) => PoolOptions) = { max: 5 }): Setup {
  const clock = new FakeClock();
  const connector = new FakeConnector(clock);
  const budget = new ConnectionBudget(max);
  const out: FakePool[] = [];
  for (let i = 0; i < count; i++) {
    const pool = createFakePool({ clock, connector, budget, name: `p${i}`, pool: typeof options === 'function' ? options(i) : options }).pool;
    out.push(pool);
    live.push({ manager: pool, clock });
  }
  return { clock, connector, budget, pools: out };
}

/** Lets opens and closes (microtasks on the fakes) finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

afterEach(async () => {
  await closeOnFakeClock(live.splice(0));
});

describe('connection budget', () => {
  it('never lets the pools together open more than the budget, counting opens in flight', async () => {
    const { connector, budget, pools: [a, b, c] } = pools(6, 3);
    // The callers left waiting end with E_POOL_CLOSED when the test closes the pools.
    for (const pool of [a, b, c]) for (let i = 0; i < 5; i++) pool.acquire({ timeoutMs: 600_000 }).catch(() => undefined);
    await settle();
    expect(connector.peakOccupied).toBe(6);
    expect(budget.stats()).toMatchObject({ maxConnections: 6, open: 6 });
    // Every pool holds something: the first refused pools queued and were handed slots in turn.
    expect([a, b, c].map((p) => p.counts.openCount).reduce((x, y) => x + y)).toBe(6);
    for (const pool of [a, b, c]) checkInvariants(pool);
  });

  it('reclaims the longest-idle connection of another pool, oldest first, never below that pool\'s min', async () => {
    const { clock, connector, pools: [a, b, c] } = pools(5, 3, (i) => ({ max: 5, min: i === 1 ? 2 : 0 }));
    await settle(); // b opens its min of 2
    const fromA = [await a.acquire(), await a.acquire(), await a.acquire()];
    // a's three go idle at 10, 20 and 30 ms; b's two (its min) are older still.
    for (const entry of fromA) {
      clock.advance(10);
      a.release(entry);
    }
    expect(connector.openCount).toBe(5);
    const first = fromA[0].raw;
    const second = fromA[1].raw;
    const pending = [c.acquire({ timeoutMs: 60_000 }), c.acquire({ timeoutMs: 60_000 })];
    await settle();
    // The two oldest idle connections above a min are a's first two; b keeps its min.
    expect(first?.open).toBe(false);
    expect(second?.open).toBe(false);
    expect(fromA[2].raw?.open).toBe(true);
    expect(b.counts.openCount).toBe(2);
    expect(a.stats().counters.reclaimed).toBe(2);
    await Promise.all(pending);
    expect(c.counts.busyCount).toBe(2);
    expect(connector.peakOccupied).toBe(5);
  });

  it('takes a released connection from a busy pool for a pool that has none, and counts it', async () => {
    const { connector, budget, pools: [a, b] } = pools(3, 2);
    const held = [await a.acquire(), await a.acquire(), await a.acquire()];
    // a's callers keep coming: one more waits in a's own queue.
    const aWaiter = a.acquire({ timeoutMs: 60_000 });
    const bWaiter = b.acquire({ timeoutMs: 60_000 });
    await settle();
    expect(budget.stats().waitingPools).toEqual(['p0', 'p1']);
    // b holds none, so a's release goes to b (closed and reopened there), not to a's own waiter.
    a.release(held[0]);
    await settle();
    const bEntry = await bWaiter;
    expect(bEntry.owner).toBe(b);
    expect(a.stats().counters.reclaimed).toBe(1);
    expect(budget.stats().reclaimed).toBe(1);
    expect(connector.peakOccupied).toBe(3);
    // Now b holds one and a two: a's next release serves a's waiter (no churn between busy pools).
    a.release(held[1]);
    expect((await aWaiter).owner).toBe(a);
    expect(a.stats().counters.reclaimed).toBe(1);
    a.release(held[2]);
    b.release(bEntry);
  });

  it('gives an idle connection of a pool with no waiters to the waiting pool on release', async () => {
    const { budget, pools: [a, b] } = pools(2, 2);
    const held = [await a.acquire(), await a.acquire()];
    const bEntry = b.acquire({ timeoutMs: 60_000 });
    await settle();
    expect(budget.stats().waitingPools).toEqual(['p1']);
    a.release(held[1]); // a has no waiter: the connection would go idle, so it goes to b
    expect((await bEntry).owner).toBe(b);
    a.release(held[0]);
  });

  it('serves pools in turn when there are more pools than connections: none waits forever', async () => {
    // 12 pools, a budget of 5, every pool always wanting one more: each release hands a slot on.
    const { connector, pools: all } = pools(5, 12, { max: 2 });
    const served = new Map<FakePool, number>(all.map((p) => [p, 0]));
    const holding: FakeEntry[] = [];
    const want = (pool: FakePool): void => {
      void pool.acquire({ timeoutMs: 10_000_000 }).then((entry) => {
        served.set(pool, (served.get(pool) ?? 0) + 1);
        holding.push(entry);
      });
    };
    for (const pool of all) want(pool);
    await settle();
    // 60 rounds: the oldest holder gives its connection back and asks again.
    for (let round = 0; round < 60; round++) {
      const entry = holding.shift();
      if (entry === undefined) break;
      const owner = entry.owner as FakePool;
      owner.release(entry);
      want(owner);
      await settle();
      expect(connector.openCount + connector.inFlight).toBeLessThanOrEqual(5);
    }
    expect(connector.peakOccupied).toBeLessThanOrEqual(5);
    // Every pool was served more than once: no pool starved.
    for (const [pool, times] of served) expect({ pool: pool.name, times: times > 1 }).toEqual({ pool: pool.name, times: true });
  });

  it('a pool that closes gives its slots back and leaves the queue', async () => {
    const { budget, pools: [a, b] } = pools(2, 2);
    const held = [await a.acquire(), await a.acquire()];
    const bEntry = b.acquire({ timeoutMs: 60_000 });
    await settle();
    const closing = a.close();
    for (const entry of held) a.release(entry);
    await closing;
    expect((await bEntry).owner).toBe(b);
    expect(budget.stats().open).toBe(1);
  });

  it('renewal under a spent budget replaces in place: each replacement keeps the slot of the connection it replaces', async () => {
    const { connector, budget, pools: [a, b] } = pools(4, 2, (i) => ({ max: 4, min: i === 0 ? 2 : 0 }));
    await settle(); // a opens its min of 2
    const held = [await b.acquire(), await b.acquire()];
    const before = connector.openConnections().filter((c) => !held.some((e) => e.raw === c));
    expect(budget.stats().open).toBe(4);
    const result = await renewConnections(a);
    await settle();
    expect(result).toMatchObject({ count: 2, error: undefined });
    // a's two connections are new ones; the budget was never exceeded.
    for (const old of before) expect(old.open).toBe(false);
    expect(a.counts.openCount).toBe(2);
    expect(connector.peakOccupied).toBe(4);
    for (const entry of held) b.release(entry);
  });
});
