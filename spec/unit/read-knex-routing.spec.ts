/**
 * readKnex's statement routing on the fake clock and fake connectors: a read the replica refuses
 * with 25006 runs again on the primary within what is left of the deadline fixed when knex leased
 * (never a fresh one), and is learned from; a statement classified for the primary never runs on
 * the replica's connection. The real-standby counterpart is spec/integration/routing-learning.spec.ts.
 */
import type { Client as PgClient } from 'pg';
import { ConnectionManager } from '../../lib/manager';
import { resolveOptions, type PoolOptions } from '../../lib/options';
import type { Connector } from '../../lib/pool/connector';
import type { ReplicaHealthMonitor } from '../../lib/routing/health';
import type { Router } from '../../lib/routing/router';
import { silentLogger } from '../helpers/database';
import { advanceUntil, closeOnFakeClock, FakeClock } from '../helpers/fake-clock';
import { FakeConnector, type FakeConn, type OpenOutcome } from '../helpers/fake-connector';
import { checkInvariants, errorCode, observe } from '../helpers/invariants';

/** Nothing listens on port 1 of the loopback: the replica's health probe fails at once. */
const NOWHERE = 'postgres://kcm@127.0.0.1:1/kcm';

/** How a fake connection answers a statement: rows after `ms`, or an error with `code` after `ms`. */
type Answer = { rows: unknown[]; ms: number } | { code: string; ms: number };

interface Setup {
  manager: ConnectionManager;
  clock: FakeClock;
  /** Statements each side ran, in order. */
  ran: { primary: string[]; replica: string[] };
}

const live: Setup[] = [];

/**
 * A manager whose primary and replica open fake connections (`primaryOutcome`, `replicaOutcome`)
 * that answer each statement per `answer`; the replica is put in rotation by hand.
 */
async function fakeManager(
  primaryOutcome: OpenOutcome,
  answer: (side: 'primary' | 'replica', sql: string) => Answer,
  pool: PoolOptions = {},
): Promise<Setup> {
  const clock = new FakeClock();
  const ran: Setup['ran'] = { primary: [], replica: [] };
  let opened = 0;
  const config = resolveOptions({
    connection: NOWHERE,
    replicas: [{ name: 'r1', connection: NOWHERE }],
    pool: { min: 0, max: 2, acquireTimeoutMs: 200, createTimeoutMs: 10_000, ...pool },
    logger: silentLogger,
  });
  const manager = new ConnectionManager(config, {
    clock,
    connector: () => {
      const side = opened++ === 0 ? 'primary' : 'replica';
      const connector = new FakeConnector(clock);
      connector.defaultOutcome = side === 'primary' ? primaryOutcome : 'ok';
      const open = connector.open.bind(connector);
      connector.open = async (timeoutMs: number) => {
        const conn = await open(timeoutMs);
        // knex's pg dialect calls query(config, callback).
        (conn as FakeConn & { query: unknown }).query = (query: { text: string }, callback: (error: unknown, result?: unknown) => void) => {
          ran[side].push(query.text);
          const a = answer(side, query.text);
          clock.setTimer(() => ('code' in a ? callback(Object.assign(new Error(`fake ${a.code}`), { code: a.code })) : callback(null, { rows: a.rows, command: 'SELECT' })), a.ms);
        };
        return conn;
      };
      return connector as unknown as Connector<PgClient>;
    },
  });
  const internals = (manager as unknown as { main: { router: Router; health: ReplicaHealthMonitor } }).main;
  await internals.health.firstRound;
  await internals.health.stop();
  internals.router.markHealthy(internals.router.replicas[0]);
  const setup = { manager, clock, ran };
  live.push(setup);
  return setup;
}

afterEach(() => closeOnFakeClock(live.splice(0)));

const REFUSED = { code: '25006', ms: 150 };

describe('readKnex statement routing', () => {
  test('a read refused with 25006 runs on the primary, is learned from, and the next goes to the primary directly', async () => {
    const { manager, clock, ran } = await fakeManager('ok', (side) => (side === 'replica' ? REFUSED : { rows: [{ id: 1 }], ms: 10 }));
    const first = observe(manager.readKnex.raw('SELECT tick() AS id'));
    expect(await advanceUntil(clock, () => first.state !== 'pending', 1_000)).toBe(160);
    expect(first.state).toBe('resolved');
    expect(ran).toEqual({ primary: ['SELECT tick() AS id'], replica: ['SELECT tick() AS id'] });
    expect(manager.getPoolStats().routing).toMatchObject({ readOnlyRefusals: 1, learned: { functions: ['tick'] } });

    const second = observe(manager.readKnex.raw('SELECT tick() AS again'));
    expect(await advanceUntil(clock, () => second.state !== 'pending', 1_000)).toBe(10);
    expect(ran.replica).toEqual(['SELECT tick() AS id']);
    expect(ran.primary).toEqual(['SELECT tick() AS id', 'SELECT tick() AS again']);
    expect(manager.getPoolStats().replicas?.r1.healthy).toBe(true);
    checkInvariants({ stats: () => manager.getPoolStats() });
  });

  test('the retry gets what is left of the deadline fixed at the lease, not a fresh acquireTimeoutMs', async () => {
    const { manager, clock } = await fakeManager('hang', () => REFUSED);
    const start = clock.now();
    const result = observe(manager.readKnex.raw('SELECT tick()'));
    // Refused at 150 ms; the primary cannot open a connection, and the lease's 200 ms end at 200.
    expect(await advanceUntil(clock, () => result.state !== 'pending', 1_000)).toBe(200);
    expect(clock.now() - start).toBe(200);
    expect(errorCode(result.error)).toBe('E_ACQUIRE_TIMEOUT');
    expect(manager.getPoolStats().routing?.readOnlyRefusals).toBe(1);
    const stats = checkInvariants({ stats: () => manager.getPoolStats() });
    expect(stats.inUse).toBe(0);
  });

  test('a write and a statement failing for its own reasons: the write never touches the replica, the error reaches the caller', async () => {
    const { manager, clock, ran } = await fakeManager('ok', (_side, sql) => (sql.startsWith('select "missing"') ? { code: '42P01', ms: 5 } : { rows: [], ms: 5 }));
    const write = observe(manager.readKnex('t').insert({ a: 1 }));
    await advanceUntil(clock, () => write.state !== 'pending', 1_000);
    expect(write.state).toBe('resolved');
    expect(ran.replica).toEqual([]);
    expect(ran.primary).toEqual(['insert into "t" ("a") values ($1)']);

    const missing = observe(manager.readKnex.select('missing').from('nowhere'));
    await advanceUntil(clock, () => missing.state !== 'pending', 1_000);
    expect(missing.state).toBe('rejected');
    expect((missing.error as { code?: string }).code).toBe('42P01');
    expect(ran.replica).toEqual(['select "missing" from "nowhere"']);
    expect(ran.primary).toHaveLength(1);
    expect(manager.getPoolStats().routing?.readOnlyRefusals).toBe(0);
  });
});
