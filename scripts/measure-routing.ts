/**
 * Read throughput of `manager.query()` with one hot standby configured versus the primary alone.
 *
 * Starts a throwaway primary and a standby streaming from it (spec/helpers/replica-cluster.ts),
 * then runs WORKERS concurrent loops of a light read for DURATION_MS in each setup, ROUNDS times
 * with the setups interleaved, and reports queries per second (median and per round), the Node
 * process's CPU time per query (the client-side cost of routing, which a busy machine disturbs
 * less than throughput) and which server answered. Everything is bounded: each run stops at
 * its deadline and the cluster is removed at the end, also on failure.
 *
 *   npx ts-node --transpile-only scripts/measure-routing.ts [--workers 32] [--duration-ms 3000] [--rounds 3]
 *
 * Both servers run on this machine and share its cores: the numbers show the routing's own cost
 * and behaviour, not the gain of a standby on a machine of its own.
 */
import * as os from 'node:os';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManagerConfig } from '../lib';
import { startReplicaCluster, type ReplicaCluster } from '../spec/helpers/replica-cluster';

interface Setup {
  name: string;
  config: (cluster: ReplicaCluster) => ConnectionManagerConfig;
}

interface Outcome {
  setup: string;
  queries: number;
  failed: number;
  onStandby: number;
  seconds: number;
  qps: number;
  /** CPU time of this Node process per query, in microseconds (less sensitive to a busy machine). */
  cpuUsPerQuery: number;
}

const READ_SQL = 'SELECT pg_is_in_recovery() AS r';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const SETUPS: Setup[] = [
  {
    name: 'primary only (pool max 10)',
    config: (c) => ({ connection: c.primaryUrl, pool: { min: 10, max: 10 }, logger: { level: 'error' } }),
  },
  {
    name: 'primary only (pool max 20)',
    config: (c) => ({ connection: c.primaryUrl, pool: { min: 20, max: 20 }, logger: { level: 'error' } }),
  },
  {
    name: 'primary + 1 standby (pool max 10 each)',
    config: (c) => ({
      connection: c.primaryUrl,
      pool: { min: 10, max: 10 },
      logger: { level: 'error' },
      replicas: [{ name: 'standby', connection: c.replicaUrl }],
    }),
  },
];

async function measure(setup: Setup, cluster: ReplicaCluster, workers: number, durationMs: number): Promise<Outcome> {
  const manager = getConnectionInstance(setup.config(cluster));
  try {
    await manager.ready();
    const replicas = manager.getPoolStats().replicas;
    if (replicas && !Object.values(replicas).every((r) => r.healthy)) throw new Error(`${setup.name}: a standby is not in rotation`);
    // Warm up (connections opened, statements planned), then measure.
    const run = async (ms: number) => {
      const tally = { queries: 0, failed: 0, onStandby: 0 };
      const deadline = performance.now() + ms;
      const loop = async () => {
        while (performance.now() < deadline) {
          try {
            const { rows } = await manager.query<{ r: boolean }>(READ_SQL);
            tally.queries++;
            if (rows[0].r) tally.onStandby++;
          } catch {
            tally.failed++;
          }
        }
      };
      const started = performance.now();
      const cpu = process.cpuUsage();
      await Promise.all(Array.from({ length: workers }, loop));
      const used = process.cpuUsage(cpu);
      return { ...tally, seconds: (performance.now() - started) / 1000, cpuUs: used.user + used.system };
    };
    await run(Math.min(500, durationMs));
    const result = await run(durationMs);
    const { cpuUs, ...counts } = result;
    return { setup: setup.name, ...counts, qps: Math.round(result.queries / result.seconds), cpuUsPerQuery: result.queries ? cpuUs / result.queries : 0 };
  } finally {
    await closeConnectionInstance();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : Math.round(((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2);
}

async function main(): Promise<void> {
  const workers = option('--workers', 32);
  const durationMs = option('--duration-ms', 3_000);
  const rounds = option('--rounds', 3);
  const cluster = await startReplicaCluster();
  try {
    console.log(`${workers} workers x ${durationMs} ms of \`${READ_SQL}\` through manager.query(), ${rounds} round(s), setups interleaved; ` +
      `Node ${process.version}, ${os.cpus().length} cores shared by Node and both servers, load average ${os.loadavg()[0].toFixed(1)} at start`);
    const outcomes = new Map<string, Outcome[]>(SETUPS.map((s) => [s.name, []]));
    // Interleaved, so that changes in the machine's load fall on every setup alike.
    for (let round = 0; round < rounds; round++) {
      for (const setup of SETUPS) (outcomes.get(setup.name) as Outcome[]).push(await measure(setup, cluster, workers, durationMs));
    }
    console.log('| setup | q/s (median) | q/s per round | Node CPU µs/query (median) | served by the standby | failed |');
    console.log('| --- | ---: | --- | ---: | ---: | ---: |');
    for (const [name, list] of outcomes) {
      const queries = list.reduce((n, o) => n + o.queries, 0);
      const onStandby = list.reduce((n, o) => n + o.onStandby, 0);
      const failed = list.reduce((n, o) => n + o.failed, 0);
      const share = queries ? `${Math.round((100 * onStandby) / queries)}%` : '-';
      const cpu = median(list.map((o) => Math.round(o.cpuUsPerQuery * 10))) / 10;
      console.log(`| ${name} | ${median(list.map((o) => o.qps))} | ${list.map((o) => o.qps).join(', ')} | ${cpu} | ${share} | ${failed} |`);
    }
  } finally {
    await cluster.stopAll();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
