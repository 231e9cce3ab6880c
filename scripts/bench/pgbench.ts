/**
 * pgbench as the reference row of the workloads: the server's own client running the same built-in
 * script (`-b select-only`, `-b tpcb-like`) with the same number of connections, prepared statements
 * (`-M prepared`), two threads. Its transactions per second say what the server does on this machine
 * when the client costs almost nothing; the contestants are read against it.
 *
 * pgbench comes from the directory of server binaries the harness uses (scripts/pg-binaries.ts). When
 * that directory has none (embedded PostgreSQL ships only the server), the row is reported missing,
 * with the reason, and the tables are made with the equivalent SQL instead of `pgbench -i`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { PgbenchJob, PgbenchResult, Workload } from './common';
import { INIT_SQL } from './workloads';

/** Transactions per client in a smoke run (`-t`; a `-T` window must be whole seconds). */
const SMOKE_TRANSACTIONS = 20;

/** pgbench in `binDir`, or the reason there is none. */
export function findPgbench(binDir: string | undefined): { path?: string; missing?: string } {
  if (binDir === undefined) return { missing: 'no PostgreSQL binaries were found (scripts/pg-binaries.ts)' };
  const candidate = path.join(binDir, 'pgbench');
  if (existsSync(candidate)) return { path: candidate };
  return { missing: `the PostgreSQL binaries in use (${binDir}) have no pgbench (embedded PostgreSQL ships only the server); install the PostgreSQL client tools or set PG_BIN_DIR` };
}

/** Creates pgbench's tables at scale 1: with `pgbench -i -s 1` when there is one, else the same in SQL. */
export async function initWorkloadTables(url: string, pgbench: string | undefined): Promise<string> {
  if (pgbench !== undefined) {
    const run = spawnSync(pgbench, ['-i', '-s', '1', '-q', url], { encoding: 'utf8' });
    if (run.status === 0) return 'pgbench -i -s 1';
    throw new Error(`pgbench -i failed (${run.status ?? run.signal}): ${run.stderr}`);
  }
  const { Client } = require('pg') as typeof import('pg');
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    for (const sql of INIT_SQL) await client.query(sql);
  } finally {
    await client.end();
  }
  return 'SQL equivalent of pgbench -i -s 1';
}

/** The built-in script of `workload`. */
function builtin(workload: Workload): string {
  return workload === 'tpcb' ? 'tpcb-like' : 'select-only';
}

/** CPU time (user + system, µs) of this process's waited-for children, from /proc; NaN elsewhere. */
function childrenCpuUs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3; cutime, cstime are 16, 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[13]) + Number(fields[14]);
    // USER_HZ is 100 on Linux (the kernel's ABI for /proc, whatever CONFIG_HZ is).
    return (ticks / 100) * 1e6;
  } catch {
    return Number.NaN;
  }
}

/** Runs pgbench for `job` (in the child process, so its CPU is this process's children's). */
export function runPgbench(job: PgbenchJob): PgbenchResult {
  if (job.pgbench === undefined) return { kind: 'pgbench', tps: Number.NaN, latencyMs: Number.NaN, cpuUsPerTxn: Number.NaN, missing: job.missing ?? 'no pgbench' };
  const length = job.seconds > 0 ? ['-T', String(job.seconds)] : ['-t', String(SMOKE_TRANSACTIONS)];
  const args = ['-n', '-b', builtin(job.workload), '-M', 'prepared', '-c', String(job.connections), '-j', '2', ...length, job.url];
  const cpuBefore = childrenCpuUs();
  const run = spawnSync(job.pgbench, args, { encoding: 'utf8' });
  const cpuUs = childrenCpuUs() - cpuBefore;
  if (run.status !== 0) throw new Error(`pgbench ${args.slice(0, -1).join(' ')} failed (${run.status ?? run.signal}): ${run.stderr || run.stdout}`);
  const out = run.stdout;
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
  return { kind: 'pgbench', tps, latencyMs, cpuUsPerTxn: processed > 0 ? cpuUs / processed : Number.NaN };
}
