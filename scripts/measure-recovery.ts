/**
 * Measures how long the pool lags behind a database restart.
 *
 * It starts a throwaway PostgreSQL server (scripts/test-db.ts) and one connection manager with
 * the default pool and retry options, then, round after round, stops the server (`fast`), keeps
 * it down for a while (so the connect backoff grows to its cap, as in a real outage) and starts it
 * again. Two loops run from the moment the start is issued:
 *
 * - a probe that opens a plain pg connection every few milliseconds: its first success is the
 *   moment the server accepts connections again;
 * - callers asking the pool for a connection (`withConnection`, `select 1`, short timeout) over and
 *   over: the first success is the moment the pool serves again.
 *
 * The recovery time of a round is the second moment minus the first. The manager is created once
 * and never recreated. Prints each round, then the median and the maximum.
 *
 *   npx ts-node --transpile-only scripts/measure-recovery.ts [--rounds 5] [--down-ms 2000]
 */
import { Client } from 'pg';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager } from '../lib';
import { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS } from '../lib/options';
import { startPostgres, type TestPostgres } from './test-db';
import { median, numberOption } from './measure-args';

const PROBE_INTERVAL_MS = 2;
const CALLER_TIMEOUT_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves with the time (performance.now()) of the first successful plain connection. */
async function firstAccepted(pg: TestPostgres, deadline: number): Promise<number> {
  for (;;) {
    const client = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const at = performance.now();
      await client.end().catch(() => undefined);
      return at;
    } catch {
      await client.end().catch(() => undefined);
    }
    if (performance.now() > deadline) throw new Error('the server did not accept connections in time');
    await sleep(PROBE_INTERVAL_MS);
  }
}

/** Resolves with the time of the first query that succeeds through the pool. */
async function firstServed(manager: ConnectionManager, deadline: number): Promise<number> {
  for (;;) {
    try {
      await manager.withConnection((conn) => conn.query('select 1'), { timeoutMs: CALLER_TIMEOUT_MS });
      return performance.now();
    } catch {
      // E_CONNECT or E_ACQUIRE_TIMEOUT while the server is away: ask again.
    }
    if (performance.now() > deadline) throw new Error('the pool did not serve again in time');
    await sleep(PROBE_INTERVAL_MS);
  }
}

async function main(): Promise<void> {
  const rounds = numberOption('--rounds', 5);
  const downMs = numberOption('--down-ms', 2_000);
  const pg = await startPostgres();
  const cleanup = async () => {
    await closeConnectionInstance().catch(() => undefined);
    await pg.remove();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    const manager = getConnectionInstance({
      connection: { connectionString: pg.url, application_name: 'kcm-measure-recovery' },
      logger: winston.createLogger({ silent: true }),
    });
    await manager.ready();
    const { min, max } = DEFAULT_POOL_OPTIONS;
    const { attempts, initialDelayMs, maxDelayMs } = DEFAULT_RETRY_OPTIONS;
    console.log(`Default options: pool min ${min}, max ${max}; retry attempts ${attempts}, initialDelayMs ${initialDelayMs}, maxDelayMs ${maxDelayMs}`);
    console.log(`${rounds} rounds: stop (fast), ${downMs} ms down, start; recovery = first pooled query - first accepted connection\n`);

    const lags: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      await manager.withConnection((conn) => conn.query('select 1'));
      const errorsBefore = manager.getPoolStats().counters.createErrors;
      await pg.stop('fast');
      await sleep(downMs);
      const downErrors = manager.getPoolStats().counters.createErrors - errorsBefore;

      const issued = performance.now();
      const deadline = issued + 60_000;
      const accepted = firstAccepted(pg, deadline);
      const served = firstServed(manager, deadline);
      await pg.start();
      const acceptedAt = await accepted;
      const servedAt = await served;
      const lag = servedAt - acceptedAt;
      lags.push(lag);
      console.log(
        `round ${round}: server accepting ${(acceptedAt - issued).toFixed(0)} ms after start was issued; ` +
          `pool serving ${lag.toFixed(1)} ms later (${downErrors} failed connection attempts while down)`,
      );
      await manager.ready();
    }

    console.log(`\nrecovery after the server accepts connections: median ${median(lags).toFixed(1)} ms, max ${Math.max(...lags).toFixed(1)} ms`);
    const stats = manager.getPoolStats();
    console.log(`pool afterwards: total ${stats.total}, created ${stats.counters.created}, createErrors ${stats.counters.createErrors}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
