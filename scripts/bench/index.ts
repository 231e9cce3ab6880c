/**
 * `npm run bench`: compares the manager with dedicated pg clients, pg-pool, knex's default pool
 * (tarn) and generic-pool, in one run, and writes docs/benchmarks.md with two SVG charts.
 *
 * It starts a throwaway PostgreSQL on 127.0.0.1 (scripts/test-db.ts), then runs rounds; each round
 * runs every scenario for every contestant, each in a fresh child process (runner.ts), so machine
 * drift hits every contestant alike and none can warm up another. Reported figures are medians.
 *
 *   npm run bench                  full run (~6-7 min), writes docs/benchmarks*.{md,svg}
 *   npm run bench:smoke            everything with tiny windows, no targets judged, output to a temp dir
 *   npm run bench:profile [NAME]   CPU profile of one child: a throughput contestant (default
 *                                  manager-getConnection), a pool core, WORKLOAD:CONTESTANT
 *                                  (select-only:manager-knex), or `knex` (manager.knex and knex +
 *                                  tarn, raw and query builder, in one run); BENCH_SECONDS default 5
 *
 * Environment: BENCH_SECONDS (measured window per round, default 2), BENCH_ROUNDS (default 3),
 * BENCH_OUT (output directory), BENCH_NOTE (a remark printed at the top of the report),
 * BENCH_ONLY (comma-separated scenarios: workload, throughput, core, cold, burst; a partial run writes to a
 * temp dir), BENCH_DATABASE_URL (use this server instead of starting one), BENCH_REF (benchmark lib/ as of
 * this git commit instead of the working tree), BENCH_BEFORE (also run the pool core as of this git
 * commit, in the same run, to compare against), BENCH_STRICT=1 (exit 1 when a target fails).
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildForChildren, ROOT, type Build } from './build';
import type { ChildMessage, CoreResult, Job, JobResult, ThroughputResult, WorkloadResult } from './common';
import { BURST_CONTESTANTS, COLD_CONTESTANTS, CONTENTION_ONLY, CORE_CONTESTANTS, DB_CONTESTANTS, LABELS, median, runsWorkload, WORKLOAD_CONTESTANTS, WORKLOADS } from './common';
import { findPgbench, initWorkloadTables } from './pgbench';
import { carriedSections, charts, markdown, summarise, type RunRecord, type RunInfo, type Settings } from './report';
import { summariseProfile, type CpuProfile } from './profile-summary';
import { findPgBinDir, startPostgres, type TestPostgres } from '../test-db';

type Mode = 'full' | 'smoke' | 'profile';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

function settingsFor(mode: Mode): Settings {
  const smoke = mode === 'smoke';
  const seconds = envNumber('BENCH_SECONDS', smoke ? 0.1 : mode === 'profile' ? 5 : 2);
  return {
    smoke,
    seconds,
    rounds: Math.round(envNumber('BENCH_ROUNDS', smoke ? 1 : 3)),
    warmupMs: smoke ? 50 : Math.round(Math.min(1000, Math.max(200, seconds * 400))),
    workers: [64, 8],
    connections: 20,
    workloadWorkers: 64,
    contentionWorkers: 64,
    contentionSize: 20,
    scalingSizes: [10, 100, 1_000, 10_000],
    coldRepeats: smoke ? 1 : 10,
    burstCallers: 1_000,
    burstMax: 20,
    burstSleepMs: 2,
    bursts: smoke ? 1 : 5,
  };
}

/** Where pgbench is (or why there is none), for the workloads' reference row. */
interface PgbenchLocation {
  path?: string;
  missing?: string;
}

