/**
 * Measures what named pools cost (docs/named-pools.md):
 *
 * 1. `manager.pool(name)` for a pool that is open: a static pool, and a pool `poolFactory` made;
 *    ns per call over 1,000,000 calls, median of the rounds.
 * 2. A first use: `await manager.pool(newName).query('select 1')` for a name never seen (the
 *    factory's call, the pool's making, one connection opened, one query), against the same query
 *    on a pool already warm; ms, median over 30 names.
 * 3. The budget on the pool core: 64 workers on 20 fake connections, acquire → await → release, the
 *    pool without a budget and the same pool under a budget it never reaches (every release asks
 *    the budget whether a waiting pool claims the connection); rounds interleaved, ns/op medians.
 *
 *   npx ts-node --transpile-only scripts/measure-named-pools.ts [--rounds 5]
 *
 * It starts a throwaway PostgreSQL on 127.0.0.1 (scripts/test-db.ts) for parts 1 and 2.
 */
import winston from 'winston';
import { ConnectionManager } from '../lib/manager';
import { resolveOptions, DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS } from '../lib/options';
import { Pool } from '../lib/pool/pool';
import { PoolEntry } from '../lib/pool/entry';
import { systemClock } from '../lib/pool/clock';
import { ConnectionBudget } from '../lib/named-pools/budget';
import { startPostgres } from './test-db';
import { fakeConnector } from './bench/cores';
import { median, numberOption } from './measure-args';

const silent = winston.createLogger({ silent: true });

/** ns per `manager.pool(name)` over `calls` calls. */
function lookupNs(manager: ConnectionManager, name: string, calls: number): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink += manager.pool(name).name.length;
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

/** ns/op of 64 workers on a pool of 20 over `ms`, with or without a budget. */
async function coreNs(withBudget: boolean, ms: number): Promise<number> {
  const pool = new Pool<object, PoolEntry<object>>({
    name: 'bench',
    options: { ...DEFAULT_POOL_OPTIONS, min: 20, max: 20 },
    retry: { ...DEFAULT_RETRY_OPTIONS },
    connector: fakeConnector,
    clock: systemClock,
    logger: silent,
    createEntry: (owner) => new PoolEntry<object>(owner),
    budget: withBudget ? new ConnectionBudget(1_000) : undefined,
  });
  await pool.ready();
  let ops = 0;
  // Acquires that an idle connection serves never leave the microtask queue, so no timer would
  // fire: each worker reads the clock instead (the same cost in both variants).
  const start = performance.now();
  const end = start + ms;
  const workers = Array.from({ length: 64 }, async () => {
    while (performance.now() < end) {
      const entry = await pool.acquire();
      await Promise.resolve();
      pool.release(entry);
      ops++;
    }
  });
  await Promise.all(workers);
  const elapsed = performance.now() - start;
  await pool.close();
  return (elapsed * 1e6) / ops;
}

async function main(): Promise<void> {
  const rounds = numberOption('--rounds', 5);
  const pg = await startPostgres();
  try {
    const url = pg.url;
    let made = 0;
    const manager = new ConnectionManager(
      resolveOptions({
        connection: url,
        pool: { min: 0, max: 4 },
        pools: { analytics: { connection: url } },
        poolFactory: (name: string) => ({ connection: `${url}${url.includes('?') ? '&' : '?'}application_name=${encodeURIComponent(name)}`, pool: { max: 2 } }),
        maxPools: 1_000,
        logger: silent,
      }),
    );
    try {
      await manager.pool('tenant-warm').query('select 1');
      const lookups = { static: [] as number[], made: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        lookups.static.push(lookupNs(manager, 'analytics', 1_000_000));
        lookups.made.push(lookupNs(manager, 'tenant-warm', 1_000_000));
      }
      console.log(`manager.pool(name), pool open: static ${median(lookups.static).toFixed(1)} ns/call, made by poolFactory ${median(lookups.made).toFixed(1)} ns/call (median of ${rounds} x 1,000,000)`);
      const first: number[] = [];
      const warm: number[] = [];
      for (let i = 0; i < 30; i++) {
        const name = `tenant-${i}`;
        let start = performance.now();
        await manager.pool(name).query('select 1');
        first.push(performance.now() - start);
        made++;
        start = performance.now();
        await manager.pool(name).query('select 1');
        warm.push(performance.now() - start);
      }
      console.log(`first use (make the pool, open a connection, select 1): median ${median(first).toFixed(2)} ms, max ${Math.max(...first).toFixed(2)} ms; the same query on the warm pool: median ${median(warm).toFixed(3)} ms (${made} pools made)`);
    } finally {
      await manager.close();
    }
    const plain: number[] = [];
    const budgeted: number[] = [];
    for (let r = 0; r < rounds; r++) {
      plain.push(await coreNs(false, 1_000));
      budgeted.push(await coreNs(true, 1_000));
    }
    const p = median(plain);
    const b = median(budgeted);
    console.log(`pool core, 64 workers on 20: no budget ${p.toFixed(0)} ns/op, under a budget not reached ${b.toFixed(0)} ns/op (${(b / p).toFixed(3)}x; ${rounds} interleaved rounds of 1 s)`);
  } finally {
    await pg.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
