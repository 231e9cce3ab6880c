/**
 * The admin triggers against a real server: resetPool, triggerExpireConnections,
 * triggerRenewConnections and isConnectionValid — what each closes, what it returns, that the
 * pool never drops below what it promises, and that none of them fails a caller, even with 64
 * workers querying while the triggers run over and over.
 */
import {
  closeConnectionInstance,
  ConnectionManager,
  getConnectionInstance,
  resolveOptions,
  type PooledConnection,
  type PoolStats,
} from '../../lib';
import { SystemClock } from '../../lib/pool/clock';
import { countBackends, testConfig as config, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { FaultProxy } from '../helpers/fault-proxy';
import { until } from '../helpers/poll';
import { capturingLogger } from '../helpers/silent-logger';

const url = testDatabaseUrl();

/** Managers built directly (with a skewed clock) rather than through the singleton. */
const direct: ConnectionManager[] = [];
let proxy: FaultProxy | undefined;

afterEach(async () => {
  await closeConnectionInstance();
  await Promise.all(direct.splice(0).map((m) => m.close()));
  await proxy?.close();
  proxy = undefined;
});

/**
 * The real clock with an adjustable offset on its readings (timers stay real): lets a test make
 * connections hours old without waiting, while keeping the housekeeping timer far away.
 */
class SkewedClock extends SystemClock {
  offsetMs = 0;
  override now(): number {
    return super.now() + this.offsetMs;
  }
  override wallNow(): number {
    return super.wallNow() + this.offsetMs;
  }
  override wallNowNs(): bigint {
    return super.wallNowNs() + BigInt(Math.round(this.offsetMs)) * 1_000_000n;
  }
}

/** The N of `conn_<N>_<ns>`. */
function seq(id: string): number {
  const match = /^conn_(\d+)_\d+$/.exec(id);
  if (!match) throw new Error(`unexpected connection id ${id}`);
  return Number(match[1]);
}

function ids(stats: PoolStats): string[] {
  return stats.connections.map((c) => c.id);
}

/** The documented invariants of a stats snapshot; throws with the snapshot when one is broken. */
function checkInvariants(stats: PoolStats): PoolStats {
  const ok =
    stats.total === stats.idle + stats.inUse &&
    stats.total + stats.pending <= stats.max &&
    stats.connections.length === stats.total;
  if (!ok) {
    const { connections, ...rest } = stats;
    throw new Error(`pool invariants broken: ${JSON.stringify({ ...rest, ids: connections.map((c) => c.id) })}`);
  }
  return stats;
}

async function pidOf(conn: PooledConnection): Promise<number> {
  return (await conn.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
}

function sessionExists(pid: number): Promise<boolean> {
  return withAdminClient(url, async (client) => {
    const { rows } = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    return rows.length > 0;
  });
}

/** Samples `fn` on every event-loop turn until the returned stop function is called. */
function sampleWhile(fn: () => void): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      fn();
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

describe('resetPool', () => {
  test('closes every connection, refills to min with new ones, and closes a checked-out one on release', async () => {
    const appName = 'kcm-triggers-reset';
    const manager = getConnectionInstance(config(appName, { min: 2, max: 4 }));
    await manager.ready();
    const held = await manager.getConnection();
    const heldPid = await pidOf(held);
    const before = ids(manager.getPoolStats());
    const highest = Math.max(...before.map(seq));

    await manager.resetPool();

    const during = checkInvariants(manager.getPoolStats());
    expect(during.total).toBeGreaterThanOrEqual(2);
    // Only the checked-out connection survives, until it is released; it still works meanwhile.
    expect(during.connections.filter((c) => before.includes(c.id)).map((c) => c.id)).toEqual([held.id]);
    for (const c of during.connections) if (c.id !== held.id) expect(seq(c.id)).toBeGreaterThan(highest);
    await held.query('select 1');

    await manager.releaseConnection(held);
    expect(ids(manager.getPoolStats())).not.toContain(held.id);
    await until(async () => !(await sessionExists(heldPid)), { timeoutMs: 10_000, intervalMs: 20, description: 'the released session to end' });
    await until(() => manager.getPoolStats().total === 2, { timeoutMs: 10_000, description: 'the refill to min' });
    const after = checkInvariants(manager.getPoolStats());
    for (const id of ids(after)) expect(seq(id)).toBeGreaterThan(highest);
    expect(await countBackends(url, appName)).toBe(2);
  });

  test('requests arriving during a reset are served, none rejected', async () => {
    const manager = getConnectionInstance(config('kcm-triggers-reset-busy', { min: 2, max: 4 }));
    await manager.ready();
    const highest = Math.max(...ids(manager.getPoolStats()).map(seq));
    const query = () => manager.withConnection(async (conn) => (await conn.query('select 1'), conn.id));

    const early = Array.from({ length: 10 }, query);
    const reset = manager.resetPool();
    const alongside = Array.from({ length: 10 }, query);
    await reset;
    const late = Array.from({ length: 10 }, query);

    const results = await Promise.allSettled([...early, ...alongside, ...late]);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    // Requests made after the reset finished run on new connections only.
    for (const id of await Promise.all(late)) expect(seq(id)).toBeGreaterThan(highest);
  });
});

describe('triggerExpireConnections', () => {
  test('idle timeout closes down to min and no further; the sweep then has nothing to retire', async () => {
    const manager = getConnectionInstance(config('kcm-triggers-idle', { min: 2, max: 4, idleTimeoutMs: 200, maxLifetimeMs: 0 }));
    await manager.ready();
    const leases = await Promise.all(Array.from({ length: 4 }, () => manager.getConnection()));
    for (const lease of leases) await manager.releaseConnection(lease);
    expect(manager.getPoolStats().total).toBe(4);

    let lowest = Number.POSITIVE_INFINITY;
    const condition = () => {
      const s = checkInvariants(manager.getPoolStats());
      lowest = Math.min(lowest, s.total);
      return s.total === 2;
    };
    // Housekeeping closes the surplus by itself.
    await until(condition, { timeoutMs: 10_000, description: 'the idle surplus to be closed' });
    // Wait (by the stats' own clock) until the remaining two are idle past the timeout too.
    await until(() => manager.getPoolStats().connections.every((c) => c.idleMs >= 200), { timeoutMs: 10_000, description: 'the rest to pass idleTimeoutMs' });

    expect(await manager.triggerExpireConnections()).toBe(0);
    const stats = checkInvariants(manager.getPoolStats());
    expect(stats.total).toBe(2);
    expect(lowest).toBe(2);
    expect(stats.counters.idleClosed).toBe(2);
  });

  test('max lifetime replaces connections as they age, never leaving fewer than min open or opening', async () => {
    const appName = 'kcm-triggers-lifetime';
    const manager = getConnectionInstance(config(appName, { min: 2, max: 4, maxLifetimeMs: 300, idleTimeoutMs: 0 }));
    await manager.ready();
    const first = ids(manager.getPoolStats());

    let lowest = Number.POSITIVE_INFINITY;
    await until(
      () => {
        const s = checkInvariants(manager.getPoolStats());
        lowest = Math.min(lowest, s.total + s.pending);
        return s.total === 2 && s.connections.every((c) => !first.includes(c.id));
      },
      { timeoutMs: 10_000, description: 'every first connection to be replaced' },
    );
    expect(lowest).toBeGreaterThanOrEqual(2);
    expect(manager.getPoolStats().counters.expired).toBeGreaterThanOrEqual(2);
    expect(await countBackends(url, appName)).toBeLessThanOrEqual(4);
  });

  test('returns how many it retired: idle past idleTimeoutMs down to min, past maxLifetimeMs replaced, checked-out ones on release', async () => {
    const appName = 'kcm-triggers-expire-count';
    const clock = new SkewedClock();
    // Long intervals keep the housekeeping timer (a quarter of the shortest) out of the test; the
    // skewed clock ages the connections instead.
    const idleTimeoutMs = 1_800_000;
    const maxLifetimeMs = 3_600_000;
    const manager = new ConnectionManager(resolveOptions(config(appName, { min: 2, max: 5, idleTimeoutMs, maxLifetimeMs })), { clock });
    direct.push(manager);
    await manager.ready();
    const leases = await Promise.all(Array.from({ length: 4 }, () => manager.getConnection()));
    for (const lease of leases) await manager.releaseConnection(lease);
    expect(manager.getPoolStats().total).toBe(4);

    // Idle past the idle timeout, well within the lifetime: closed down to min, and no further.
    clock.offsetMs += idleTimeoutMs + 1;
    expect(await manager.triggerExpireConnections()).toBe(2);
    expect(checkInvariants(manager.getPoolStats())).toMatchObject({ total: 2, counters: { idleClosed: 2, expired: 0 } });
    expect(await manager.triggerExpireConnections()).toBe(0);
    expect(manager.getPoolStats().total).toBe(2);

    // Past the lifetime: the idle one is replaced now, the checked-out one when it comes back.
    const survivors = ids(manager.getPoolStats());
    const held = await manager.getConnection();
    const heldPid = await pidOf(held);
    clock.offsetMs += maxLifetimeMs;
    expect(await manager.triggerExpireConnections()).toBe(2);
    await until(() => manager.getPoolStats().total === 2 && manager.getPoolStats().idle === 1, { timeoutMs: 10_000, description: 'the idle one to be replaced' });
    const midway = checkInvariants(manager.getPoolStats());
    expect(ids(midway).filter((id) => survivors.includes(id))).toEqual([held.id]);
    await held.query('select 1');

    await manager.releaseConnection(held);
    await until(
      () => manager.getPoolStats().total === 2 && ids(manager.getPoolStats()).every((id) => !survivors.includes(id)),
      { timeoutMs: 10_000, description: 'the released one to be replaced' },
    );
    expect(manager.getPoolStats().counters.expired).toBe(2);
    await until(async () => !(await sessionExists(heldPid)), { timeoutMs: 10_000, intervalMs: 20, description: 'the retired session to end' });
    expect(await countBackends(url, appName)).toBe(2);
  });
});

describe('triggerRenewConnections', () => {
  test('replaces every connection without lowering the open count; a checked-out one is replaced on release', async () => {
    const appName = 'kcm-triggers-renew';
    const manager = getConnectionInstance(config(appName, { min: 3, max: 6 }));
    await manager.ready();
    const held = await manager.getConnection();
    const heldPid = await pidOf(held);
    const before = ids(manager.getPoolStats());
    expect(before).toHaveLength(3);

    let lowest = Number.POSITIVE_INFINITY;
    const stop = sampleWhile(() => {
      lowest = Math.min(lowest, checkInvariants(manager.getPoolStats()).total);
    });
    let renewed: number;
    try {
      renewed = await manager.triggerRenewConnections();
    } finally {
      await stop();
    }
    expect(renewed).toBe(3);
    expect(lowest).toBeGreaterThanOrEqual(3);

    const midway = checkInvariants(manager.getPoolStats());
    expect(midway.total).toBe(3);
    expect(ids(midway).filter((id) => before.includes(id))).toEqual([held.id]);
    expect(midway.counters.renewed).toBe(2);
    await held.query('select 1');

    await manager.releaseConnection(held);
    await until(
      () => manager.getPoolStats().total === 3 && ids(manager.getPoolStats()).every((id) => !before.includes(id)),
      { timeoutMs: 10_000, description: 'the released one to be replaced' },
    );
    expect(manager.getPoolStats().counters.renewed).toBe(3);
    await until(async () => !(await sessionExists(heldPid)), { timeoutMs: 10_000, intervalMs: 20, description: 'the renewed session to end' });
    expect(await countBackends(url, appName)).toBe(3);
  });
  test('when no replacement can be opened, every old connection keeps serving and none counts as replaced', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port) });
    const manager = getConnectionInstance({
      ...config('kcm-triggers-renew-refused', { min: 3, max: 6 }),
      connection: { connectionString: proxy.rewrite(url), application_name: 'kcm-triggers-renew-refused' },
      retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 50 },
    });
    await manager.ready();
    const before = ids(manager.getPoolStats());

    // New connections are refused; the ones already open are unaffected.
    await proxy.setMode('refuse');
    expect(await manager.triggerRenewConnections()).toBe(0);
    const stats = checkInvariants(manager.getPoolStats());
    expect(ids(stats)).toEqual(before);
    expect(stats.counters.renewed).toBe(0);
    const used = await Promise.all(before.map(() => manager.withConnection(async (c) => (await c.query('select 1'), c.id))));
    for (const id of used) expect(before).toContain(id);

    // Once the server takes connections again, a renewal replaces them all.
    await proxy.setMode('pass');
    expect(await manager.triggerRenewConnections()).toBe(3);
    await until(() => ids(manager.getPoolStats()).every((id) => !before.includes(id)), { timeoutMs: 10_000, description: 'every connection to be replaced' });
    expect(manager.getPoolStats().counters.renewed).toBe(3);
  });
});

