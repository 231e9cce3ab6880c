/**
 * The demo (`npm run demo`): a tour of the connection manager against a real PostgreSQL server.
 *
 * It uses DATABASE_URL when set; otherwise it starts a throwaway server (scripts/embedded-db.ts)
 * and removes it at the end. Step by step it creates the manager (min 10, max 20), runs queries
 * three ways, sends a burst of 50 concurrent workers while a live table of the pool stats refreshes
 * in place, shows what an acquire timeout says, resets the pool, shows a noisy tenant and a quiet
 * one with and without fair share (two small managers of their own), 30 tenants arriving with a pool
 * each under one budget of 20 connections (a manager of its own), closes it and prints a summary.
 * It touches nothing in the database but a temporary table of its own session. Runs in seconds.
 *
 * The live table uses ANSI cursor moves when stdout is a terminal; otherwise (a pipe, a CI log)
 * it prints one snapshot line every 250 ms. NO_COLOR turns colours off.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import { Client } from 'pg';
import {
  ConnectionManager,
  resolveOptions,
  closeConnectionInstance,
  getConnectionInstance,
  isConnectionManagerError,
  type PooledConnection,
  type PoolStats,
} from '../lib';
import { startDemoDatabase, type DemoDatabase } from './embedded-db';

const MIN = 10;
const MAX = 20;
const WORKERS = 50;
const ROUNDS = 3;
const QUERY_SECONDS = 0.2;

// ── output: plain lines above, an optional live region below ────────────────────────────────────

const tty = process.stdout.isTTY === true;
const useColor = tty && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint('1');
const dim = paint('2');
const red = paint('31');
const green = paint('32');
const yellow = paint('33');
const cyan = paint('36');
const ANSI = /\x1b\[[0-9;]*m/g; // eslint-disable-line no-control-regex
const visible = (text: string) => text.replace(ANSI, '');

/**
 * Writes lines to stdout, keeping a "live" block (the stats table) at the bottom of a terminal:
 * a new line is printed above the block, and the block is redrawn in place.
 */
class Screen {
  /** Set when stdout is gone (a closed pipe): nothing more is written. */
  closed = false;
  private frame: string[] = [];
  private drawn = 0;

  /** Prints text (one or more lines) above the live block. */
  print(text = ''): void {
    if (this.closed) return;
    process.stdout.write(this.erase() + text + '\n' + this.draw());
  }

  /** Replaces the live block (terminals only). */
  live(lines: string[]): void {
    if (!tty || this.closed) return;
    const erase = this.erase();
    this.frame = this.fit(lines);
    process.stdout.write((this.drawn === 0 && erase === '' ? '\x1b[?25l' : '') + erase + this.draw());
  }

  /** Leaves the last frame on screen as ordinary output. */
  endLive(): void {
    if (!tty || this.closed || this.drawn === 0) return;
    this.frame = [];
    this.drawn = 0;
    process.stdout.write('\x1b[?25h');
  }

  private erase(): string {
    if (this.drawn === 0) return '';
    const sequence = `\x1b[${this.drawn}F\x1b[J`;
    this.drawn = 0;
    return sequence;
  }

  private draw(): string {
    if (this.frame.length === 0) return '';
    this.drawn = this.frame.length;
    return this.frame.join('\n') + '\n';
  }

  /** Cuts lines to the terminal's width and the block to its height, so cursor moves stay exact. */
  private fit(lines: string[]): string[] {
    const width = Math.max(20, (process.stdout.columns ?? 100) - 1);
    const height = Math.max(6, (process.stdout.rows ?? 40) - 2);
    let out = lines;
    if (out.length > height) {
      const hidden = out.length - height + 1;
      out = [...out.slice(0, height - 1), dim(`    … and ${hidden} more connection(s)`)];
    }
    return out.map((line) => (visible(line).length > width ? visible(line).slice(0, width - 1) + '…' : line));
  }
}

const screen = new Screen();
const say = (text = '') => screen.print(text);
const started = Date.now();
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

function step(n: number, title: string, ...explanation: string[]): void {
  say();
  say(bold(cyan(`── ${n}. ${title} `) + cyan('─'.repeat(Math.max(3, 70 - title.length)))));
  for (const line of explanation) say(dim(line));
}

