/**
 * Measures what observability costs (docs/observability.md, docs/benchmarks.md):
 *
 * 1. Throughput with query metrics on and off, in one run: 32 workers running
 *    `manager.query('SELECT 1')` on a pool of 10, the two managers in interleaved rounds of
 *    `--seconds` each (which goes first alternates) (OpenTelemetry on in both, without an SDK, as most applications run it);
 *    queries/s, median of the rounds, and the overhead in percent.
 * 2. The wrapper's CPU per statement: a client whose `query()` answers on the next microtask,
 *    wrapped and not;
 *    ns per call over 1,000,000 calls, median of the rounds.
 * 3. `manager.inspect()` with 20 and with 200 open connections: ms, median of 15 calls.
 * 4. The session's rename to `<prefix>:<N>`: the statement's round trip (it is queued ahead of the
 *    first statement on a new connection; the open itself does not wait for it), median of 200.
 *
 *   npx ts-node --transpile-only scripts/measure-query-metrics.ts [--rounds 5] [--seconds 2]
 *
 * It starts a throwaway PostgreSQL on 127.0.0.1 (scripts/test-db.ts) with max_connections 300.
 */
import { Client } from 'pg';
import winston from 'winston';
import { ConnectionManager } from '../lib/manager';
import { resolveOptions } from '../lib/options';
import { meterQueries, sessionName } from '../lib/observability/session';
import { startPostgres } from './test-db';
import { median, numberOption } from './measure-args';

const silent = winston.createLogger({ silent: true });

/** CPU time of this process (user + system) per query, in µs, of the last `throughput()` call. */
let lastCpuUs = 0;

/** Queries per second of 32 workers on `manager` for `ms`. */
async function throughput(manager: ConnectionManager, ms: number): Promise<number> {
  let done = 0;
  const cpu = process.cpuUsage();
  const until = performance.now() + ms;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < until) {
      await manager.query('SELECT 1');
      done++;
    }
  }));
  const used = process.cpuUsage(cpu);
  lastCpuUs = (used.user + used.system) / done;
  return done / (ms / 1000);
}

/**
 * ns per `query()` of a client answering on the next microtask, wrapped or not. Like pg, it makes a
 * promise for the promise form and calls back for the callback form (which the wrapper uses).
 */
async function wrapperNs(wrapped: boolean, calls: number): Promise<number> {
  const rows = { rows: [] };
  const client = {
    query(_text: string, values?: unknown, callback?: unknown): unknown {
      const done = (typeof values === 'function' ? values : callback) as ((error: unknown, result: unknown) => void) | undefined;
      if (done !== undefined) {
        queueMicrotask(() => done(null, rows));
        return undefined;
      }
      return new Promise((resolve) => queueMicrotask(() => resolve(rows)));
    },
  };
  if (wrapped) {
    const { QueryMetrics } = await import('../lib/observability/query-metrics');
    const { Registry } = await import('prom-client');
    meterQueries(client, { state: 'inUse' }, new QueryMetrics(new Registry(), true, 'bench').meter('primary', 'primary'));
  }
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1000) {
    const batch: Array<Promise<unknown>> = [];
    for (let j = 0; j < 1000; j++) batch.push(client.query('SELECT 1') as Promise<unknown>);
    await Promise.all(batch);
  }
  return Number(process.hrtime.bigint() - start) / calls;
}

async function main(): Promise<void> {
  const rounds = numberOption('--rounds', 5);
  const seconds = numberOption('--seconds', 2);
  const pg = await startPostgres({ extraConf: { max_connections: '300' } });
  const url = pg.url;
  try {
    const make = (queryMetrics: boolean, pool: { min: number; max: number }) =>
      new ConnectionManager(resolveOptions({ connection: url, pool: { ...pool, acquireTimeoutMs: 60_000 }, queryMetrics, logger: silent }));
    const on = make(true, { min: 10, max: 10 });
    // --aa: both managers with query metrics on, to see the noise of the machine in the same run.
    const off = make(process.argv.includes('--aa'), { min: 10, max: 10 });
    try {
      await Promise.all([on.ready(), off.ready()]);
      await throughput(on, 500); // warm-up
      await throughput(off, 500);
      const results = { on: [] as number[], off: [] as number[] };
      const cpu = { on: [] as number[], off: [] as number[] };
      const runOff = async () => {
        results.off.push(await throughput(off, seconds * 1000));
        cpu.off.push(lastCpuUs);
      };
      // Which goes first alternates, so neither always runs on a machine just warmed (or loaded) by the other.
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) await runOff();
        results.on.push(await throughput(on, seconds * 1000));
        cpu.on.push(lastCpuUs);
        if (r % 2 === 1) await runOff();
      }
      const a = median(results.on);
      const b = median(results.off);
      console.log(`throughput, 32 workers on 10 connections, SELECT 1: query metrics on ${a.toFixed(0)} q/s, off ${b.toFixed(0)} q/s, overhead ${((1 - a / b) * 100).toFixed(1)}% (median of ${rounds} interleaved rounds of ${seconds} s); this process's CPU per query: on ${median(cpu.on).toFixed(1)} µs, off ${median(cpu.off).toFixed(1)} µs`);
    } finally {
      await Promise.all([on.close(), off.close()]);
    }

    const plain: number[] = [];
    const wrapped: number[] = [];
    for (let r = 0; r < rounds; r++) {
      plain.push(await wrapperNs(false, 1_000_000));
      wrapped.push(await wrapperNs(true, 1_000_000));
    }
    console.log(`query() of a client answering on the next microtask: plain ${median(plain).toFixed(0)} ns, with query metrics ${median(wrapped).toFixed(0)} ns (+${(median(wrapped) - median(plain)).toFixed(0)} ns per statement; median of ${rounds} x 1,000,000)`);

    for (const n of [20, 200]) {
      const manager = new ConnectionManager(resolveOptions({ connection: url, pool: { min: n, max: n, acquireTimeoutMs: 60_000 }, logger: silent }));
      try {
        await manager.ready();
        await manager.inspect();
        const times: number[] = [];
        for (let i = 0; i < 15; i++) {
          const start = performance.now();
          const result = await manager.inspect();
          times.push(performance.now() - start);
          if (result.connections.filter((c) => c.state !== null).length !== n) throw new Error(`inspect() found ${result.connections.length} connections, expected ${n} on the server`);
        }
        console.log(`inspect() with ${n} connections: median ${median(times).toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms (15 calls; one connect and one query each)`);
      } finally {
        await manager.close();
      }
    }

    const client = new Client({ connectionString: url, application_name: 'knex-connection-manager' });
    await client.connect();
    try {
      const times: number[] = [];
      for (let i = 1; i <= 200; i++) {
        const start = performance.now();
        await client.query("SELECT set_config('application_name', $1, false) WHERE current_setting('application_name') = $2", [sessionName('knex-connection-manager', i), 'knex-connection-manager']);
        times.push(performance.now() - start);
        await client.query("SET application_name = 'knex-connection-manager'");
      }
      console.log(`rename to <prefix>:<N>: median ${(median(times) * 1000).toFixed(0)} µs per new connection (one round trip ahead of its first statement; 200 runs)`);
    } finally {
      await client.end();
    }
  } finally {
    await pg.stop();
    await pg.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