/** One round's jobs, in the order they run. */
function roundJobs(s: Settings, url: string, pgbench: PgbenchLocation): Job[] {
  const windowMs = s.seconds * 1000;
  const jobs: Job[] = [];
  for (const workload of WORKLOADS) {
    for (const contestant of WORKLOAD_CONTESTANTS) {
      if (!runsWorkload(contestant, workload)) continue;
      jobs.push({ kind: 'workload', workload, contestant, url, connections: s.connections, workers: s.workloadWorkers, warmupMs: s.warmupMs, windowMs });
    }
    // pgbench's -T takes whole seconds; a smoke run gives it a fixed count of transactions instead.
    jobs.push({ kind: 'pgbench', workload, url, pgbench: pgbench.path, missing: pgbench.missing, connections: s.connections, seconds: s.smoke ? 0 : Math.max(1, Math.round(s.seconds)) });
  }
  for (const workers of s.workers) {
    for (const contestant of DB_CONTESTANTS) {
      jobs.push({ kind: 'throughput', contestant, url, connections: s.connections, workers, warmupMs: s.warmupMs, windowMs });
    }
  }
  for (const contestant of CORE_CONTESTANTS) {
    // The floor has no waiting, so it only runs where workers = resources (the scaling sizes).
    if (contestant === 'floor') continue;
    if (contestant === 'manager-core-before' && !process.env.BENCH_BEFORE) continue;
    jobs.push({ kind: 'core', contestant, size: s.contentionSize, workers: s.contentionWorkers, warmupMs: s.warmupMs, windowMs });
  }
  for (const size of s.scalingSizes) {
    for (const contestant of CORE_CONTESTANTS) {
      if (CONTENTION_ONLY.includes(contestant)) continue;
      jobs.push({ kind: 'core', contestant, size, workers: size, warmupMs: s.warmupMs, windowMs });
    }
  }
  for (const contestant of COLD_CONTESTANTS) {
    jobs.push({ kind: 'cold', contestant, url, connections: s.connections, repeats: s.coldRepeats });
  }
  for (const contestant of BURST_CONTESTANTS) {
    jobs.push({ kind: 'burst', contestant, url, callers: s.burstCallers, max: s.burstMax, sleepMs: s.burstSleepMs, bursts: s.bursts });
  }
  return jobs;
}

function describeJob(job: Job): string {
  const contestant = job.kind === 'pgbench' ? 'pgbench' : job.contestant;
  const name = LABELS[contestant] ?? contestant;
  switch (job.kind) {
    case 'throughput':
      return `throughput ${name}, ${job.workers} workers`;
    case 'core':
      return `pool core ${name}, ${job.workers} workers / ${job.size} resources`;
    case 'cold':
      return `cold start ${name}`;
    case 'burst':
      return `burst ${name}`;
    case 'workload':
      return `${job.workload} ${name}, ${job.workers} workers`;
    case 'pgbench':
      return `${job.workload} pgbench, ${job.connections} clients`;
  }
}

function describeResult(result: JobResult): string {
  switch (result.kind) {
    case 'throughput':
      return `${Math.round(result.qps)} q/s, p99 ${Math.round(result.p99Us)} µs, ${result.cpuUsPerQuery.toFixed(1)} CPU µs/q`;
    case 'core':
      return `${Math.round(result.nsPerOp)} ns/op`;
    case 'cold':
      return `${result.samplesMs.map((v) => v.toFixed(1)).join(', ')} ms`;
    case 'burst':
      return result.bursts.map((b) => `p99 ${b.p99.toFixed(1)} (ideal ${b.idealP99.toFixed(1)}) ms`).join('; ');
    case 'workload':
      return `${Math.round(result.qps)} tx/s, p99 ${Math.round(result.p99Us)} µs, ${result.cpuUsPerQuery.toFixed(1)} CPU µs/tx`;
    case 'pgbench':
      return result.missing ?? `${Math.round(result.tps)} tx/s, ${result.cpuUsPerTxn.toFixed(1)} CPU µs/tx`;
  }
}

/** The child currently running, so an interrupt can stop it. */
let currentChild: ReturnType<typeof fork> | undefined;