/** The manager's log lines, one readable line each: "  [pool] New connection … created on demand". */
function demoLogger(): winston.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      say(chunk.toString().replace(/\n$/, ''));
      done();
    },
  });
  return winston.createLogger({
    level: 'info',
    format: winston.format.printf(({ level, message }) => {
      const line = `  [pool] ${String(message)}`;
      if (level === 'error') return red(line);
      if (level === 'warn') return yellow(line);
      return dim(line);
    }),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
}

// ── stats rendering ─────────────────────────────────────────────────────────────────────────────

function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One character per slot of `max`: # in use, o idle, + being opened, . free. */
function gauge(s: PoolStats): string {
  const free = Math.max(0, s.max - s.inUse - s.idle - s.pending);
  return '[' + yellow('#'.repeat(s.inUse)) + green('o'.repeat(s.idle)) + cyan('+'.repeat(s.pending)) + dim('.'.repeat(free)) + ']';
}

function countsLine(s: PoolStats): string {
  const waiting = s.waiting > 0 ? yellow(`waiting ${s.waiting}`) : `waiting ${s.waiting}`;
  return `total ${bold(`${s.total}/${s.max}`)}   idle ${s.idle}   inUse ${s.inUse}   pending ${s.pending}   ${waiting}`;
}

function statsTable(s: PoolStats, title?: string): string[] {
  const lines: string[] = [];
  if (title) lines.push(`  ${bold(title)}`);
  lines.push(`  ${countsLine(s)}`);
  lines.push(`  ${gauge(s)}  ${dim('# in use  o idle  + being opened  . free slot')}`);
  lines.push(dim(`    ${'id'.padEnd(30)} ${'in use'.padEnd(7)} ${'age'.padStart(8)} ${'idle for'.padStart(9)}`));
  for (const c of s.connections) {
    const inUse = c.inUse ? yellow('yes'.padEnd(7)) : green('no'.padEnd(7));
    const idle = c.inUse ? '-' : duration(c.idleMs);
    lines.push(`    ${c.id.padEnd(30)} ${inUse} ${duration(c.ageMs).padStart(8)} ${idle.padStart(9)}`);
  }
  return lines;
}

function snapshotLine(s: PoolStats, sinceMs: number): string {
  return `  t+${(sinceMs / 1000).toFixed(2)}s  ${countsLine(s)}  ${gauge(s)}`;
}

/** The contract's invariants; returns what is broken, if anything. */
function invariantProblems(s: PoolStats): string[] {
  const problems: string[] = [];
  if (s.total !== s.idle + s.inUse) problems.push(`total ${s.total} != idle ${s.idle} + inUse ${s.inUse}`);
  if (s.total + s.pending > s.max) problems.push(`total ${s.total} + pending ${s.pending} > max ${s.max}`);
  if (s.connections.length !== s.total) problems.push(`connections.length ${s.connections.length} != total ${s.total}`);
  return problems;
}

const idsOf = (s: PoolStats) => s.connections.map((c) => c.id);

function printIds(ids: string[], mark?: (id: string) => string | undefined): void {
  for (const id of ids) say(`    ${id}${mark?.(id) ?? ''}`);
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(connection string)';
  }
}

// ── the tour ────────────────────────────────────────────────────────────────────────────────────

let database: DemoDatabase | undefined;
let databaseStart: Promise<DemoDatabase> | undefined;
let manager: ConnectionManager | undefined;

