/**
 * One deadline per call (lib/pool/deadline.ts): a manager on the fake clock and gated fake
 * connectors, with every replica open hanging. A read must end at the caller's `timeoutMs`, not
 * at the replica's share plus a fresh full timeout on the primary; the same for `query()`'s retry
 * of a failed replica read. When nothing is left the answer is `E_ACQUIRE_TIMEOUT`.
 */
import type { Client as PgClient } from 'pg';
import { ConnectionManager } from '../../lib/manager';
import { resolveOptions, type PoolOptions } from '../../lib/options';
import type { Connector } from '../../lib/pool/connector';
import { AcquireDeadline, acquireRequest } from '../../lib/pool/deadline';
import type { ReplicaHealthMonitor } from '../../lib/routing/health';
import type { Router } from '../../lib/routing/router';
import { silentLogger } from '../helpers/database';
import { advanceUntil, closeOnFakeClock, FakeClock } from '../helpers/fake-clock';
import { FakeConnector, type FakeConn, type OpenOutcome } from '../helpers/fake-connector';
import { checkInvariants, errorCode, observe } from '../helpers/invariants';

/** Nothing listens on port 1 of the loopback: the replica's health probe fails at once. */
const NOWHERE = 'postgres://kcm@127.0.0.1:1/kcm';

interface FakeManager {
  manager: ConnectionManager;
  clock: FakeClock;
  primary: FakeConnector;
  replica: FakeConnector;
}

const live: FakeManager[] = [];

/** A manager whose pools open fake connections: the primary's per `primaryOutcome`, the replica's per `replicaOutcome`. */
async function fakeManager(primaryOutcome: OpenOutcome, replicaOutcome: OpenOutcome, pool: PoolOptions = {}): Promise<FakeManager> {
  const clock = new FakeClock();
  const connectors: FakeConnector[] = [];
  const config = resolveOptions({
    connection: NOWHERE,
    replicas: [{ name: 'r1', connection: NOWHERE }],
    pool: { min: 0, max: 2, acquireTimeoutMs: 30_000, createTimeoutMs: 10_000, ...pool },
    logger: silentLogger,
  });
  const manager = new ConnectionManager(config, {
    clock,
    connector: () => {
      const connector = new FakeConnector(clock);
      connector.defaultOutcome = connectors.length === 0 ? primaryOutcome : replicaOutcome;
      connectors.push(connector);
      return connector as unknown as Connector<PgClient>;
    },
  });
  // The health monitor probes the (unreachable) replica for real; once its first round is done it
  // is stopped and the replica put in rotation by hand, so only the fakes decide what happens.
  const internals = (manager as unknown as { main: { router: Router; health: ReplicaHealthMonitor } }).main;
  await internals.health.firstRound;
  await internals.health.stop();
  internals.router.markHealthy(internals.router.replicas[0]);
  const setup = { manager, clock, primary: connectors[0], replica: connectors[1] };
  live.push(setup);
  return setup;
}

afterEach(() => closeOnFakeClock(live.splice(0)));

