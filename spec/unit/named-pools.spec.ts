/**
 * Named pools on the fakes (lib/named-pools): a manager on the fake clock whose pools all open fake
 * connections from one connector, so the connector sees what the server would across every pool.
 * Static pools, pools made by `poolFactory` (one call per name, however many first uses race),
 * closed when idle, least recently used closed at `maxPools`, the budget across all of them, and a
 * model-based property test: 3 static and 20 made pools under random load never exceed the budget,
 * never hand a connection to two callers, and leave no caller waiting once connections come back.
 */
import fc from 'fast-check';
import type { Client as PgClient } from 'pg';
import { ConnectionManager } from '../../lib/manager';
import { resolveOptions, type ConnectionManagerConfig } from '../../lib/options';
import type { Connector } from '../../lib/pool/connector';
import type { PooledConnection } from '../../lib/driver/pooled-connection';
import { silentLogger } from '../helpers/database';
import { closeOnFakeClock, FakeClock, flushMicrotasks } from '../helpers/fake-clock';
import { FakeConnector } from '../helpers/fake-connector';
import { errorCode, observe, type Observed } from '../helpers/invariants';

/** Nothing listens there; every pool opens fake connections instead. */
const NOWHERE = 'postgres://kcm@127.0.0.1:1/kcm';

interface Setup {
  manager: ConnectionManager;
  clock: FakeClock;
  connector: FakeConnector;
}

const live: Setup[] = [];