async function main(): Promise<void> {
  say(bold('knex-connection-manager demo'));
  say(dim('One connection pool per process that you can see into and steer: every connection is a record'));
  say(dim('with an id, age and idle time, and you can reset, expire and renew the pool while it runs.'));

  // 1. A database.
  let url = process.env.DATABASE_URL?.trim();
  if (url) {
    step(1, 'Database', 'DATABASE_URL is set, so the demo uses that server.');
    say(`  Using ${redactUrl(url)}`);
  } else {
    step(1, 'Database', 'DATABASE_URL is not set, so the demo starts a throwaway PostgreSQL server', 'of its own (it is stopped and deleted at the end).');
    const t0 = Date.now();
    databaseStart = startDemoDatabase();
    database = await databaseStart;
    url = database.url;
    say(`  Started ${database.kind === 'embedded' ? 'an embedded' : 'the system\'s'} PostgreSQL at ${url} in ${duration(Date.now() - t0)}`);
  }

  // 2. The manager.
  step(2, 'Create the manager',
    'getConnectionInstance() creates the one manager of this process; later calls return it.',
    `It opens pool.min = ${MIN} connections up front and may grow to pool.max = ${MAX} under load.`,
    'Lines marked [pool] are the manager\'s own log, written to the winston logger passed in.');
  say(dim(`  getConnectionInstance({ connection, pool: { min: ${MIN}, max: ${MAX} }, logger })`));
  manager = getConnectionInstance({ connection: url, pool: { min: MIN, max: MAX }, logger: demoLogger() });
  const t0 = Date.now();
  await manager.ready();
  say(`  ready() resolved after ${duration(Date.now() - t0)}: ${MIN} connections are open and idle.`);
  say();
  for (const line of statsTable(manager.getPoolStats(), 'manager.getPoolStats()')) say(line);

  await queries(manager);
  await burst(manager);
  await timeout(manager);
  await reset(manager);
  await fairShare(url);
  await tenants(url);

  // 10. Close.
  step(10, 'Close',
    'close() (or closeConnectionInstance()) fails waiting callers with E_POOL_CLOSED, closes idle',
    'connections now and checked-out ones when released; it resolves when no session is left.');
  const before = manager.getPoolStats();
  await closeConnectionInstance();
  const after = manager.getPoolStats();
  say(`  Closed: ${before.total} connection(s) -> ${after.total}. manager.isOpen = ${manager.isOpen}`);
  if (database) {
    await database.stop();
    database = databaseStart = undefined;
    say('  Stopped and removed the demo PostgreSQL server.');
  }
  summary(after);
}

/** Step 3: the three ways to run a query. */
async function queries(m: ConnectionManager): Promise<void> {
  step(3, 'Run queries',
    'getConnection() checks one connection out; it stays yours until releaseConnection().',
    'conn.query() goes straight to the driver (pg); conn.db is knex bound to that connection.');
  const conn = await m.getConnection({ timeoutMs: 5000 });
  say(`  Checked out ${bold(conn.id)} (inUse: ${conn.inUse})`);

  const direct = await conn.query<{ pid: number }>('select pg_backend_pid() as pid');
  const viaKnex = (await conn.db.raw('select pg_backend_pid() as pid')) as { rows: Array<{ pid: number }> };
  say(`  conn.query('select pg_backend_pid()')   -> server process ${direct.rows[0]?.pid}`);
  say(`  conn.db.raw('select pg_backend_pid()')  -> server process ${viaKnex.rows[0]?.pid}  (the same session)`);

  // A temporary table lives in one session only: this works because conn.db never switches connection.
  await conn.db.raw('create temporary table demo_users (id int primary key, name text not null)');
  await conn.db('demo_users').insert([{ id: 1, name: 'Ada' }, { id: 2, name: 'Grace' }, { id: 3, name: 'Linus' }]);
  await conn.db.transaction(async (trx) => {
    await trx('demo_users').where({ id: 3 }).update({ name: 'Barbara' });
  });
  const grace = (await conn.db('demo_users').where({ id: 2 }).first()) as { id: number; name: string };
  const names = (await conn.db('demo_users').orderBy('id').pluck('name')) as string[];
  say(`  conn.db('demo_users').where({ id: 2 }).first() -> ${JSON.stringify(grace)}`);
  say(`  after conn.db.transaction(…update…), names are ${names.join(', ')}`);
  say(dim('  (a temporary table lives in one session: every conn.db call ran on the same connection)'));
  await conn.db.raw('drop table demo_users');
  await m.releaseConnection(conn);
  say(`  releaseConnection(conn) -> inUse: ${conn.inUse}`);

  say();
  say(dim('  manager.knex is an ordinary knex instance whose pool IS the manager: each query checks a'));
  say(dim('  connection out of the same pool and back in, so it shows up in the same counters.'));
  const acquiredBefore = m.getPoolStats().counters.acquired;
  const rows = (await m
    .knex('pg_stat_activity')
    .whereRaw('datname = current_database()')
    .whereRaw("split_part(application_name, ':', 1) = split_part(current_setting('application_name'), ':', 1)")
    .count({ sessions: '*' })) as Array<{ sessions: string | number }>;
  const stats = m.getPoolStats();
  say(`  manager.knex('pg_stat_activity')…count() -> ${rows[0]?.sessions} sessions of this app on the server`);
  say(`  getPoolStats().total -> ${stats.total}`);
  say(`  counters.acquired went ${acquiredBefore} -> ${stats.counters.acquired}`);

  say();
  say(dim('  withConnection() checks out, runs your function and always releases, even when it throws.'));
  const sum = await m.withConnection(
    async (c: PooledConnection) => (await c.query<{ sum: number }>('select $1::int + $2::int as sum', [20, 22])).rows[0]?.sum,
    { timeoutMs: 2000 },
  );
  say(`  withConnection(c => c.query('select $1::int + $2::int as sum', [20, 22])) -> ${sum}`);
  try {
    await m.withConnection(async (c) => {
      await c.query('select 1');
      throw new Error('something went wrong in the caller');
    });
  } catch (error) {
    say(`  withConnection(… throws …) -> rejects with "${(error as Error).message}"`);
    say(`  and the connection went back anyway: inUse = ${m.getPoolStats().inUse}`);
  }
}

