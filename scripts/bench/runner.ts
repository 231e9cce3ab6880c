/**
 * The child process of the benchmark: runs ONE job (one contestant, one scenario) in a fresh
 * process and reports its result as JSON over IPC (or on stdout when run by hand).
 *
 *   node runner.js '<job as JSON>'
 */
import { performance } from 'node:perf_hooks';
import type {
  BurstJob, BurstResult, BurstStats, ChildMessage, ColdJob, ColdResult, Job, JobResult, ThroughputJob, ThroughputResult, WorkloadJob, WorkloadResult,
} from './common';
import { nowMs, percentileSorted, timedLoop } from './common';

/** Node boot plus loading this runner: the part of the child's life before any job code. */
const loadMs = performance.now();

async function runThroughput(job: ThroughputJob): Promise<ThroughputResult> {
  const { openThroughput } = await import('./db');
  const harness = await openThroughput(job.contestant, job.url, job.connections);
  const { window, latencies } = await timedLoop(job.workers, (w) => harness.op(w), job.warmupMs, job.windowMs);
  await harness.close();
  return {
    kind: 'throughput',
    ...window,
    qps: (window.ops / window.elapsedMs) * 1000,
    p50Us: percentileSorted(latencies, 50) * 1000,
    p99Us: percentileSorted(latencies, 99) * 1000,
    cpuUsPerQuery: window.cpuUs / window.ops,
  };
}

async function runWorkload(job: WorkloadJob): Promise<WorkloadResult> {
  const { openWorkload } = await import('./workloads');
  const harness = await openWorkload(job.workload, job.contestant, job.url, job.connections);
  const { window, latencies } = await timedLoop(job.workers, (w) => harness.op(w), job.warmupMs, job.windowMs);
  await harness.close();
  return {
    kind: 'workload',
    ...window,
    qps: (window.ops / window.elapsedMs) * 1000,
    p50Us: percentileSorted(latencies, 50) * 1000,
    p99Us: percentileSorted(latencies, 99) * 1000,
    cpuUsPerQuery: window.cpuUs / window.ops,
  };
}

async function runCold(job: ColdJob): Promise<ColdResult> {
  const { coldStart } = await import('./db');
  const samplesMs: number[] = [];
  for (let i = 0; i < job.repeats; i++) {
    const { ms, close } = await coldStart(job.contestant, job.url, job.connections);
    samplesMs.push(ms);
    await close();
    // Let the server reap the closed sessions before the next start.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { kind: 'cold', samplesMs };
}

/** One burst: `callers` ask at once; each holds its connection for a `sleepMs` query. */
async function burst(job: BurstJob, leasing: import('./db').Leasing): Promise<BurstStats> {
  const n = job.callers;
  const waits = new Float64Array(n);
  const rank = new Int32Array(n);
  let served = 0;
  let serviceTotal = 0;
  const sql = `select pg_sleep(${job.sleepMs / 1000})`;
  const callers: Promise<void>[] = new Array(n);
  for (let k = 0; k < n; k++) {
    callers[k] = (async () => {
      const called = nowMs();
      const lease = await leasing.acquire();
      const got = nowMs();
      waits[k] = got - called;
      rank[k] = served++;
      await leasing.run(lease, sql);
      serviceTotal += nowMs() - got;
      await leasing.release(lease);
    })();
  }
  await Promise.all(callers);
  const serviceMs = serviceTotal / n;
  // First come, first served with `max` connections: caller k starts after floor(k / max) services.
  const ideal = Float64Array.from({ length: n }, (_, k) => Math.floor(k / job.max) * serviceMs);
  let maxLatenessMs = Number.NEGATIVE_INFINITY;
  let outOfTurn = 0;
  for (let k = 0; k < n; k++) {
    maxLatenessMs = Math.max(maxLatenessMs, (waits[k] as number) - (ideal[k] as number));
    if (Math.abs((rank[k] as number) - k) > job.max) outOfTurn++;
  }
  const sorted = waits.slice().sort();
  return {
    serviceMs,
    p50: percentileSorted(sorted, 50),
    p99: percentileSorted(sorted, 99),
    max: sorted[n - 1] as number,
    idealP50: percentileSorted(ideal, 50),
    idealP99: percentileSorted(ideal, 99),
    idealMax: ideal[n - 1] as number,
    maxLatenessMs,
    outOfOrder: outOfTurn / n,
  };
}

async function runBurst(job: BurstJob): Promise<BurstResult> {
  const { openLeasing } = await import('./db');
  const leasing = await openLeasing(job.contestant, job.url, job.max);
  await burst(job, leasing); // warm-up, not reported
  const bursts: BurstStats[] = [];
  for (let i = 0; i < job.bursts; i++) bursts.push(await burst(job, leasing));
  await leasing.close();
  return { kind: 'burst', bursts };
}

async function run(job: Job): Promise<JobResult> {
  switch (job.kind) {
    case 'throughput':
      return runThroughput(job);
    case 'core': {
      const { runCore } = await import('./cores');
      return runCore(job);
    }
    case 'cold':
      return runCold(job);
    case 'burst':
      return runBurst(job);
    case 'workload':
      return runWorkload(job);
    case 'pgbench': {
      const { runPgbench } = await import('./pgbench');
      return runPgbench(job);
    }
  }
}

function report(message: ChildMessage): Promise<void> {
  if (!process.send) {
    process.stdout.write(`${JSON.stringify(message)}\n`);
    return Promise.resolve();
  }
  return new Promise((resolve) => process.send?.(message, undefined, {}, () => resolve()));
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg) throw new Error("usage: runner '<job JSON>'");
  const job = JSON.parse(arg) as Job;
  try {
    const result = await run(job);
    await report({ type: 'result', result, loadMs });
  } catch (error) {
    await report({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error), loadMs });
    process.exitCode = 1;
  }
  // Pools may leave unref'd timers or sockets closing; the result is in, so leave now.
  process.exit();
}

void main();