function fakeManager(config: Omit<ConnectionManagerConfig, 'connection'>): Setup {
  const clock = new FakeClock();
  const connector = new FakeConnector(clock);
  const manager = new ConnectionManager(resolveOptions({ connection: NOWHERE, logger: silentLogger, circuitBreaker: false, ...config }), {
    clock,
    connector: () => connector as unknown as Connector<PgClient>,
  });
  const setup = { manager, clock, connector };
  live.push(setup);
  return setup;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

afterEach(() => closeOnFakeClock(live.splice(0)));

describe('named pools', () => {
  test('pool("primary") is the default pool; a static pool has the same API; unknown names are E_UNKNOWN_POOL listing the known ones', async () => {
    const { manager } = fakeManager({ pool: { min: 0, max: 2 }, pools: { analytics: { connection: NOWHERE, pool: { max: 3 } } } });
    expect(manager.pool('primary').getPoolStats()).toEqual(expect.objectContaining({ max: 2 }));
    const analytics = manager.pool('analytics');
    expect(analytics.name).toBe('analytics');
    expect(manager.pool('analytics')).toBe(analytics);
    const conn = await analytics.getConnection();
    expect(analytics.getPoolStats()).toMatchObject({ max: 3, inUse: 1 });
    expect(manager.getPoolStats()).toMatchObject({ inUse: 0, pools: { primary: { inUse: 0 }, analytics: { inUse: 1 } } });
    // The manager's release finds the pool that lent it.
    await manager.releaseConnection(conn);
    expect(analytics.getPoolStats().inUse).toBe(0);
    expect(() => manager.pool('nope')).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_POOL', message: expect.stringContaining('Known pools: primary, analytics') }));
    expect(() => manager.pool(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }));
    expect(() => manager.pool('a/b')).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }));
  });

  test('without pools or a factory, pool() knows only primary and the stats carry no pools', () => {
    const { manager } = fakeManager({ pool: { min: 0, max: 2 } });
    expect(manager.pool('primary')).toBeDefined();
    expect(() => manager.pool('analytics')).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_POOL' }));
    expect(manager.getPoolStats().pools).toBeUndefined();
    expect(manager.getPoolStats().budget).toBeUndefined();
  });

  test('concurrent first uses of a name share one factory call and one pool', async () => {
    const calls: string[] = [];
    let answer: ((value: { connection: string }) => void) | undefined;
    const { manager } = fakeManager({
      pool: { min: 0, max: 2 },
      poolFactory: (name) => {
        calls.push(name);
        return new Promise((resolve) => (answer = resolve));
      },
    });
    const handles = Array.from({ length: 10 }, () => manager.pool('acme'));
    const leases = handles.map((h) => observe(h.getConnection()));
    await settle();
    expect(calls).toEqual(['acme']);
    answer?.({ connection: NOWHERE });
    await settle();
    expect(leases.filter((l) => l.state === 'resolved')).toHaveLength(2); // max 2; eight wait
    const stats = manager.getPoolStats();
    expect(Object.keys(stats.pools ?? {})).toEqual(['primary', 'acme']);
    expect(stats.totals).toMatchObject({ made: 1, closed: 0 });
    // Each lease gives its connection back once; the waiters are served in turn by the same pool.
    const released = new Set<Observed<PooledConnection>>();
    while (released.size < leases.length) {
      const served = leases.filter((l) => l.state === 'resolved' && !released.has(l));
      expect(served.length).toBeGreaterThan(0);
      for (const lease of served) {
        released.add(lease);
        await manager.releaseConnection(lease.value as PooledConnection);
      }
      await settle();
    }
    expect(manager.pool('acme').getPoolStats().counters.created).toBe(2);
  });

  test('a factory that answers undefined: E_UNKNOWN_POOL (at once when it is synchronous), and the name is asked again next time', async () => {
    let known = false;
    const { manager } = fakeManager({ poolFactory: () => (known ? { connection: NOWHERE } : undefined), pool: { min: 0 } });
    expect(() => manager.pool('late')).toThrow(expect.objectContaining({ code: 'E_UNKNOWN_POOL', message: expect.stringContaining('poolFactory returned undefined') }));
    known = true;
    await expect(manager.pool('late').query('select 1')).rejects.toBeDefined(); // the fake connection runs no SQL: it got that far
    const asyncFactory = fakeManager({ poolFactory: async () => undefined });
    await expect(asyncFactory.manager.pool('ghost').getConnection()).rejects.toMatchObject({ code: 'E_UNKNOWN_POOL' });
    await expect(asyncFactory.manager.pool('ghost').getConnection()).rejects.toMatchObject({ code: 'E_UNKNOWN_POOL' });
  });

  test('a factory result with bad options is E_INVALID_CONFIG naming the factory and the option', async () => {
    const { manager } = fakeManager({ poolFactory: () => ({ connection: NOWHERE, pool: { max: 0 } }) });
    expect(() => manager.pool('acme')).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('"poolFactory("acme").pool.max"') }));
  });

  test('a made pool unused for poolIdleTimeoutMs is closed and forgotten; its handle makes it again; its counters stay in the totals', async () => {
    const { manager, clock, connector } = fakeManager({ pool: { min: 0 }, poolFactory: () => ({ connection: NOWHERE, pool: { max: 2 } }), poolIdleTimeoutMs: 1_000 });
    const acme = manager.pool('acme');
    await acme.withConnection(() => undefined);
    expect(connector.openCount).toBe(1);
    // Held past the timeout: a pool with a connection out is never closed.
    const held = await acme.getConnection();
    await clock.advanceAsync(5_000);
    expect(manager.getPoolStats().pools?.acme).toBeDefined();
    await acme.releaseConnection(held);
    await clock.advanceAsync(1_500);
    await settle();
    expect(manager.getPoolStats().pools?.acme).toBeUndefined();
    expect(connector.openCount).toBe(0);
    expect(manager.getPoolStats().totals).toMatchObject({ made: 1, closed: 1, counters: { acquired: 2, released: 2 } });
    // The same handle still works: the pool is made again.
    await acme.withConnection(() => undefined);
    expect(manager.getPoolStats().totals).toMatchObject({ made: 2, closed: 1, counters: { acquired: 3 } });
  });

  test('at maxPools the least recently used quiet pool closes to make room; with none quiet, E_TOO_MANY_POOLS', async () => {
    const { manager, clock } = fakeManager({ pool: { min: 0 }, poolFactory: () => ({ connection: NOWHERE }), maxPools: 3, poolIdleTimeoutMs: 0 });
    for (const name of ['a', 'b', 'c']) {
      await manager.pool(name).withConnection(() => undefined);
      clock.advance(10);
    }
    await manager.pool('a').withConnection(() => undefined); // a is now the most recent; b the least
    manager.pool('d');
    expect(Object.keys(manager.getPoolStats().pools ?? {}).sort()).toEqual(['a', 'c', 'd', 'primary']);
    const held = await Promise.all(['a', 'c', 'd'].map((name) => manager.pool(name).getConnection()));
    expect(() => manager.pool('e')).toThrow(expect.objectContaining({ code: 'E_TOO_MANY_POOLS' }));
    for (const conn of held) await manager.releaseConnection(conn);
  });

  test('budget: min of the static pools must fit (E_INVALID_CONFIG); a made pool whose min does not fit gets min 0', async () => {
    expect(() => resolveOptions({ connection: NOWHERE, pool: { min: 3 }, pools: { a: { connection: NOWHERE, pool: { min: 3 } } }, budget: { maxConnections: 5 } }))
      .toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('budget.maxConnections') }));
    const { manager, connector } = fakeManager({ pool: { min: 2, max: 4 }, poolFactory: () => ({ connection: NOWHERE, pool: { min: 2, max: 4 } }), budget: { maxConnections: 3 } });
    await manager.pool('acme').ready();
    await settle();
    expect(manager.pool('acme').getPoolStats().min).toBe(0);
    expect(connector.openCount).toBe(2);
  });

  test('budget across the default, static and made pools: a made pool reclaims the idle connections of the others', async () => {
    const { manager, connector } = fakeManager({
      pool: { min: 0, max: 4 },
      pools: { s: { connection: NOWHERE, pool: { max: 4 } } },
      poolFactory: () => ({ connection: NOWHERE, pool: { max: 4 } }),
      budget: { maxConnections: 4 },
    });
    const fromPrimary = await Promise.all([manager.getConnection(), manager.getConnection()]);
    const fromS = await Promise.all([manager.pool('s').getConnection(), manager.pool('s').getConnection()]);
    for (const conn of [...fromPrimary, ...fromS]) await manager.releaseConnection(conn);
    const fromT = await Promise.all([1, 2, 3].map(() => manager.pool('t').getConnection()));
    await settle();
    const stats = manager.getPoolStats();
    expect(stats.budget).toMatchObject({ maxConnections: 4, open: 4, reclaimed: 3 });
    expect(connector.peakOccupied).toBe(4);
    for (const conn of fromT) await manager.releaseConnection(conn);
  });
});