/** Step 4: many more callers than connections, with a live view of the pool. */
async function burst(m: ConnectionManager): Promise<void> {
  step(4, `A burst: ${WORKERS} workers, ${MAX} connections at most`,
    `${WORKERS} workers start at once. Each one does this ${ROUNDS} times:`,
    `  getConnection() -> conn.query('select pg_sleep(${QUERY_SECONDS})') -> releaseConnection()`,
    `The pool hands out its ${MIN} idle connections, opens more on demand up to max ${MAX},`,
    'and queues the other callers, first come, first served.',
    `Watch total grow to ${MAX}, callers queue up in "waiting", then everything drain.`,
    tty ? 'The table below refreshes in place 5 times a second.' : 'stdout is not a terminal: one snapshot line every 250 ms.');
  say();

  const begin = Date.now();
  let snapshots = 0;
  let peakWaiting = 0;
  let peakTotal = 0;
  const broken: string[] = [];
  const sample = () => {
    const s = m.getPoolStats();
    snapshots++;
    peakWaiting = Math.max(peakWaiting, s.waiting);
    peakTotal = Math.max(peakTotal, s.total);
    for (const problem of invariantProblems(s)) broken.push(problem);
    return s;
  };
  const render = () => {
    const s = sample();
    if (tty) screen.live(statsTable(s, `Live pool stats, t+${((Date.now() - begin) / 1000).toFixed(1)} s`));
    else say(snapshotLine(s, Date.now() - begin));
  };
  render();
  const ticker = setInterval(render, tty ? 200 : 250);

  const waitsBefore = m.getPoolStats().wait;
  let checkouts = 0;
  const worker = async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const conn = await m.getConnection({ timeoutMs: 10_000 });
      try {
        await conn.query(`select pg_sleep(${QUERY_SECONDS})`);
        checkouts++;
      } finally {
        await m.releaseConnection(conn);
      }
    }
  };
  // Sample every acquire and release as well, so short peaks are not missed between frames.
  const fine = setInterval(sample, 10);
  try {
    await Promise.all(Array.from({ length: WORKERS }, worker));
  } finally {
    clearInterval(fine);
  }
  const burstMs = Date.now() - begin;
  // A moment of quiet: the connections stay open and idle (until pool.idleTimeoutMs), idle time grows.
  await new Promise((resolve) => setTimeout(resolve, 600));
  clearInterval(ticker);
  render();
  screen.endLive();

  const waits = m.getPoolStats().wait;
  const waited = waits.count - waitsBefore.count;
  const waitedMs = waits.totalMs - waitsBefore.totalMs;
  say();
  say(`  ${checkouts} checkouts in ${seconds(burstMs)}. The pool grew to ${peakTotal}/${MAX}; at most ${peakWaiting} callers waited at once.`);
  say(`  ${waited} checkouts had to wait: ${waited ? `avg ${duration(waitedMs / waited)}` : '-'}, max ${duration(waits.maxMs)} (stats.wait).`);
  say(broken.length === 0
    ? green(`  Invariants held in all ${snapshots} snapshots: total === idle + inUse,\n  total + pending <= max, connections.length === total.`)
    : red(`  Invariant broken in ${broken.length} of ${snapshots} snapshots, e.g. ${broken[0]}`));
  say(dim('  The extra connections stay open while idle, until pool.idleTimeoutMs (default 10 min)'));
  say(dim('  closes them down to min.'));
}

