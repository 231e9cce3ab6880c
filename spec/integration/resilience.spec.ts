/**
 * The resilience policies against a real PostgreSQL of this file's own, stopped and started:
 * the circuit breaker fails callers at once while the server is down and serves again after it
 * is back without a restart (and, turned off, callers wait as before); warm-up; pool.minIdle;
 * and the pool.validate hook.
 */
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager } from '../../lib';
import { startPostgres, type TestPostgres } from '../../scripts/test-db';
import { until } from '../helpers/poll';

const silent = winston.createLogger({ silent: true });
let pg: TestPostgres;

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  await pg?.remove();
}, 60_000);

afterEach(async () => {
  await closeConnectionInstance();
});

async function serves(manager: ConnectionManager): Promise<boolean> {
  try {
    await manager.withConnection((conn) => conn.query('select 1'), { timeoutMs: 1_000 });
    return true;
  } catch {
    return false;
  }
}

/** Milliseconds until 100 concurrent callers have all been answered, and their error codes. */
async function hundredCallers(manager: ConnectionManager): Promise<{ ms: number; codes: Set<unknown> }> {
  const started = performance.now();
  const outcomes = await Promise.allSettled(Array.from({ length: 100 }, () => manager.getConnection()));
  const ms = performance.now() - started;
  return { ms, codes: new Set(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: unknown }).code : 'served'))) };
}

describe('circuit breaker on a real server', () => {
  test('while the server is down callers fail in well under acquireTimeoutMs; once it is back they are served without a restart', async () => {
    const acquireTimeoutMs = 10_000;
    const manager = getConnectionInstance({
      connection: { connectionString: pg.url, application_name: 'kcm-breaker' },
      pool: { min: 1, max: 4, acquireTimeoutMs },
      retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 100 },
      circuitBreaker: { failureThreshold: 3, openMs: 300 },
      logger: silent,
    });
    await manager.ready();
    await pg.stop('fast');
    // The idle connection dies with the server; the pool's opens then fail until the circuit opens.
    await until(() => manager.getPoolStats().circuit.state !== 'closed', { timeoutMs: 15_000, intervalMs: 10, description: 'the circuit to open' });
    const circuit = manager.getPoolStats().circuit;
    expect(circuit.since).toBeInstanceOf(Date);
    expect(circuit.failures).toBeGreaterThanOrEqual(3);
    expect(circuit.lastError).toEqual(expect.any(String));

    const { ms, codes } = await hundredCallers(manager);
    process.stdout.write(`[resilience] 100 callers failed with the breaker on in ${ms.toFixed(1)} ms (${[...codes].join(',')})\n`);
    expect(codes).toEqual(new Set(['E_DB_UNAVAILABLE']));
    expect(ms).toBeLessThan(acquireTimeoutMs / 4);

    await pg.start();
    await until(() => serves(manager), { timeoutMs: 20_000, intervalMs: 20, description: 'the pool to serve again' });
    expect(manager.getPoolStats().circuit.state).toBe('closed');
    await manager.ready();
  }, 60_000);

  test('with circuitBreaker: false, the same callers wait for the retries instead (for comparison)', async () => {
    const manager = getConnectionInstance({
      connection: { connectionString: pg.url, application_name: 'kcm-breaker-off' },
      pool: { min: 0, max: 4, acquireTimeoutMs: 3_000 },
      retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 100 },
      circuitBreaker: false,
      logger: silent,
    });
    await pg.stop('fast');
    try {
      const { ms, codes } = await hundredCallers(manager);
      process.stdout.write(`[resilience] 100 callers failed with the breaker off in ${ms.toFixed(1)} ms (${[...codes].join(',')})\n`);
      expect(codes.has('E_DB_UNAVAILABLE')).toBe(false);
      expect(codes.has('served')).toBe(false);
      expect(manager.getPoolStats().circuit).toEqual({ state: 'closed', since: null, failures: 0 });
    } finally {
      await pg.start();
    }
  }, 60_000);
});

