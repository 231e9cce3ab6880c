/**
 * What the session-state check costs `manager.query()` without replicas: each statement is
 * classified only for the warning (SET, CREATE TEMP TABLE, … through manager.query), until every
 * kind has been warned about once.
 *
 * Two measurements:
 * 1. the check alone, in a tight loop over typical statements (ns per statement, no database);
 * 2. `manager.query()` against a throwaway PostgreSQL on 127.0.0.1 with the check on (as shipped)
 *    and off (replaced by a no-op for the measurement), WORKERS concurrent loops for DURATION_MS,
 *    ROUNDS rounds with the two setups interleaved: the Node process's CPU time per query.
 *
 *   npx ts-node --transpile-only scripts/measure-session-check.ts [--workers 16] [--duration-ms 2000] [--rounds 5]
 */
import * as os from 'node:os';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager } from '../lib';
import { classifyStatement } from '../lib/routing/classify';
import { startPostgres } from './test-db';

const STATEMENTS = [
  'SELECT 1',
  'select "id", "name", "email" from "users" where "id" = $1 limit $2',
  'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 AND o.status IN ($2, $3) ORDER BY o.created_at DESC LIMIT 50',
  'INSERT INTO events (kind, payload) VALUES ($1, $2)',
];
const QUERY_SQL = 'select "id", "name", "email" from "users" where "id" = $1 limit $2';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** ns per call of the check's classification, median of 15 timings of 200k calls. */
function checkCost(sql: string): number {
  const calls = 200_000;
  const timings: number[] = [];
  let sink = 0;
  for (let t = 0; t < 15; t++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink += classifyStatement(sql).sessionState === undefined ? 0 : 1;
    timings.push(Number(process.hrtime.bigint() - started) / calls);
  }
  if (sink < 0) console.log(sink);
  return median(timings);
}

/** Node CPU µs per query of `workers` loops of manager.query for `durationMs`. */
async function cpuPerQuery(manager: ConnectionManager, workers: number, durationMs: number): Promise<number> {
  const run = async (ms: number) => {
    let queries = 0;
    const deadline = performance.now() + ms;
    const loop = async () => {
      while (performance.now() < deadline) {
        await manager.query(QUERY_SQL, [1, 1]);
        queries++;
      }
    };
    const cpu = process.cpuUsage();
    await Promise.all(Array.from({ length: workers }, loop));
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / queries;
  };
  await run(Math.min(300, durationMs));
  return run(durationMs);
}

async function main(): Promise<void> {
  const workers = option('--workers', 16);
  const durationMs = option('--duration-ms', 2_000);
  const rounds = option('--rounds', 5);
  console.log(`Node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} at start`);
  console.log('| statement | check, ns/statement (median) |');
  console.log('| --- | ---: |');
  for (const sql of STATEMENTS) console.log(`| \`${sql.length > 60 ? `${sql.slice(0, 57)}…` : sql}\` (${sql.length} chars) | ${Math.round(checkCost(sql))} |`);

  const server = await startPostgres();
  try {
    const setup = async (url: string) => {
      const admin = getConnectionInstance({ connection: url, pool: { min: 1, max: 1 }, logger: { level: 'error' } });
      await admin.query('CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text, email text)');
      await admin.query("INSERT INTO users VALUES (1, 'a', 'a@example.org') ON CONFLICT DO NOTHING");
      await closeConnectionInstance();
    };
    await setup(server.url);
    const results: Record<'on' | 'off', number[]> = { on: [], off: [] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['on', 'off'] as const) {
        const manager = getConnectionInstance({ connection: server.url, pool: { min: 10, max: 10 }, logger: { level: 'error' } });
        try {
          await manager.ready();
          if (mode === 'off') {
            // For the measurement only: the private policy's check replaced by a no-op.
            (manager as unknown as { statements: { checkSessionState(sql: string): void } }).statements.checkSessionState = () => undefined;
          }
          results[mode].push(await cpuPerQuery(manager, workers, durationMs));
        } finally {
          await closeConnectionInstance();
        }
      }
    }
    const fmt = (list: number[]) => list.map((v) => v.toFixed(1)).join(', ');
    console.log(`\n${workers} workers x ${durationMs} ms of manager.query(\`${QUERY_SQL}\`), ${rounds} rounds interleaved, no replicas:`);
    console.log('| session-state check | Node CPU µs/query (median) | per round |');
    console.log('| --- | ---: | --- |');
    console.log(`| on (as shipped) | ${median(results.on).toFixed(1)} | ${fmt(results.on)} |`);
    console.log(`| off | ${median(results.off).toFixed(1)} | ${fmt(results.off)} |`);
  } finally {
    await server.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
