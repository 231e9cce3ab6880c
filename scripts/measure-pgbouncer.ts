/**
 * The lease benchmark (`getConnection` → `conn.query('SELECT 1')` → `releaseConnection`, WORKERS
 * concurrent loops over CONNECTIONS connections, as in `npm run bench`'s throughput test) against a
 * throwaway PostgreSQL on 127.0.0.1, directly and through a throwaway PgBouncer in session and in
 * transaction mode; ROUNDS rounds of DURATION_MS each, the setups interleaved so that drift of the
 * machine hits each alike. Medians over the rounds: queries per second and the Node process's CPU
 * per query.
 *
 * Also the cost of the transaction-mode session-state check (`pgbouncer: 'transaction'`): the check
 * alone per statement (no database), and the lease path through PgBouncer with the option set (check
 * on) and left out (check off; the statement cache is off in both).
 *
 *   npx ts-node --transpile-only scripts/measure-pgbouncer.ts [--workers 64] [--connections 20] [--duration-ms 2000] [--rounds 5]
 */
import * as os from 'node:os';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManagerConfig } from '../lib';
import { TransactionModeGuard } from '../lib/pgbouncer/transaction-mode';
import { startPgBouncer, type TestPgBouncer } from './pgbouncer';
import { startPostgres } from './test-db';
import { median, numberOption } from './measure-args';

const WORKERS = numberOption('--workers', 64);
const CONNECTIONS = numberOption('--connections', 20);
const DURATION_MS = numberOption('--duration-ms', 2_000);
const ROUNDS = numberOption('--rounds', 5);
const silent = winston.createLogger({ silent: true });

interface Setup {
  name: string;
  config: ConnectionManagerConfig;
}

interface Sample {
  qps: number;
  cpuUsPerQuery: number;
}

async function runRound(setup: Setup): Promise<Sample> {
  const manager = getConnectionInstance({ ...setup.config, pool: { min: CONNECTIONS, max: CONNECTIONS }, logger: silent });
  await manager.ready();
  let stop = false;
  let queries = 0;
  const worker = async () => {
    while (!stop) {
      const conn = await manager.getConnection();
      try {
        await conn.query('SELECT 1');
      } finally {
        await manager.releaseConnection(conn);
      }
      queries++;
    }
  };
  // A short warm-up, not counted.
  const warm = Date.now() + 200;
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (Date.now() < warm) await manager.withConnection((c) => c.query('SELECT 1'));
  }));
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const timer = setTimeout(() => (stop = true), DURATION_MS);
  await Promise.all(Array.from({ length: WORKERS }, worker));
  clearTimeout(timer);
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await closeConnectionInstance();
  return { qps: queries / elapsedS, cpuUsPerQuery: (used.user + used.system) / queries };
}

/** ns per statement of the check alone, over statements that leave nothing in the session (the usual case). */
function checkCost(): number {
  const guard = new TransactionModeGuard(silent);
  const statements = [
    'SELECT 1',
    'select "id", "name", "email" from "users" where "id" = $1 limit $2',
    'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 AND o.status IN ($2, $3) ORDER BY o.created_at DESC LIMIT 50',
    'INSERT INTO events (kind, payload) VALUES ($1, $2)',
  ];
  const n = 400_000;
  for (let i = 0; i < 50_000; i++) guard.check(statements[i % statements.length], 'I');
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) guard.check(statements[i % statements.length], 'I');
  return Number(process.hrtime.bigint() - started) / n;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'})`);
  console.log(`check alone: ${checkCost().toFixed(0)} ns per statement (4 typical statements, none with session state)`);
  const server = await startPostgres({ extraConf: { max_connections: '200' } });
  const bouncers: TestPgBouncer[] = [];
  try {
    const session = await startPgBouncer({ targetPort: server.port, mode: 'session', defaultPoolSize: CONNECTIONS });
    bouncers.push(session);
    const transaction = await startPgBouncer({ targetPort: server.port, mode: 'transaction', defaultPoolSize: CONNECTIONS });
    bouncers.push(transaction);
    console.log(`PgBouncer ${session.version}; ${WORKERS} workers, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_MS} ms`);
    const setups: Setup[] = [
      { name: 'direct (statement cache on)', config: { connection: server.url } },
      { name: 'direct, statement cache off', config: { connection: server.url, statementCache: false } },
      { name: "PgBouncer session, pgbouncer: 'session' (cache on)", config: { connection: session.url, pgbouncer: 'session' } },
      { name: "PgBouncer transaction, pgbouncer: 'transaction' (check on)", config: { connection: transaction.url, pgbouncer: 'transaction' } },
      { name: 'PgBouncer transaction, option left out, cache off (check off)', config: { connection: transaction.url, statementCache: false } },
    ];
    const samples = new Map<string, Sample[]>(setups.map((s) => [s.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const setup of setups) (samples.get(setup.name) as Sample[]).push(await runRound(setup));
    }
    const base = median((samples.get(setups[0].name) as Sample[]).map((s) => s.qps));
    console.log('\n| setup | q/s (median) | vs direct | client CPU µs/q | q/s range |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const setup of setups) {
      const list = samples.get(setup.name) as Sample[];
      const qps = list.map((s) => s.qps);
      const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
      console.log(
        `| ${setup.name} | ${fmt(median(qps))} | ${(median(qps) / base).toFixed(2)}× | ${median(list.map((s) => s.cpuUsPerQuery)).toFixed(1)} | ${fmt(Math.min(...qps))}–${fmt(Math.max(...qps))} |`,
      );
    }
  } finally {
    for (const bouncer of bouncers) await bouncer.stop();
    await server.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