describe('what the admin operations resolve with', () => {
  test('renewal at min = max = 5 resolves with all 5 replacements open; a reset resolves refilled to 5', async () => {
    const appName = 'kcm-triggers-settled';
    const manager = getConnectionInstance(config(appName, { min: 5, max: 5 }));
    await manager.ready();
    const before = ids(manager.getPoolStats());
    expect(before).toHaveLength(5);

    expect(await manager.triggerRenewConnections()).toBe(5);
    const renewed = checkInvariants(manager.getPoolStats());
    expect(renewed).toMatchObject({ total: 5, idle: 5, pending: 0 });
    expect(ids(renewed).some((id) => before.includes(id))).toBe(false);

    expect(await manager.resetPool()).toBe(5);
    const reset = checkInvariants(manager.getPoolStats());
    expect(reset).toMatchObject({ total: 5, pending: 0 });
    expect(ids(reset).some((id) => ids(renewed).includes(id))).toBe(false);
    expect(await countBackends(url, appName)).toBe(5);
  });

  test('when the server refuses new connections, a reset rejects with E_CONNECT at pool.acquireTimeoutMs and a renewal at max stops at the first refusal', async () => {
    proxy = await FaultProxy.start({ targetPort: Number(new URL(url).port) });
    const appName = 'kcm-triggers-refused-max';
    const manager = getConnectionInstance({
      ...config(appName, { min: 3, max: 3, acquireTimeoutMs: 1_500 }),
      connection: { connectionString: proxy.rewrite(url), application_name: appName },
      retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 50 },
      admin: { port: 0, token: 'refused-test-token' },
    });
    await manager.ready();
    const endpoint = await manager.adminReady();
    const before = ids(manager.getPoolStats());
    await proxy.setMode('refuse');

    // At max the renewal closes one connection to make room; its replacement is refused.
    const renewal = await manager.triggerRenewConnections().then(() => undefined, (error: unknown) => error);
    expect(renewal).toMatchObject({ code: 'E_CONNECT' });
    expect(String((renewal as Error).message)).toContain('could not be replaced');
    const afterRenewal = checkInvariants(manager.getPoolStats());
    expect(afterRenewal.counters.renewed).toBe(1);
    // The two it did not reach keep serving.
    expect(ids(afterRenewal).filter((id) => before.includes(id))).toHaveLength(afterRenewal.total);

    const reset = await manager.resetPool().then(() => undefined, (error: unknown) => error);
    expect(reset).toMatchObject({ code: 'E_CONNECT' });
    expect(String((reset as Error).message)).toContain('pool.acquireTimeoutMs=1500');
    // The admin endpoint says so too: the server refused, not a bug.
    const reply = await fetch(`${endpoint.url}/reset`, { method: 'POST', headers: { Authorization: 'Bearer refused-test-token' } });
    expect(reply.status).toBe(503);
    expect(await reply.json()).toMatchObject({ ok: false, error: { code: 'E_CONNECT' } });

    // Once the server takes connections again, the pool refills by itself.
    await proxy.setMode('pass');
    await until(() => manager.getPoolStats().total === 3, { timeoutMs: 10_000, description: 'the refill once the server answers' });
  });
});

