/**
 * The realistic workloads, after pgbench's built-in scripts over its tables at scale 1 (100,000
 * rows in `pgbench_accounts`): select-only, a point read by a random `aid`; and the TPC-B-like
 * transaction (update an account, read it back, update a teller and the branch, insert a history
 * row). Every contestant runs the same statements the way its users write them: the driver-level
 * contestants send the same texts with `$n` bindings, the knex ones build them with the query
 * builder (`manager.knex` and knex + tarn run identical code).
 */
import type { Knex } from 'knex';
import type { Client as PgClient, PoolClient } from 'pg';
import type * as ManagerModule from '../../lib/index';
import type { Workload, WorkloadContestant } from './common';
import { prewarm, silentInfoLogger } from './db';

/** Accounts at scale 1. */
const ACCOUNTS = 100_000;
const TELLERS = 10;
const BRANCHES = 1;

const SELECT_ONLY = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';
const TPCB = {
  account: 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
  read: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
  teller: 'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2',
  branch: 'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2',
  history: 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)',
};

/**
 * pgbench's tables at scale 1 in plain SQL, for when the binaries in use have no pgbench: the same
 * columns, row counts, fill factor and primary keys as `pgbench -i -s 1`.
 */
export const INIT_SQL = [
  'DROP TABLE IF EXISTS pgbench_history, pgbench_tellers, pgbench_accounts, pgbench_branches',
  'CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100)',
  'CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100)',
  'CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100)',
  'CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))',
  `INSERT INTO pgbench_branches (bid, bbalance) SELECT g, 0 FROM generate_series(1, ${BRANCHES}) g`,
  `INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, ${TELLERS}) g`,
  `INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, ${ACCOUNTS}) g`,
  'ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid)',
  'ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid)',
  'ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)',
  'VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history',
];