/** Step 5: what a caller sees when no connection comes in time. */
async function timeout(m: ConnectionManager): Promise<void> {
  step(5, 'When no connection comes in time',
    `We check out all ${MAX} connections and hold them, then ask for one more with timeoutMs: 300.`,
    'The error has a stable code; its message tells how full the pool was and who holds what.');
  const held = await Promise.all(Array.from({ length: MAX }, () => m.getConnection()));
  try {
    await m.getConnection({ timeoutMs: 300 });
    say(red('  unexpected: got a connection'));
  } catch (error) {
    if (!isConnectionManagerError(error)) throw error;
    say(`  getConnection({ timeoutMs: 300 }) -> ${bold(error.code)}`);
    say(`  ${dim(error.message)}`);
  }
  await Promise.all(held.map((c) => m.releaseConnection(c)));
  say(`  Released all ${MAX}; timedOut counter: ${m.getPoolStats().counters.timedOut}`);
}

/** Steps 6 and 7: resetPool(). */
async function reset(m: ConnectionManager): Promise<void> {
  step(6, 'resetPool()',
    'resetPool() drains the pool and refills it: use it after a failover or a password rotation.',
    'Idle connections close now; checked-out ones close when released (never handed out again);',
    'new connections refill the pool to min. Callers arriving meanwhile are served from the new',
    'connections, nothing is rejected. New connections get new ids: the N in conn_<N>_<ns> keeps',
    'counting and is never reused.');
  const before = m.getPoolStats();
  say(`  Before (${before.total} connections):`);
  printIds(idsOf(before));
  say();
  say(dim('  We keep one connection checked out across the reset, to see what happens to it.'));
  const kept = await m.getConnection();
  say(`  Checked out ${bold(kept.id)}`);
  say();
  await m.resetPool();
  const after = m.getPoolStats();
  say();
  say(`  After resetPool() (${after.total} connections):`);
  printIds(idsOf(after), (id) => (id === kept.id ? yellow('   <- still checked out: closes when released') : undefined));
  const lastOld = Math.max(...before.connections.map((c) => Number(c.id.split('_')[1])));
  const firstNew = Math.min(...after.connections.filter((c) => c.id !== kept.id).map((c) => Number(c.id.split('_')[1])));
  say(dim(`  The old ids went up to N = ${lastOld}; the new ones start at N = ${firstNew}.`));

  step(7, 'Release the connection kept across the reset',
    'Its holder could keep using it; once released it is closed instead of going back to the pool.');
  const { rows } = await kept.query<{ ok: number }>('select 1 as ok');
  say(`  ${kept.id}.query('select 1') still works -> ${rows[0]?.ok}`);
  await m.releaseConnection(kept);
  await waitFor(() => !m.getPoolStats().connections.some((c) => c.id === kept.id) && m.getPoolStats().total >= MIN, 3000);
  const final = m.getPoolStats();
  say();
  for (const line of statsTable(final, 'manager.getPoolStats()')) say(line);
  say(dim('  triggerExpireConnections() and triggerRenewConnections() work the same way: expire retires'));
  say(dim('  connections past pool.maxLifetimeMs or pool.idleTimeoutMs; renew replaces every connection'));
  say(dim('  with a fresh one without lowering capacity.'));
}

/**
 * Step 8: a noisy tenant and a quiet one on a small pool, first strictly first come first served,
 * then with `admission.fairShare`. Two short-lived managers of their own (max 4), silent.
 */
