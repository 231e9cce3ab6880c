/**
 * `resize()` on the fakes: growing opens what the waiters and the new min need; shrinking closes idle
 * connections beyond the new max at once (longest idle first), retires checked-out ones (closed on
 * release) and closes opens in flight on arrival, never below the new min and never over the new max
 * once they are back. And the manager's checks of the limits.
 */
import type { Client as PgClient } from 'pg';
import { ConnectionManager } from '../../lib/manager';
import { resolveOptions } from '../../lib/options';
import type { Connector } from '../../lib/pool/connector';
import { silentLogger } from '../helpers/database';
import { closeOnFakeClock, FakeClock, flushMicrotasks } from '../helpers/fake-clock';
import { createFakePool, FakeConnector, type FakePool } from '../helpers/fake-connector';
import { checkInvariants } from '../helpers/invariants';

const live: Array<{ manager: { close(): Promise<void> }; clock: FakeClock }> = [];
afterEach(() => closeOnFakeClock(live.splice(0)));

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushMicrotasks();
}

function pool(min: number, max: number): { pool: FakePool; connector: FakeConnector; clock: FakeClock } {
  const setup = createFakePool({ pool: { min, max } });
  live.push({ manager: setup.pool, clock: setup.clock });
  return setup;
}

describe('resize', () => {
  test('growing: the new min is opened and waiters beyond the old max are served', async () => {
    const { pool: p, connector } = pool(1, 2);
    await settle();
    const held = [await p.acquire(), await p.acquire()];
    const third = p.acquire({ timeoutMs: 60_000 });
    await settle();
    expect(p.waiting).toBe(1);
    expect(p.resize(4, 6)).toEqual({ closed: 0, retiring: 0 });
    await third;
    await settle();
    expect(p.stats()).toMatchObject({ min: 4, max: 6 });
    expect(connector.openCount).toBe(4);
    for (const entry of [...held, await third]) p.release(entry);
    checkInvariants(p);
  });

  test('shrinking: idle beyond max close now (longest idle first), checked-out ones on release, never below min', async () => {
    const { pool: p, clock, connector } = pool(0, 6);
    const entries = await Promise.all([1, 2, 3, 4, 5, 6].map(() => p.acquire()));
    // Three go back, at 10, 20 and 30 ms: the first two are the longest idle.
    for (const entry of entries.slice(0, 3)) {
      clock.advance(10);
      p.release(entry);
    }
    const [oldest, second, newest] = entries.slice(0, 3).map((e) => e.raw);
    expect(p.resize(1, 2)).toEqual({ closed: 3, retiring: 1 });
    await settle();
    expect(oldest?.open).toBe(false);
    expect(second?.open).toBe(false);
    expect(newest?.open).toBe(false);
    expect(p.stats()).toMatchObject({ min: 1, max: 2, total: 3, inUse: 3 });
    // The one retired closes when released; the other two stay: 2 = the new max.
    for (const entry of entries.slice(3)) p.release(entry);
    await settle();
    expect(connector.openCount).toBe(2);
    expect(p.stats()).toMatchObject({ total: 2, idle: 2 });
    expect(p.stats().counters.destroyed).toBe(4);
    checkInvariants(p);
  });

  test('shrinking while opens are in flight: the extra ones close on arrival', async () => {
    const { pool: p, connector, clock } = createFakePool({ pool: { min: 0, max: 4 }, outcome: 'slow' });
    live.push({ manager: p, clock });
    const callers = [1, 2, 3, 4].map(() => p.acquire({ timeoutMs: 60_000 }));
    await settle();
    expect(p.stats().pending).toBe(4);
    expect(p.resize(0, 1)).toEqual({ closed: 0, retiring: 3 });
    for (const gate of connector.waitingGates()) gate.release();
    await settle();
    // One connection serves the callers in turn; the three others closed as they arrived.
    expect(connector.openCount).toBe(1);
    const first = await Promise.race(callers);
    p.release(first);
    await settle();
    expect(p.stats().total).toBe(1);
    checkInvariants(p);
  });

  test('manager.resize checks its limits: E_INVALID_CONFIG naming resize.min / resize.max, and the budget', async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(clock);
    const manager = new ConnectionManager(
      resolveOptions({ connection: 'postgres://kcm@127.0.0.1:1/kcm', pool: { min: 1, max: 4 }, budget: { maxConnections: 5 }, logger: silentLogger, circuitBreaker: false }),
      { clock, connector: () => connector as unknown as Connector<PgClient> },
    );
    live.push({ manager, clock });
    await expect(manager.resize({ min: 5, max: 2 })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('"resize.min"') });
    await expect(manager.resize({ max: 0 })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('"resize.max"') });
    await expect(manager.resize({ max: 2.5 })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    await expect(manager.resize({})).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    await expect(manager.resize({ min: 3, max: 3, extra: 1 } as never)).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    await expect(manager.resize({ min: 6, max: 8 })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('budget.maxConnections') });
    expect(manager.getPoolStats()).toMatchObject({ min: 1, max: 4 });
    await expect(manager.resize({ max: 8 })).resolves.toEqual({ closed: 0, retiring: 0 });
    expect(manager.getPoolStats()).toMatchObject({ min: 1, max: 8 });
    expect(manager.config.pool.max).toBe(4);
  });
});