/** A uniformly random whole number in [lo, hi], as pgbench's `random(lo, hi)`. */
function random(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/** One transaction's random parameters, as pgbench's `\set` lines draw them. */
function draw(): { aid: number; bid: number; tid: number; delta: number } {
  return { aid: random(1, ACCOUNTS), bid: random(1, BRANCHES), tid: random(1, TELLERS), delta: random(-5000, 5000) };
}

/** Anything with pg's `query(text, values)`. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** The TPC-B-like transaction over one session. */
async function tpcb(c: Queryable): Promise<void> {
  const { aid, bid, tid, delta } = draw();
  await c.query('BEGIN');
  try {
    await c.query(TPCB.account, [delta, aid]);
    await c.query(TPCB.read, [aid]);
    await c.query(TPCB.teller, [delta, tid]);
    await c.query(TPCB.branch, [delta, bid]);
    await c.query(TPCB.history, [tid, bid, aid, delta]);
    await c.query('COMMIT');
  } catch (error) {
    await c.query('ROLLBACK');
    throw error;
  }
}

/** The TPC-B-like transaction through knex's query builder (the same statements). */
async function tpcbKnex(knex: Knex): Promise<void> {
  const { aid, bid, tid, delta } = draw();
  await knex.transaction(async (trx) => {
    await trx('pgbench_accounts').where('aid', aid).increment('abalance', delta);
    await trx('pgbench_accounts').select('abalance').where('aid', aid);
    await trx('pgbench_tellers').where('tid', tid).increment('tbalance', delta);
    await trx('pgbench_branches').where('bid', bid).increment('bbalance', delta);
    await trx('pgbench_history').insert({ tid, bid, aid, delta, mtime: trx.fn.now() });
  });
}

function selectKnex(knex: Knex): Promise<unknown> {
  return knex('pgbench_accounts').select('abalance').where('aid', random(1, ACCOUNTS)).then();
}

/** One workload operation per call (a statement or a transaction), plus a way to shut down. */
export interface WorkloadHarness {
  op(worker: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Builds `contestant` for `workload` over `connections` physical connections. */
export async function openWorkload(workload: Workload, contestant: WorkloadContestant, url: string, connections: number): Promise<WorkloadHarness> {
  const transaction = workload === 'tpcb';
  switch (contestant) {
    case 'manager-getConnection':
    case 'manager-query':
    case 'manager-knex': {
      const { getConnectionInstance, closeConnectionInstance } = require('../../lib/index') as typeof ManagerModule;
      const manager = getConnectionInstance({ connection: url, pool: { min: connections, max: connections }, logger: silentInfoLogger() });
      await manager.ready();
      const close = (): Promise<void> => closeConnectionInstance();
      if (contestant === 'manager-knex') {
        const knex = manager.knex;
        return { op: transaction ? () => tpcbKnex(knex) : () => selectKnex(knex), close };
      }
      if (contestant === 'manager-query') {
        if (transaction) throw new Error('manager.query leases per statement and cannot run a transaction');
        return { op: () => manager.query(SELECT_ONLY, [random(1, ACCOUNTS)]), close };
      }
      return {
        op: async () => {
          const conn = await manager.getConnection();
          try {
            await (transaction ? tpcb(conn) : conn.query(SELECT_ONLY, [random(1, ACCOUNTS)]));
          } finally {
            await manager.releaseConnection(conn);
          }
        },
        close,
      };
    }
    case 'dedicated': {
      process.noDeprecation = true; // more workers than clients queue inside pg (see db.ts)
      const pg = require('pg') as typeof import('pg');
      const clients = await Promise.all(
        Array.from({ length: connections }, async () => {
          const client = new pg.Client({ connectionString: url });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        }),
      );
      // A transaction needs its session to itself: workers sharing a client take turns on it.
      const turns: Array<Promise<unknown>> = clients.map(() => Promise.resolve());
      return {
        op: (worker) => {
          const i = worker % connections;
          const client = clients[i] as PgClient;
          if (!transaction) return client.query(SELECT_ONLY, [random(1, ACCOUNTS)]);
          const turn = (turns[i] as Promise<unknown>).then(() => tpcb(client));
          turns[i] = turn.catch(() => undefined);
          return turn;
        },
        close: async () => {
          await Promise.all(clients.map((c) => c.end()));
        },
      };
    }
    case 'pg-pool': {
      const pg = require('pg') as typeof import('pg');
      const pool = new pg.Pool({ connectionString: url, max: connections });
      pool.on('error', () => undefined);
      await prewarm(connections, () => pool.connect(), (c) => c.release());
      return {
        op: async () => {
          const client: PoolClient = await pool.connect();
          try {
            await (transaction ? tpcb(client) : client.query(SELECT_ONLY, [random(1, ACCOUNTS)]));
          } finally {
            client.release();
          }
        },
        close: () => pool.end(),
      };
    }
    case 'knex-tarn': {
      const mod = require('knex') as { knex?: (config: Knex.Config) => Knex } & ((config: Knex.Config) => Knex);
      const knex = (mod.knex ?? mod)({ client: 'pg', connection: url, pool: { max: connections } });
      await prewarm(connections, () => knex.client.acquireConnection() as Promise<PgClient>, (c) => knex.client.releaseConnection(c));
      return { op: transaction ? () => tpcbKnex(knex) : () => selectKnex(knex), close: () => knex.destroy() };
    }
    case 'generic-pool': {
      const pg = require('pg') as typeof import('pg');
      const genericPool = require('generic-pool') as typeof import('generic-pool');
      const pool = genericPool.createPool<PgClient>(
        {
          create: async () => {
            const client = new pg.Client({ connectionString: url });
            client.on('error', () => undefined);
            await client.connect();
            return client;
          },
          destroy: (client) => client.end(),
        },
        { max: connections, min: connections },
      );
      await pool.ready();
      return {
        op: async () => {
          const client = await pool.acquire();
          try {
            await (transaction ? tpcb(client) : client.query(SELECT_ONLY, [random(1, ACCOUNTS)]));
          } finally {
            void pool.release(client);
          }
        },
        close: async () => {
          await pool.drain();
          await pool.clear();
        },
      };
    }
  }
}