describe('one deadline per call', () => {
  test('a read whose replica hangs falls back to the primary within the caller\'s timeoutMs, not 1.5x it', async () => {
    const { manager, clock, replica } = await fakeManager('hang', 'hang');
    const start = clock.now();
    const lease = observe(manager.getConnection({ intent: 'read', timeoutMs: 200 }));
    const elapsed = await advanceUntil(clock, () => lease.state !== 'pending', 1_000);
    expect(lease.state).toBe('rejected');
    expect(errorCode(lease.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect(elapsed).toBe(200);
    expect(clock.now() - start).toBe(200);
    expect((lease.error as Error).message).toMatch(/^Timed out after 200 ms waiting for a connection \(pool "primary": total=0, idle=0, inUse=0, pending=\d+, waiting=0, max=2\)/);
    expect(replica.openAttempts).toBeGreaterThan(0); // the replica was tried first
    checkInvariants({ stats: () => manager.getPoolStats() });
  });

  test('the primary gets what the replica left: an open that fits in it serves the read, one that does not times out', async () => {
    const fits = await fakeManager({ slow: 50 }, 'hang');
    const lease = observe(fits.manager.getConnection({ intent: 'read', timeoutMs: 200 }));
    // Replica share: 100 ms; the primary's open starts then and takes 50 ms.
    expect(await advanceUntil(fits.clock, () => lease.state !== 'pending', 1_000)).toBe(150);
    expect(lease.state).toBe('resolved');
    await fits.manager.releaseConnection(lease.value as never);

    const late = await fakeManager({ slow: 150 }, 'hang');
    const late1 = observe(late.manager.getConnection({ intent: 'read', timeoutMs: 200 }));
    expect(await advanceUntil(late.clock, () => late1.state !== 'pending', 1_000)).toBe(200);
    expect(errorCode(late1.error)).toBe('E_ACQUIRE_TIMEOUT');
  });

  test('query(): a replica read that fails is retried on the primary with what is left of the deadline', async () => {
    const { manager, clock, replica } = await fakeManager('hang', 'ok', { min: 0 });
    // The replica lends a connection at once; its query fails with a replica fault after 150 ms.
    const failAfter = (ms: number) => (): Promise<never> =>
      new Promise((_resolve, reject) => clock.setTimer(() => reject(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), ms));
    const patch = (conn: FakeConn): void => {
      (conn as FakeConn & { query: unknown }).query = failAfter(150);
    };
    const originalOpen = replica.open.bind(replica);
    replica.open = async (timeoutMs: number) => {
      const conn = await originalOpen(timeoutMs);
      patch(conn);
      return conn;
    };
    const start = clock.now();
    const result = observe(manager.query('SELECT 1', [], { timeoutMs: 200 }));
    const elapsed = await advanceUntil(clock, () => result.state !== 'pending', 1_000);
    expect(errorCode(result.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect(elapsed).toBe(200);
    expect(clock.now() - start).toBe(200);
    expect((result.error as Error).message).toContain('Timed out after 200 ms');
    checkInvariants({ stats: () => manager.getPoolStats() });
  });

  test('query(): when the replica read used up the whole deadline, the retry fails at once with E_ACQUIRE_TIMEOUT (never E_INVALID_CONFIG)', async () => {
    const { manager, clock, replica } = await fakeManager('ok', 'ok', { min: 0 });
    const originalOpen = replica.open.bind(replica);
    replica.open = async (timeoutMs: number) => {
      const conn = await originalOpen(timeoutMs);
      (conn as FakeConn & { query: unknown }).query = (): Promise<never> =>
        new Promise((_resolve, reject) => clock.setTimer(() => reject(Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })), 250));
      return conn;
    };
    const result = observe(manager.query('SELECT 1', [], { timeoutMs: 200 }));
    const elapsed = await advanceUntil(clock, () => result.state !== 'pending', 1_000);
    expect(elapsed).toBe(250);
    expect(errorCode(result.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect((result.error as Error).message).toContain('Timed out after 200 ms');
    const stats = checkInvariants({ stats: () => manager.getPoolStats() });
    expect(stats.counters.timedOut).toBe(1);
    expect(stats.inUse).toBe(0);
  });

  test('an internal deadline becomes the time it has left (rounded up); capping never extends it', async () => {
    const clock = new FakeClock();
    const passed = new AcquireDeadline(500, clock.now() - 1, undefined);
    expect(acquireRequest(passed, 30_000, clock)).toEqual({ timeoutMs: 500, waitMs: -1, signal: undefined });
    const later = new AcquireDeadline(500, clock.now() + 0.25, undefined);
    // A fraction of a millisecond left still waits (rounded up), so the timer cannot fire early.
    expect(acquireRequest(later, 30_000, clock).waitMs).toBe(1);
    expect(passed.capped(100, clock).atMono).toBe(passed.atMono);
    expect(new AcquireDeadline(500, clock.now() + 400, undefined).capped(100, clock).atMono).toBe(clock.now() + 100);
  });
});