/** Runs one job in a fresh child process; resolves with its message. */
function runChild(build: Build, job: Job, execArgv: string[] = []): Promise<ChildMessage> {
  const budgetMs =
    job.kind === 'throughput' || job.kind === 'core' || job.kind === 'workload' ? job.warmupMs + job.windowMs + 120_000 : 180_000;
  return new Promise((resolve, reject) => {
    const child = fork(build.runner, [JSON.stringify(job)], { cwd: ROOT, execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    currentChild = child;
    let message: ChildMessage | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${describeJob(job)}: no result within ${budgetMs} ms; killed`));
    }, budgetMs);
    child.on('message', (m) => (message = m as ChildMessage));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      currentChild = undefined;
      if (message) resolve(message);
      else reject(new Error(`${describeJob(job)}: child exited (${signal ?? code}) without a result`));
    });
  });
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1]) return match[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function serverVersion(url: string): Promise<string> {
  const { Client } = require('pg') as typeof import('pg');
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}

function commandLine(mode: Mode): string {
  const vars = ['BENCH_SECONDS', 'BENCH_ROUNDS', 'BENCH_REF'].filter((v) => process.env[v]).map((v) => `${v}=${process.env[v]}`);
  const script = process.env.npm_lifecycle_event;
  const base = script?.startsWith('bench') ? `npm run ${script}` : `npx ts-node --transpile-only scripts/bench/index.ts${mode === 'full' ? '' : ` --${mode}`}`;
  return [...vars, base].join(' ');
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Starts the database (or uses BENCH_DATABASE_URL); returns its URL and a stop function. */
async function database(): Promise<{ url: string; stop: () => Promise<void>; server?: TestPostgres }> {
  const given = process.env.BENCH_DATABASE_URL;
  if (given) return { url: given, stop: () => Promise.resolve() };
  const started = performance.now();
  const server = await startPostgres();
  log(`PostgreSQL started on 127.0.0.1:${server.port} in ${Math.round(performance.now() - started)} ms (${server.dataDir})`);
  return { url: server.url, stop: () => server.remove(), server };
}

/**
 * pgbench from the binaries of the server this run started (or, with BENCH_DATABASE_URL, the ones
 * scripts/pg-binaries.ts finds), or why there is none.
 */
function locatePgbench(server: TestPostgres | undefined): PgbenchLocation {
  if (server) return findPgbench(server.binDir);
  try {
    return findPgbench(findPgBinDir());
  } catch (error) {
    return { missing: `no PostgreSQL binaries were found: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}

/** BENCH_ONLY's scenario names; `workload` also selects the pgbench reference rows. */
function selected(job: Job, only: readonly string[]): boolean {
  if (only.length === 0) return true;
  return only.includes(job.kind === 'pgbench' ? 'workload' : job.kind);
}

async function runBenchmarks(mode: 'full' | 'smoke', build: Build, url: string, server: TestPostgres | undefined, before?: Build): Promise<number> {
  const startedAt = performance.now();
  const settings = settingsFor(mode);
  const loadStart = os.loadavg();
  const records: RunRecord[] = [];
  const failures: string[] = [];
  const loadMs: number[] = [];
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  const pgbench = locatePgbench(server);
  const jobs = roundJobs(settings, url, pgbench).filter((job) => selected(job, only));
  let tables: string | undefined;
  if (jobs.some((job) => job.kind === 'workload')) {
    const t0 = performance.now();
    tables = await initWorkloadTables(url, pgbench.path);
    log(`pgbench tables at scale 1 made with ${tables} in ${Math.round(performance.now() - t0)} ms${pgbench.missing ? `; no pgbench reference: ${pgbench.missing}` : ''}`);
  }
  for (let round = 1; round <= settings.rounds; round++) {
    for (const [i, job] of jobs.entries()) {
      const prefix = `[round ${round}/${settings.rounds}, ${i + 1}/${jobs.length}] ${describeJob(job)}`;
      try {
        const childStart = performance.now();
        // The before-contestant is manager-core run from the BENCH_BEFORE build, whose runner knows only that name.
        const message = job.kind === 'core' && job.contestant === 'manager-core-before' && before
          ? await runChild(before, { ...job, contestant: 'manager-core' })
          : await runChild(build, job);
        loadMs.push(message.loadMs);
        if (message.type === 'error') throw new Error(message.message);
        records.push({ round, job, result: message.result, loadMs: message.loadMs });
        log(`${prefix}: ${describeResult(message.result)} (child ${Math.round(performance.now() - childStart)} ms)`);
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        failures.push(`round ${round}, ${describeJob(job)}: ${text.split('\n')[0]}`);
        log(`${prefix}: FAILED\n${text}`);
      }
    }
  }
  const versions: Record<string, string> = {
    node: process.version,
    pg: packageVersion('pg'),
    'pg-pool': packageVersion('pg-pool'),
    knex: packageVersion('knex'),
    tarn: packageVersion('tarn'),
    'generic-pool': packageVersion('generic-pool'),
    winston: packageVersion('winston'),
    'PostgreSQL server': await serverVersion(url),
  };
  const info: RunInfo = {
    date: new Date().toISOString(),
    command: commandLine(mode),
    machine: {
      cpu: cpuModel(),
      cores: os.cpus().length,
      memoryGiB: os.totalmem() / 2 ** 30,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      loadStart,
      loadEnd: os.loadavg(),
    },
    versions,
    source: build.source,
    totalSeconds: (performance.now() - startedAt) / 1000,
    childLoadMs: median(loadMs),
    failures,
    note: process.env.BENCH_NOTE || undefined,
    workloadTables: tables,
    pgbenchMissing: pgbench.missing,
  };
  const summary = summarise(records, settings);
  const outDir = process.env.BENCH_OUT
    ? path.resolve(process.env.BENCH_OUT)
    : mode === 'smoke' || only.length > 0
      ? mkdtempSync(path.join(os.tmpdir(), 'kcm-bench-smoke-'))
      : path.join(ROOT, 'docs');
  mkdirSync(outDir, { recursive: true });
  const svgNames = { throughput: 'benchmarks-throughput.svg', scaling: 'benchmarks-scaling.svg', workloads: 'benchmarks-workloads.svg' };
  const { throughputSvg, scalingSvg, workloadsSvg } = charts(summary, settings);
  writeFileSync(path.join(outDir, svgNames.throughput), throughputSvg);
  writeFileSync(path.join(outDir, svgNames.scaling), scalingSvg);
  if (summary.workloads.length > 0) writeFileSync(path.join(outDir, svgNames.workloads), workloadsSvg);
  const reportPath = path.join(outDir, 'benchmarks.md');
  // Sections other scripts measured are kept from the committed report, whichever directory this one goes to.
  const committed = path.join(ROOT, 'docs', 'benchmarks.md');
  const previous = existsSync(committed) ? readFileSync(committed, 'utf8') : undefined;
  writeFileSync(reportPath, markdown(summary, settings, info, svgNames) + carriedSections(previous));
  // The raw per-child results, for anyone who wants to look closer (not committed).
  const rawDir = mode === 'smoke' ? outDir : path.join(ROOT, '.tmp');
  mkdirSync(rawDir, { recursive: true });
  writeFileSync(path.join(rawDir, 'bench-results.json'), `${JSON.stringify({ settings, info, records }, null, 1)}\n`);

  log('');
  log(`Targets${settings.smoke ? ' (not judged in a smoke run)' : ''}:`);
  for (const t of summary.targets) log(`  ${t.pass === undefined ? '-   ' : t.pass ? 'pass' : 'FAIL'}  ${t.name}: ${t.measured}`);
  log(`\nReport written to ${reportPath} (${Math.round(info.totalSeconds)} s)`);
  if (failures.length > 0) {
    log(`${failures.length} child process(es) failed`);
    return 1;
  }
  if (process.env.BENCH_STRICT === '1' && summary.targets.some((t) => t.pass === false)) return 1;
  return 0;
}

/**
 * Runs one child under `node --cpu-prof` and prints where its time went: a database contestant's
 * throughput child (64 workers, 20 connections) or `manager-core` (64 workers on 20 fake resources).
 */
/**
 * The jobs `npm run bench:profile NAME` profiles: a throughput contestant (`SELECT 1`), a pool core,
 * `select-only:<contestant>` or `tpcb:<contestant>` (a workload), or `knex`: `manager.knex.raw` and
 * knex + tarn's `raw` on `SELECT 1`, then a query-builder select-only through each, one after the other
 * in the same run.
 */
function profileJobs(name: string, url: string, settings: Settings): Array<Job & { workers: number }> {
  const windowMs = settings.seconds * 1000;
  if (name === 'knex') {
    return ['manager-knex', 'knex-tarn', 'select-only:manager-knex', 'select-only:knex-tarn'].flatMap((n) => profileJobs(n, url, settings));
  }
  const base = { url, connections: settings.connections, workers: settings.contentionWorkers, warmupMs: settings.warmupMs, windowMs };
  if ((DB_CONTESTANTS as readonly string[]).includes(name)) return [{ kind: 'throughput', contestant: name as (typeof DB_CONTESTANTS)[number], ...base }];
  const [workload, contestant] = name.split(':');
  if ((WORKLOADS as readonly string[]).includes(workload ?? '') && (WORKLOAD_CONTESTANTS as readonly string[]).includes(contestant ?? '')) {
    return [{ kind: 'workload', workload: workload as (typeof WORKLOADS)[number], contestant: contestant as (typeof WORKLOAD_CONTESTANTS)[number], ...base }];
  }
  if ((CORE_CONTESTANTS as readonly string[]).includes(name)) {
    return [{ kind: 'core', contestant: name as (typeof CORE_CONTESTANTS)[number], size: settings.contentionSize, workers: settings.contentionWorkers, warmupMs: settings.warmupMs, windowMs }];
  }
  const workloadNames = WORKLOADS.flatMap((w) => WORKLOAD_CONTESTANTS.map((c) => `${w}:${c}`));
  throw new Error(`unknown contestant ${name}; one of knex, ${[...DB_CONTESTANTS, ...CORE_CONTESTANTS, ...workloadNames].join(', ')}`);
}

/** Profiles every job of `name` (see `profileJobs`) in turn; prints each summary, then their CPU per operation side by side. */
async function runProfile(build: Build, url: string, name: string): Promise<number> {
  const settings = settingsFor('profile');
  const jobs = profileJobs(name, url, settings);
  if (jobs.some((j) => j.kind === 'workload')) await initWorkloadTables(url, locatePgbench(undefined).path);
  const lines: string[] = [];
  for (const job of jobs) lines.push(await profileOne(build, job, settings));
  if (lines.length > 1) {
    console.log('\nSide by side (client CPU per operation, process.cpuUsage; library and knex shares from the profiles above):');
    for (const line of lines) console.log(`  ${line}`);
  }
  return 0;
}

/** Runs one child under `node --cpu-prof`, prints where its time went; returns a one-line summary. */
async function profileOne(build: Build, job: Job & { workers: number }, settings: Settings): Promise<string> {
  const contestant = job.kind === 'workload' ? `${job.workload}-${job.contestant}` : job.kind === 'pgbench' ? 'pgbench' : job.contestant;
  const dir = path.resolve(process.env.BENCH_PROFILE_DIR ?? path.join(ROOT, '.tmp', 'bench-profile'));
  mkdirSync(dir, { recursive: true });
  const name = `${contestant}-${Date.now()}.cpuprofile`;
  // One sample every 100 µs: at the default 1 ms a function costing 1 µs per query gets a handful of samples.
  const message = await runChild(build, job, ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`]);
  if (message.type === 'error') throw new Error(message.message);
  const result = message.result as ThroughputResult | CoreResult | WorkloadResult;
  const file = path.join(dir, name);
  if (!readdirSync(dir).includes(name)) throw new Error(`no profile written to ${file}`);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  let areas: ReadonlyMap<string, number> = new Map();
  const headline =
    result.kind !== 'core'
      ? `${Math.round(result.qps)} q/s, p50 ${Math.round(result.p50Us)} µs, p99 ${Math.round(result.p99Us)} µs, ${result.cpuUsPerQuery.toFixed(2)} CPU µs/query (process.cpuUsage)`
      : `${Math.round(result.nsPerOp)} ns/op, ${(result.opsPerSec / 1e6).toFixed(2)} M ops/s`;
  const text = [
    `CPU profile of ${LABELS[contestant] ?? contestant}: ${job.workers} workers, ${settings.connections} ${job.kind === 'core' ? 'fake resources' : 'connections'}, ${settings.seconds} s window (${build.source})`,
    headline,
    `profile: ${file}`,
    '',
    summariseProfile(profile, {
      top: 20,
      fromUs: Number(BigInt(result.startNs) / 1000n),
      toUs: Number(BigInt(result.endNs) / 1000n),
      per: result.ops,
      onAreas: (charged) => (areas = charged),
    }),
  ].join('\n');
  writeFileSync(file.replace(/\.cpuprofile$/, '.txt'), `${text}\n`);
  console.log(text);
  if (result.kind === 'core') return `${contestant}: ${Math.round(result.nsPerOp)} ns/op`;
  const per = (area: string): string => ((areas.get(area) ?? 0) / result.ops).toFixed(2);
  return `${pad(contestant, 28)} ${result.cpuUsPerQuery.toFixed(1).padStart(6)} CPU µs/op; charged per op: lib ${per('this library (lib/)')} µs, knex ${per('knex')} µs, pg ${per('pg')} µs, GC ${per('(garbage collector)')} µs`;
}

function pad(text: string, width: number): string {
  return text.padEnd(width);
}

async function main(argv: string[]): Promise<void> {
  const mode: Mode = argv.includes('--smoke') ? 'smoke' : argv.includes('--profile') ? 'profile' : 'full';
  const t0 = performance.now();
  const build = buildForChildren(process.env.BENCH_REF || undefined);
  log(`Transpiled ${build.source} and scripts/bench/ for the child processes in ${Math.round(performance.now() - t0)} ms`);
  const before = process.env.BENCH_BEFORE ? buildForChildren(process.env.BENCH_BEFORE) : undefined;
  if (before) log(`Transpiled ${before.source} for manager-core-before`);
  let db: Awaited<ReturnType<typeof database>> | undefined;
  const cleanUp = async (): Promise<void> => {
    build.remove();
    before?.remove();
    await db?.stop();
  };
  const interrupt = (): void => {
    currentChild?.kill('SIGKILL');
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    db = await database();
    if (mode === 'profile') {
      const contestant = argv.find((a) => !a.startsWith('--')) ?? 'manager-getConnection';
      process.exitCode = await runProfile(build, db.url, contestant);
    } else {
      process.exitCode = await runBenchmarks(mode, build, db.url, db.server, before);
    }
  } finally {
    await cleanUp();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