describe('warm-up and minIdle on a real server', () => {
  test('warmUp(20) opens 20 sessions in parallel', async () => {
    const manager = getConnectionInstance({ connection: pg.url, pool: { min: 0, max: 25 }, logger: silent });
    const started = performance.now();
    expect(await manager.warmUp(20, { timeoutMs: 20_000 })).toBe(20);
    const ms = performance.now() - started;
    process.stdout.write(`[resilience] warm-up of 20 connections took ${ms.toFixed(1)} ms\n`);
    expect(manager.getPoolStats()).toMatchObject({ total: 20, idle: 20 });
    const { rows } = await manager.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where backend_type = $1 and datname = current_database()', ['client backend']);
    expect(rows[0].n).toBeGreaterThanOrEqual(20);
  }, 30_000);

  test('pool.minIdle keeps that many idle beside the ones in use', async () => {
    const manager = getConnectionInstance({ connection: pg.url, pool: { min: 0, max: 6, minIdle: 2 }, logger: silent });
    await until(() => manager.getPoolStats().idle === 2, { timeoutMs: 10_000, intervalMs: 10, description: 'two idle' });
    const held = await Promise.all([manager.getConnection(), manager.getConnection(), manager.getConnection()]);
    await until(() => manager.getPoolStats().idle === 2, { timeoutMs: 10_000, intervalMs: 10, description: 'two idle beside three in use' });
    expect(manager.getPoolStats()).toMatchObject({ inUse: 3, total: 5 });
    for (const conn of held) await manager.releaseConnection(conn);
  }, 30_000);
});

describe('pool.validate on a real server', () => {
  test('replaces SELECT 1 for isConnectionValid(); false or a throw counts as invalid', async () => {
    let verdict: 'ok' | 'no' | 'throw' = 'ok';
    const seen: string[] = [];
    const manager = getConnectionInstance({
      connection: pg.url,
      pool: {
        min: 0,
        max: 2,
        validate: async (conn) => {
          const { rows } = await conn.query<{ v: string }>('select current_setting($1) as v', ['server_version_num']);
          seen.push(rows[0].v);
          if (verdict === 'throw') throw new Error('health check crashed');
          return verdict === 'ok';
        },
      },
      logger: silent,
    });
    const conn = await manager.getConnection();
    expect(await manager.isConnectionValid(conn)).toBe(true);
    expect(seen).toHaveLength(1);
    verdict = 'no';
    expect(await manager.isConnectionValid(conn)).toBe(false);
    await manager.releaseConnection(conn);
    const other = await manager.getConnection();
    verdict = 'throw';
    expect(await manager.isConnectionValid(other)).toBe(false);
    await manager.releaseConnection(other);
    expect(seen.length).toBe(3);
    expect(manager.getPoolStats().counters.validationFailures).toBe(2);
  }, 30_000);

  test('runs on borrow after validationIdleThresholdMs, and a failing verdict retires the idle connection', async () => {
    let calls = 0;
    let healthy = true;
    const manager = getConnectionInstance({
      connection: pg.url,
      pool: { min: 0, max: 2, validationIdleThresholdMs: 1, validate: () => (calls++, healthy) },
      logger: silent,
    });
    await manager.withConnection((c) => c.query('select 1'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await manager.withConnection((c) => c.query('select 1'));
    expect(calls).toBe(1);
    healthy = false;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await manager.withConnection((c) => c.query('select 1'));
    expect(calls).toBe(2);
    expect(manager.getPoolStats().counters.validationFailures).toBe(1);
  }, 30_000);

  test('a hook slower than validationTimeoutMs counts as invalid', async () => {
    const manager = getConnectionInstance({
      connection: pg.url,
      pool: { min: 0, max: 2, validationTimeoutMs: 200, validate: async (conn) => (await conn.query('select pg_sleep(2)'), true) },
      logger: silent,
    });
    const conn = await manager.getConnection();
    const started = performance.now();
    expect(await manager.isConnectionValid(conn)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_500);
    await manager.releaseConnection(conn);
  }, 30_000);
});