describe('isConnectionValid', () => {
  test('true for a live connection, false for one whose session was killed or that was released, never throws', async () => {
    const appName = 'kcm-triggers-valid';
    const manager = getConnectionInstance(config(appName, { min: 1, max: 2 }));
    const conn = await manager.getConnection();
    expect(await manager.isConnectionValid(conn)).toBe(true);

    const pid = await pidOf(conn);
    await withAdminClient(url, (client) => client.query('SELECT pg_terminate_backend($1)', [pid]));
    await until(async () => !(await sessionExists(pid)), { timeoutMs: 10_000, intervalMs: 20, description: 'the session to end' });
    expect(await manager.isConnectionValid(conn)).toBe(false);
    await manager.releaseConnection(conn);
    expect(ids(manager.getPoolStats())).not.toContain(conn.id);

    // Anything else is simply not a valid connection of this manager.
    expect(await manager.isConnectionValid(conn)).toBe(false);
    expect(await manager.isConnectionValid({} as PooledConnection)).toBe(false);
    expect(await manager.isConnectionValid(null as unknown as PooledConnection)).toBe(false);
    await manager.withConnection(async (other) => expect(await manager.isConnectionValid(other)).toBe(true));
  });
});

describe('triggers under load', () => {
  test('64 workers querying while reset, expire and renew run over and over: no failed query, invariants on every sample', async () => {
    const appName = 'kcm-triggers-load';
    const max = 10;
    const manager = getConnectionInstance(config(appName, { min: 4, max, maxLifetimeMs: 500, idleTimeoutMs: 300 }));
    await manager.ready();

    const failures: unknown[] = [];
    let done = false;
    const iterations = 25;
    const workers = Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < iterations; i++) {
        try {
          if ((w + i) % 3 === 0) await manager.knex.raw('select 1');
          else if ((w + i) % 3 === 1) await manager.withConnection((conn) => conn.query('select $1::int as n', [i]));
          else await manager.withConnection((conn) => conn.db.raw('select 1'));
        } catch (error) {
          failures.push(error);
        }
      }
    });
    const allWorkers = Promise.all(workers).finally(() => (done = true));

    let samples = 0;
    let peakBackends = 0;
    const stopSampling = sampleWhile(() => {
      checkInvariants(manager.getPoolStats());
      samples++;
    });
    const counts = { reset: 0, expired: 0, renewed: 0 };
    // One trigger per step, in turn; each step waits for some work, so the workers make progress
    // between triggers and every trigger meets connections the previous one did not touch.
    const triggers = [
      async () => {
        await manager.resetPool();
        counts.reset++;
      },
      async () => {
        counts.expired += await manager.triggerExpireConnections();
      },
      async () => {
        counts.renewed += await manager.triggerRenewConnections();
      },
    ];
    try {
      for (let step = 0; !done && step < 1_000; step++) {
        await triggers[step % triggers.length]();
        checkInvariants(manager.getPoolStats());
        peakBackends = Math.max(peakBackends, await countBackends(url, appName));
        const acquired = manager.getPoolStats().counters.acquired;
        await until(() => done || manager.getPoolStats().counters.acquired >= acquired + 20, { timeoutMs: 30_000, intervalMs: 2 });
      }
      await allWorkers;
    } finally {
      await stopSampling();
    }

    expect(failures).toEqual([]);
    expect(counts.reset).toBeGreaterThan(0);
    expect(samples).toBeGreaterThan(0);
    expect(peakBackends).toBeLessThanOrEqual(max);
    const stats = checkInvariants(manager.getPoolStats());
    expect(stats.counters.acquired).toBe(stats.counters.released);
    expect(stats.inUse).toBe(0);
    expect(await countBackends(url, appName)).toBeLessThanOrEqual(max);
  });
});