// ── property: 3 static + 20 made pools under random load ─────────────────────────────────────

type Cmd =
  | { kind: 'acquire'; pool: number; timeoutMs: number }
  | { kind: 'release'; pick: number }
  | { kind: 'advance'; ms: number };

interface Scenario {
  budget: number;
  maxes: number[];
  mins: number[];
  maxPools: number;
  commands: Cmd[];
}

const POOLS = ['primary', 's1', 's2', 's3', ...Array.from({ length: 20 }, (_, i) => `t${i}`)];

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  budget: fc.integer({ min: 3, max: 12 }),
  maxes: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 24, maxLength: 24 }),
  mins: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 4, maxLength: 4 }),
  maxPools: fc.integer({ min: 4, max: 20 }),
  commands: fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('acquire' as const), pool: fc.integer({ min: 0, max: 23 }), timeoutMs: fc.constantFrom(50, 500, 1_000_000) }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
    ),
    { minLength: 10, maxLength: 80 },
  ),
}).filter((s) => s.mins.reduce((a, b) => a + b, 0) <= s.budget); // else E_INVALID_CONFIG at start

async function runScenario(s: Scenario): Promise<void> {
  const { manager, clock, connector } = fakeManager({
    pool: { min: s.mins[0], max: s.maxes[0] },
    pools: Object.fromEntries([1, 2, 3].map((i) => [`s${i}`, { connection: NOWHERE, pool: { min: s.mins[i], max: s.maxes[i] } }])),
    poolFactory: (name) => ({ connection: NOWHERE, pool: { max: s.maxes[POOLS.indexOf(name)] } }),
    maxPools: s.maxPools,
    poolIdleTimeoutMs: 1_000,
    budget: { maxConnections: s.budget },
  });
  const calls: Array<Observed<PooledConnection>> = [];
  const held = new Set<PooledConnection>();
  const check = (): void => {
    expect(connector.openCount + connector.inFlight).toBeLessThanOrEqual(s.budget);
    expect(manager.getPoolStats().budget?.open).toBeLessThanOrEqual(s.budget);
    // No connection in two hands: every resolved, unreleased lease is a distinct raw connection.
    const raws = new Set<unknown>();
    for (const conn of held) {
      const raw = (conn as unknown as { raw: unknown }).raw;
      expect(raws.has(raw)).toBe(false);
      raws.add(raw);
    }
  };
  const collect = (): void => {
    for (const call of calls) if (call.state === 'resolved' && !held.has(call.value as PooledConnection) && !(call as { released?: boolean }).released) held.add(call.value as PooledConnection);
  };
  for (const cmd of s.commands) {
    if (cmd.kind === 'acquire') {
      let lease: Promise<PooledConnection>;
      try {
        lease = manager.pool(POOLS[cmd.pool]).getConnection({ timeoutMs: cmd.timeoutMs });
      } catch (error) {
        expect(errorCode(error)).toBe('E_TOO_MANY_POOLS');
        continue;
      }
      calls.push(observe(lease));
    } else if (cmd.kind === 'release') {
      collect();
      const list = [...held];
      if (list.length > 0) {
        const conn = list[cmd.pick % list.length];
        held.delete(conn);
        const call = calls.find((c) => c.value === conn && !(c as { released?: boolean }).released);
        if (call) (call as { released?: boolean }).released = true;
        await manager.releaseConnection(conn);
      }
    } else {
      await clock.advanceAsync(cmd.ms);
    }
    await settle();
    collect();
    check();
  }
  // Liveness: give everything back, again and again, until no caller waits. Nothing is held
  // forever, so every waiter must be served or time out: no deadlock between pools.
  for (let round = 0; round < 400 && calls.some((c) => c.state === 'pending'); round++) {
    collect();
    for (const conn of [...held]) {
      held.delete(conn);
      const call = calls.find((c) => c.value === conn && !(c as { released?: boolean }).released);
      if (call) (call as { released?: boolean }).released = true;
      await manager.releaseConnection(conn);
    }
    await settle();
    check();
    if (round % 20 === 19) await clock.advanceAsync(10);
  }
  expect(calls.filter((c) => c.state === 'pending')).toHaveLength(0);
  for (const call of calls) if (call.state === 'rejected') expect(['E_ACQUIRE_TIMEOUT', 'E_TOO_MANY_POOLS']).toContain(errorCode(call.error));
  collect();
  for (const conn of held) await manager.releaseConnection(conn);
  expect(connector.peakOccupied).toBeLessThanOrEqual(s.budget);
  await closeOnFakeClock(live.splice(live.findIndex((l) => l.manager === manager), 1));
  expect(connector.openCount).toBe(0);
}

describe('named pools: property', () => {
  test('3 static and 20 made pools under random load: budget never exceeded, no double hand-out, nobody left waiting', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: 60 });
  });
});
