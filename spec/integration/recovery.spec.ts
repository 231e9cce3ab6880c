/**
 * The database goes away and comes back: callers are told within their own deadlines (with the
 * refusal as the cause), the pool keeps trying at a bounded rate instead of spinning, and it serves
 * again once the server is back, without recreating the manager. Errors that retrying cannot fix
 * (a wrong password, an unknown database) fail at once.
 *
 * These tests stop and start a PostgreSQL server of their own (scripts/test-db.ts); only the
 * unknown-database test uses the shared one.
 */
import { writeFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Client } from 'pg';
import winston from 'winston';
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
} from '../../lib';
import { startPostgres, type TestPostgres } from '../../scripts/test-db';
import { testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';

const silent = winston.createLogger({ silent: true });
/** What a client sees from a server that is down or going down. */
const REFUSALS = ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03'];
const PASSWORD_ROLE = 'kcm_password_role';

let pg: TestPostgres;

beforeAll(async () => {
  pg = await startPostgres();
  // A role that must log in with a password over TCP (the rest of the cluster trusts everyone).
  await withAdminClient(pg.url, (client) => client.query(`CREATE ROLE ${PASSWORD_ROLE} LOGIN PASSWORD 'right-password'`));
  const hba = path.join(pg.dataDir, 'pg_hba.conf');
  const rules = await readFile(hba, 'utf8');
  await writeFile(hba, `host all ${PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n${rules}`);
  await pg.pgCtl(['reload']);
  // The reload is asynchronous: wait until a wrong password is refused.
  await until(async () => (await loginError(pg.url, 'wrong-password')) === '28P01', {
    timeoutMs: 10_000,
    intervalMs: 20,
    description: 'pg_hba.conf to require a password',
  });
}, 60_000);

afterAll(async () => {
  await pg?.remove();
}, 60_000);

afterEach(async () => {
  await closeConnectionInstance();
});

/** The SQLSTATE of a failed login as PASSWORD_ROLE with `password`, or undefined when it succeeds. */
async function loginError(serverUrl: string, password: string): Promise<string | undefined> {
  const { port } = new URL(serverUrl);
  const client = new Client({ host: '127.0.0.1', port: Number(port), user: PASSWORD_ROLE, password, database: 'postgres' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (error) {
    await client.end().catch(() => undefined);
    return String((error as { code?: unknown }).code);
  }
}

/** How `ready()` failed, and how many connect attempts had failed by the moment it did. */
async function readyFailure(manager: ConnectionManager): Promise<{ error: { code?: string; cause?: unknown; message: string } | undefined; createErrorsAtRejection: number }> {
  let createErrorsAtRejection = -1;
  const error = await manager.ready().then(
    () => undefined,
    (e: unknown) => {
      createErrorsAtRejection = manager.getPoolStats().counters.createErrors;
      return e as { code?: string; cause?: unknown; message: string };
    },
  );
  return { error, createErrorsAtRejection };
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}

async function serves(manager: ConnectionManager): Promise<boolean> {
  try {
    await manager.withConnection((conn) => conn.query('select 1'), { timeoutMs: 1_000 });
    return true;
  } catch {
    return false;
  }
}

describe('the server stops and starts again', () => {
  test('callers are told with the refusal as cause, the pool never spins, and it serves again', async () => {
    const appName = 'kcm-recovery-restart';
    const retry = { attempts: 3, initialDelayMs: 50, maxDelayMs: 250 };
    const min = 2;
    const manager = getConnectionInstance({
      connection: { connectionString: pg.url, application_name: appName },
      pool: { min, max: 4, acquireTimeoutMs: 10_000 },
      retry,
      logger: silent,
    });
    await manager.ready();
    const held = await manager.getConnection();
    await held.query('select 1');
    const before = manager.getPoolStats().connections.map((c) => c.id);

    await pg.stop('fast');

    // The holder learns from its own query; giving the connection back retires it.
    await expect(held.query('select 1')).rejects.toBeInstanceOf(Error);
    await manager.releaseConnection(held);

    // Callers get an answer within their own deadline, naming why.
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => manager.getConnection({ timeoutMs: 1_000 })));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as { code?: string; cause?: unknown };
      // E_DB_UNAVAILABLE once the circuit is open (the default breaker): at once, same cause.
      expect(['E_CONNECT', 'E_ACQUIRE_TIMEOUT', 'E_DB_UNAVAILABLE']).toContain(error.code);
      expect(REFUSALS).toContain(codeOf(error.cause));
    }
    await expect(manager.ready()).rejects.toMatchObject({ code: 'E_CONNECT' });
    expect(manager.getPoolStats()).toMatchObject({ total: 0, idle: 0, inUse: 0, waiting: 0 });

    // While the server is down, the pool keeps trying to reopen `min` connections, each with at
    // least maxDelayMs / 2 between attempts once the backoff has grown, or (the circuit open) one
    // probe per circuitBreaker.openMs: count the attempts over a stretch of real time. A pool
    // retrying in a loop would make thousands.
    const startErrors = manager.getPoolStats().counters.createErrors;
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const attempts = manager.getPoolStats().counters.createErrors - startErrors;
    const elapsedMs = Date.now() - startedAt;
    const bound = min * (elapsedMs / (retry.maxDelayMs / 2) + retry.attempts + 2);
    expect(manager.getPoolStats().circuit.state).not.toBe('closed');
    expect(attempts).toBeLessThan(bound);
    expect(manager.getPoolStats().pending).toBeLessThanOrEqual(min);

    await pg.start();
    await until(() => serves(manager), { timeoutMs: 20_000, intervalMs: 10, description: 'the pool to serve again' });
    await manager.ready();
    const after = manager.getPoolStats();
    expect(after.total).toBeGreaterThanOrEqual(min);
    for (const c of after.connections) expect(before).not.toContain(c.id);
    expect(manager.isOpen).toBe(true);
  }, 60_000);

  test('an immediate shutdown in the middle of queries: failures reach their callers, then service resumes', async () => {
    const appName = 'kcm-recovery-immediate';
    const manager = getConnectionInstance({
      connection: { connectionString: pg.url, application_name: appName },
      pool: { min: 2, max: 4, acquireTimeoutMs: 10_000 },
      retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 200 },
      logger: silent,
    });
    await manager.ready();
    // Two sessions busy in the server when it dies.
    const busy = Array.from({ length: 2 }, () =>
      manager.withConnection((conn) => conn.query('select pg_sleep(30)'), { timeoutMs: 5_000 }).then(
        () => 'finished',
        (error: unknown) => error,
      ),
    );
    await until(
      () =>
        withAdminClient(pg.url, async (client) => {
          const { rows } = await client.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE split_part(application_name, ':', 1) = $1 AND state = 'active'",
            [appName],
          );
          return rows[0].n === 2;
        }),
      { timeoutMs: 10_000, intervalMs: 20, description: 'both queries to be running' },
    );
    await pg.stop('immediate');
    for (const result of await Promise.all(busy)) expect(result).toBeInstanceOf(Error);
    expect(manager.getPoolStats().inUse).toBe(0);

    await pg.start();
    await until(() => serves(manager), { timeoutMs: 20_000, intervalMs: 10, description: 'the pool to serve again' });
    await manager.ready();
  }, 60_000);
});