async function fairShare(url: string): Promise<void> {
  step(8, 'Fair share: a noisy tenant and a quiet one',
    'Tenant "noisy" keeps 40 requests queued; tenant "quiet" sends 2 at a time. Each request holds a',
    'connection for 20 ms, on a pool of 4: first strictly first come, first served, then with admission: { fairShare: "tenant" }.');
  const run = async (admission: { fairShare: string } | undefined): Promise<number[]> => {
    const config = resolveOptions({ connection: url, pool: { min: 4, max: 4 }, logger: winston.createLogger({ silent: true }), ...(admission ? { admission } : {}) });
    const m = new ConnectionManager(config);
    await m.ready();
    const work = (tenant: string) => m.withConnection((c) => c.query('select pg_sleep(0.02)'), { tags: { tenant }, timeoutMs: 10_000 });
    let done = false;
    const noisy = Array.from({ length: 40 }, async () => {
      while (!done) await work('noisy');
    });
    await delay(50); // the noisy tenant fills the queue first
    const waits: number[] = [];
    await Promise.all(Array.from({ length: 2 }, async () => {
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        await work('quiet');
        waits.push(Date.now() - t0);
      }
    }));
    done = true;
    await Promise.all(noisy);
    await m.close();
    return waits.sort((a, b) => a - b);
  };
  for (const [label, admission] of [['first come, first served', undefined], ['fairShare: "tenant"', { fairShare: 'tenant' }]] as const) {
    const waits = await run(admission);
    say(`  ${label.padEnd(26)} quiet tenant's requests: median ${duration(waits[Math.floor(waits.length / 2)])}, worst ${duration(waits[waits.length - 1])}`);
  }
  say(dim('  With fair share, each freed connection goes to the tenant holding fewest: the quiet one no longer'));
  say(dim('  waits behind the noisy one\'s queue. See docs/admission.md for quotas, priorities and rate limits.'));
}

/**
 * Step 9: 30 tenants arriving, each with a pool of its own made by `poolFactory`, under one budget
 * of 20 connections. A manager of its own, silent; sessions counted in pg_stat_activity.
 */