describe('admin operations run one at a time', () => {
  test('reset, renew and expire asked for at once under load: each connection replaced exactly once, counts right, never more than max backends', async () => {
    const appName = 'kcm-triggers-serialised';
    const max = 8;
    const clock = new SkewedClock();
    const capture = capturingLogger('info');
    const manager = new ConnectionManager(
      resolveOptions({ ...config(appName, { min: 4, max, maxLifetimeMs: 3_600_000, idleTimeoutMs: 0 }), logger: capture.logger }),
      { clock },
    );
    direct.push(manager);
    await manager.ready();

    let done = false;
    const failures: unknown[] = [];
    const workers = Array.from({ length: 24 }, async (_, w) => {
      for (let i = 0; !done && i < 2_000; i++) {
        try {
          await manager.withConnection((conn) => conn.query('select $1::int as n', [w]));
        } catch (error) {
          failures.push(error);
        }
      }
    });
    let peakBackends = 0;
    const sampling = (async () => {
      while (!done) peakBackends = Math.max(peakBackends, await countBackends(url, appName));
    })();
    await until(() => manager.getPoolStats().counters.acquired >= 100, { timeoutMs: 10_000, description: 'the load to start' });

    // Every connection open now is past its lifetime from here on.
    const original = new Set(ids(manager.getPoolStats()));
    clock.offsetMs = 4_000_000;
    const [expired, reset, renewed] = await Promise.all([
      manager.triggerExpireConnections(),
      manager.resetPool(),
      manager.triggerRenewConnections(),
    ]);
    done = true;
    await Promise.all(workers);
    await sampling;
    await until(() => manager.getPoolStats().inUse === 0 && manager.getPoolStats().pending === 0, { description: 'the pool to settle' });
    await new Promise((resolve) => setImmediate(resolve));

    expect(failures).toEqual([]);
    expect(peakBackends).toBeLessThanOrEqual(max);
    const closedIds = capture.lines.filter((l) => / closed \(/.test(l.message)).map((l) => /Connection (\S+) closed/.exec(l.message)?.[1]);
    // No connection closed twice, and every one open before the operations closed once.
    expect(new Set(closedIds).size).toBe(closedIds.length);
    for (const id of original) expect(closedIds).toContain(id);
    const stats = checkInvariants(manager.getPoolStats());
    expect(stats.counters.destroyed).toBe(closedIds.length);
    // The expiry sweep ran first and marked the originals; the reset and the renewal each replaced
    // what the one before had opened, and nothing was counted under two reasons.
    expect(expired).toBe(original.size);
    expect(stats.counters.expired).toBe(expired);
    expect(stats.counters.renewed).toBe(renewed);
    const resetClosures = capture.lines.filter((l) => l.meta.reason === 'reset').length;
    expect(resetClosures).toBeGreaterThanOrEqual(reset);
    expect(stats.counters.destroyed).toBe(expired + renewed + resetClosures);
    expect(stats.total).toBeGreaterThanOrEqual(4);
    for (const id of ids(stats)) expect(original.has(id)).toBe(false);
    expect(await countBackends(url, appName)).toBe(stats.total);
  });
});