describe('errors that retrying cannot fix fail at once', () => {
  test('a wrong password: E_CONNECT with the 28P01 driver error as cause, after a single attempt', async () => {
    const { port } = new URL(pg.url);
    const manager = getConnectionInstance({
      connection: { host: '127.0.0.1', port: Number(port), user: PASSWORD_ROLE, password: 'wrong-password', database: 'postgres', application_name: 'kcm-recovery-password' },
      pool: { min: 1, max: 2 },
      retry: { attempts: 5, initialDelayMs: 50, maxDelayMs: 500 },
      logger: silent,
    });
    const { error, createErrorsAtRejection } = await readyFailure(manager);
    expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_CONNECT' });
    expect(codeOf(error?.cause)).toBe('28P01');
    expect(createErrorsAtRejection).toBe(1);
    expect(error?.message).not.toContain('wrong-password');
  });

  test('an unknown database: E_CONNECT with the 3D000 driver error as cause, after a single attempt; callers too', async () => {
    const shared = new URL(testDatabaseUrl());
    shared.pathname = '/kcm_no_such_database';
    const manager = getConnectionInstance({
      connection: { connectionString: shared.toString(), application_name: 'kcm-recovery-nodb' },
      pool: { min: 1, max: 2 },
      retry: { attempts: 5, initialDelayMs: 50, maxDelayMs: 500 },
      logger: silent,
    });
    const { error, createErrorsAtRejection } = await readyFailure(manager);
    expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_CONNECT' });
    expect(codeOf(error?.cause)).toBe('3D000');
    expect(createErrorsAtRejection).toBe(1);

    // A caller with a long deadline is told as soon as the next attempt fails, not at its deadline.
    const caller = await manager.getConnection({ timeoutMs: 60_000 }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; cause?: unknown },
    );
    expect(caller).toMatchObject({ code: 'E_CONNECT' });
    expect(codeOf(caller?.cause)).toBe('3D000');
  });
});
