/**
 * Shared pieces of the benchmark: the jobs a child process runs, the results it reports, the timed
 * worker loop and small statistics helpers. Imported by the orchestrator (index.ts) and by the child
 * runner (runner.ts); keep it free of heavy imports so a child loads only what its contestant needs.
 */
import { performance } from 'node:perf_hooks';

/** Contestants that talk to PostgreSQL. */
export const DB_CONTESTANTS = ['manager-getConnection', 'manager-knex', 'dedicated', 'pg-pool', 'knex-tarn', 'generic-pool'] as const;
export type DbContestant = (typeof DB_CONTESTANTS)[number];

/** Pool cores measured over fake resources (no database). */
export const CORE_CONTESTANTS = ['manager-core', 'manager-core-admission', 'manager-core-before', 'tarn', 'generic-pool', 'floor'] as const;
/**
 * Contestants of the contention scenario only: the manager's pool with admission on (tags on 50
 * values, priorities, quotas), and the manager's pool as of BENCH_BEFORE (a git ref; only run when
 * set), each against manager-core in the same run.
 */
export const CONTENTION_ONLY: readonly CoreContestant[] = ['manager-core-admission', 'manager-core-before'];
export type CoreContestant = (typeof CORE_CONTESTANTS)[number];

/** The realistic workloads: pgbench's select-only script and its TPC-B-like write transaction. */
export const WORKLOADS = ['select-only', 'tpcb'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** Contestants of the workloads: each runs the same statements its own way (scripts/bench/workloads.ts). */
export const WORKLOAD_CONTESTANTS = ['manager-getConnection', 'manager-query', 'manager-knex', 'dedicated', 'pg-pool', 'knex-tarn', 'generic-pool'] as const;
export type WorkloadContestant = (typeof WORKLOAD_CONTESTANTS)[number];

/**
 * Which contestants run which workload: `manager.query` leases a connection per statement, so it
 * cannot hold a transaction open; the TPC-B-like transaction goes through the lease path instead.
 */
export function runsWorkload(contestant: WorkloadContestant, workload: Workload): boolean {
  return !(contestant === 'manager-query' && workload === 'tpcb');
}

export const COLD_CONTESTANTS = ['manager', 'dedicated', 'pg-pool', 'knex-tarn'] as const;
export type ColdContestant = (typeof COLD_CONTESTANTS)[number];

export const BURST_CONTESTANTS = ['manager', 'pg-pool', 'knex-tarn', 'generic-pool'] as const;
export type BurstContestant = (typeof BURST_CONTESTANTS)[number];

/** Human-readable names used in tables and charts. */
export const LABELS: Record<string, string> = {
  'manager-getConnection': 'manager getConnection',
  'manager-knex': 'manager.knex',
  'manager-query': 'manager.query',
  pgbench: 'pgbench (server reference)',
  dedicated: 'dedicated pg clients',
  'pg-pool': 'pg-pool',
  'knex-tarn': 'knex default pool (tarn)',
  'generic-pool': 'generic-pool',
  'manager-core': 'manager pool core',
  'manager-core-admission': 'manager pool core, admission on (50 tag values, priorities, quotas)',
  'manager-core-before': 'manager pool core as of BENCH_BEFORE',
  floor: 'harness floor (no pool)',
  tarn: 'tarn',
  manager: 'manager',
};

export interface ThroughputJob {
  kind: 'throughput';
  contestant: DbContestant;
  url: string;
  connections: number;
  workers: number;
  warmupMs: number;
  windowMs: number;
}

export interface CoreJob {
  kind: 'core';
  contestant: CoreContestant;
  /** Resources in the pool (min = max). */
  size: number;
  workers: number;
  warmupMs: number;
  windowMs: number;
}

export interface ColdJob {
  kind: 'cold';
  contestant: ColdContestant;
  url: string;
  connections: number;
  /** Cold starts per child (the first one also pays first-use costs in the process). */
  repeats: number;
}

export interface BurstJob {
  kind: 'burst';
  contestant: BurstContestant;
  url: string;
  callers: number;
  max: number;
  sleepMs: number;
  /** Measured bursts per child (after one warm-up burst). */
  bursts: number;
}

/** A workload through one contestant: like a throughput job, over the pgbench tables. */
export interface WorkloadJob {
  kind: 'workload';
  workload: Workload;
  contestant: WorkloadContestant;
  url: string;
  connections: number;
  workers: number;
  warmupMs: number;
  windowMs: number;
}

/** pgbench itself running a workload: the reference for what the server does on this machine. */
export interface PgbenchJob {
  kind: 'pgbench';
  workload: Workload;
  url: string;
  /** pgbench's path; undefined when the binaries in use have none (the row is then reported missing). */
  pgbench: string | undefined;
  /** Why there is no pgbench, when `pgbench` is undefined. */
  missing?: string;
  connections: number;
  /** Whole seconds (`-T`), or 0 for a smoke run (a fixed number of transactions per client instead). */
  seconds: number;
}

export type Job = ThroughputJob | CoreJob | ColdJob | BurstJob | WorkloadJob | PgbenchJob;

/** A measured window of a timed loop. */
export interface WindowResult {
  ops: number;
  elapsedMs: number;
  /** process.cpuUsage() user + system over the window, in microseconds. */
  cpuUs: number;
  /** process.hrtime.bigint() at the window's start and end, in nanoseconds (as strings). */
  startNs: string;
  endNs: string;
}

export interface ThroughputResult extends WindowResult {
  kind: 'throughput';
  qps: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerQuery: number;
}

export interface CoreResult extends WindowResult {
  kind: 'core';
  opsPerSec: number;
  nsPerOp: number;
}

export interface ColdResult {
  kind: 'cold';
  /** Milliseconds of each cold start, in order (the first ran first in the process). */
  samplesMs: number[];
}

export interface BurstStats {
  serviceMs: number;
  p50: number;
  p99: number;
  max: number;
  idealP50: number;
  idealP99: number;
  idealMax: number;
  /** Largest wait beyond a caller's ideal FIFO wait, ms. */
  maxLatenessMs: number;
  /** Share of callers served more than `max` places away from their arrival position. */
  outOfOrder: number;
}

export interface BurstResult {
  kind: 'burst';
  bursts: BurstStats[];
}

/** A workload's window: `ops` are transactions (one statement for select-only). */
export interface WorkloadResult extends Omit<ThroughputResult, 'kind'> {
  kind: 'workload';
}

export interface PgbenchResult {
  kind: 'pgbench';
  /** Transactions per second as pgbench reports them (without connection time); NaN when missing. */
  tps: number;
  /** Mean latency per transaction, ms. */
  latencyMs: number;
  /** pgbench's own CPU (user + system) per transaction, µs; NaN where it cannot be read (not Linux). */
  cpuUsPerTxn: number;
  /** Why the reference is missing, when it is. */
  missing?: string;
}

export type JobResult = ThroughputResult | CoreResult | ColdResult | BurstResult | WorkloadResult | PgbenchResult;

/** What a child sends back over IPC. */
export type ChildMessage =
  | { type: 'result'; result: JobResult; loadMs: number }
  | { type: 'error'; message: string; loadMs: number };

// ── statistics ────────────────────────────────────────────────────────────────────────────────

/** Nearest-rank percentile of an ascending sorted array (p in 0..100). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Latencies in milliseconds, in a growable typed array (no per-sample allocation). */
export class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

// ── the timed loop ────────────────────────────────────────────────────────────────────────────

/**
 * Clock for a warm-up followed by a measured window. Workers call `tick()` after each operation;
 * it starts the window when the warm-up is over and ends it when the window is over. Time is read
 * from the workers themselves, not from timers, because a pool whose hand-offs are all microtasks
 * never lets a timer fire while the workers run.
 */
/**
 * Collects the garbage of setting a contestant up (opening its connections, its log lines) before
 * the warm-up starts, so a major collection of set-up garbage does not land in one contestant's
 * measured window and not another's. Children run with --expose-gc; every contestant gets the same.
 */
export function collectSetupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export class Phases {
  /** 0 warm-up, 1 measuring, 2 stopped. */
  phase = 0;
  ops = 0;
  private opsAtStart = 0;
  private readonly warmupEnd: number;
  private windowEnd = 0;
  private startMs = 0;
  private startNs = 0n;
  private startCpu: NodeJS.CpuUsage = { user: 0, system: 0 };
  result: WindowResult | undefined;

  constructor(
    warmupMs: number,
    private readonly windowMs: number,
  ) {
    this.warmupEnd = performance.now() + warmupMs;
  }

  /** Checks the time at `now` (ms, performance.now()); returns true when workers must stop. */
  check(now: number): boolean {
    if (this.phase === 0) {
      if (now < this.warmupEnd) return false;
      this.phase = 1;
      this.opsAtStart = this.ops;
      this.startCpu = process.cpuUsage();
      this.startNs = process.hrtime.bigint();
      this.startMs = performance.now();
      this.windowEnd = this.startMs + this.windowMs;
      return false;
    }
    if (this.phase === 1) {
      if (now < this.windowEnd) return false;
      const cpu = process.cpuUsage(this.startCpu);
      const endNs = process.hrtime.bigint();
      const endMs = performance.now();
      this.phase = 2;
      this.result = {
        ops: this.ops - this.opsAtStart,
        elapsedMs: endMs - this.startMs,
        cpuUs: cpu.user + cpu.system,
        startNs: this.startNs.toString(),
        endNs: endNs.toString(),
      };
    }
    return true;
  }
}

/**
 * Runs `workers` loops of `op` through a warm-up and a measured window, recording each operation's
 * latency (ms) inside the window. For operations that take microseconds or more (database queries).
 */
export async function timedLoop(
  workers: number,
  op: (worker: number) => Promise<unknown>,
  warmupMs: number,
  windowMs: number,
): Promise<{ window: WindowResult; latencies: Float64Array }> {
  collectSetupGarbage();
  const phases = new Phases(warmupMs, windowMs);
  const samples = new Samples();
  const loop = async (worker: number): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      await op(worker);
      const t1 = performance.now();
      phases.ops++;
      if (phases.phase === 1) samples.push(t1 - t0);
      if (phases.check(t1)) return;
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, i) => loop(i)));
  return { window: phases.result as WindowResult, latencies: samples.sorted() };
}

/** Environment-independent monotonic milliseconds. */
export function nowMs(): number {
  return performance.now();
}