async function tenants(url: string): Promise<void> {
  const TENANTS = 30;
  const BUDGET = 20;
  step(9, `Named pools: ${TENANTS} tenants arriving, one budget of ${BUDGET} connections`,
    'poolFactory makes a pool per tenant on its first use (max 3 each); budget.maxConnections bounds the',
    'sessions of every pool together. A tenant arrives every 20 ms and runs 6 queries of 10 ms, 2 at a time.');
  say(dim(`  getConnectionInstance({ connection, poolFactory: (t) => ({ connection, pool: { max: 3 } }), budget: { maxConnections: ${BUDGET} } })`));
  const app = `kcm-demo-tenants-${process.pid}`;
  const m = new ConnectionManager(resolveOptions({
    connection: { connectionString: url, application_name: app },
    pool: { min: 0, max: 4 },
    poolFactory: () => ({ connection: { connectionString: url, application_name: app }, pool: { max: 3 } }),
    poolIdleTimeoutMs: 500,
    budget: { maxConnections: BUDGET },
    logger: winston.createLogger({ silent: true }),
  }));
  const watcher = new Client({ connectionString: url, application_name: 'kcm-demo-watcher' });
  await watcher.connect();
  const sessions = async (): Promise<number> =>
    (await watcher.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE split_part(application_name, ':', 1) = $1", [app])).rows[0].n;
  try {
    let running = true;
    let peakSessions = 0;
    let peakOpen = 0;
    let peakWaitingPools = 0;
    const sampler = (async () => {
      while (running) {
        const budget = m.getPoolStats().budget;
        peakOpen = Math.max(peakOpen, budget?.open ?? 0);
        peakWaitingPools = Math.max(peakWaitingPools, budget?.waitingPools.length ?? 0);
        peakSessions = Math.max(peakSessions, await sessions());
      }
    })();
    const t0 = Date.now();
    await Promise.all(Array.from({ length: TENANTS }, async (_, i) => {
      await delay(i * 20);
      const pool = m.pool(`tenant-${i + 1}`);
      await Promise.all([0, 1].map(async () => {
        for (let k = 0; k < 3; k++) await pool.query('select pg_sleep(0.01)');
      }));
    }));
    const elapsed = Date.now() - t0;
    running = false;
    await sampler;
    const stats = m.getPoolStats();
    say(`  ${TENANTS} tenants served in ${duration(elapsed)}: ${stats.totals?.made} pools made, ${stats.totals?.counters.acquired} queries.`);
    say(`  Most sessions seen in pg_stat_activity: ${peakSessions} (budget.open at most ${peakOpen} of ${BUDGET}); at most ${peakWaitingPools} pool(s) waiting for a slot.`);
    say(`  ${stats.budget?.reclaimed} connection(s) were closed to hand their slot to a waiting tenant (reclaimed).`);
    await waitFor(() => (m.getPoolStats().totals?.closed ?? 0) >= TENANTS, 5_000);
    say(`  ${m.getPoolStats().totals?.closed} tenant pools closed after poolIdleTimeoutMs (500 ms here) without use; sessions left: ${await sessions()}.`);
    say(dim('  See docs/named-pools.md for static pools, the reclaim order and sizing for database-per-tenant.'));
  } finally {
    await m.close();
    await watcher.end();
  }
}

async function waitFor(done: () => boolean, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  while (!done() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
}

function summary(s: PoolStats): void {
  step(11, 'Summary', 'Counters only grow; wait counts the checkouts that had to queue.');
  const c = s.counters;
  const rows: Array<[string, number]> = [
    ['created', c.created], ['destroyed', c.destroyed], ['acquired', c.acquired], ['released', c.released],
    ['timedOut', c.timedOut], ['aborted', c.aborted], ['createErrors', c.createErrors],
    ['validationFailures', c.validationFailures], ['expired', c.expired], ['idleClosed', c.idleClosed],
    ['renewed', c.renewed], ['leaksDetected', c.leaksDetected], ['reclaimed', c.reclaimed],
  ];
  for (let i = 0; i < rows.length; i += 3) {
    say('  ' + rows.slice(i, i + 3).map(([k, v]) => `${k.padEnd(18)} ${String(v).padStart(5)}`).join('    '));
  }
  const avg = s.wait.count > 0 ? s.wait.totalMs / s.wait.count : 0;
  say(`  wait: count ${s.wait.count}, avg ${duration(avg)}, max ${duration(s.wait.maxMs)}`);
  say();
  say(green(bold(`Done in ${seconds(Date.now() - started)}.`)) + dim(' Read README.md for the API, docs/ for options, errors and the lifecycle.'));
}

// ── run, and clean up whatever happens ──────────────────────────────────────────────────────────

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cleaning: Promise<void> | undefined;
/** Closes the pool (giving checked-out connections 2 s) and stops the demo database, once. */
function cleanUp(): Promise<void> {
  return (cleaning ??= (async () => {
    screen.endLive();
    await Promise.race([closeConnectionInstance().catch(() => undefined), delay(2000)]);
    // The server may still be starting: wait for it, so that it is stopped too.
    const db = database ?? (await databaseStart?.catch(() => undefined));
    database = databaseStart = undefined;
    await db?.stop().catch(() => undefined);
  })());
}

let exiting = false;
/** Ends the demo with `code` after cleaning up; the first call wins. */
function finish(code: number, message?: string): void {
  if (exiting) return;
  exiting = true;
  screen.endLive();
  screen.closed = true; // what the interrupted steps still log would only confuse
  if (message) console.error(message);
  void cleanUp().finally(() => process.exit(code));
}

function failed(error: unknown): void {
  const text = isConnectionManagerError(error)
    ? `${error.code}: ${error.message}`
    : error instanceof Error ? error.stack ?? error.message : String(error);
  finish(1, red(`\nThe demo failed: ${text}`));
}

// Output piped into a program that stops reading (`| head`): stop writing, clean up, exit quietly.
process.stdout.on('error', () => {
  screen.closed = true;
  finish(0);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (exiting) process.exit(130); // a second Ctrl-C: leave at once
    finish(130, yellow('\nInterrupted: closing the pool and stopping the demo database…'));
  });
}

// The pool's own timers do not keep a process alive (a library must not hold its host open), so
// while nothing else is pending (say, the pool retrying a server that is down) this one does, and
// it bounds the whole demo.
const WATCHDOG_MS = 90_000;
setTimeout(() => failed(new Error(`it did not finish within ${WATCHDOG_MS / 1000} s`)), WATCHDOG_MS);

main().then(() => process.exit(0), failed);
