/**
 * The contestants that talk to PostgreSQL, each built the way its users build it. Every module is
 * required lazily, so a child process loads only its own contestant's code.
 */
import type { Knex } from 'knex';
import type { Client as PgClient, Pool as PgPool, PoolClient } from 'pg';
import type { Pool as GenericPool } from 'generic-pool';
import type { Logger } from 'winston';
import type * as ManagerModule from '../../lib/index';
import type { BurstContestant, ColdContestant, DbContestant } from './common';
import { nowMs } from './common';

/** The manager's logging as shipped (winston at level info), into a transport that prints nothing. */
export function silentInfoLogger(): Logger {
  const winston = require('winston') as typeof import('winston');
  return winston.createLogger({ level: 'info', transports: [new winston.transports.Console({ silent: true })] });
}

function managerModule(): typeof ManagerModule {
  return require('../../lib/index') as typeof ManagerModule;
}

function pg(): typeof import('pg') {
  return require('pg') as typeof import('pg');
}

function knexFactory(): (config: Knex.Config) => Knex {
  const mod = require('knex') as { knex?: (config: Knex.Config) => Knex } & ((config: Knex.Config) => Knex);
  return mod.knex ?? mod;
}

function genericPool(): typeof import('generic-pool') {
  return require('generic-pool') as typeof import('generic-pool');
}

/** A plain pg client, connected; driver errors on an idle client are swallowed (the query reports them). */
async function connectClient(url: string): Promise<PgClient> {
  const client = new (pg().Client)({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function createGenericPool(url: string, max: number, min: number): GenericPool<PgClient> {
  return genericPool().createPool<PgClient>(
    {
      create: () => connectClient(url),
      destroy: (client) => client.end(),
    },
    { max, min },
  );
}

/** One throughput operation per call, plus a way to shut the contestant down. */
export interface ThroughputHarness {
  op(worker: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Builds a contestant for the `SELECT 1` throughput test, with `connections` physical connections. */
export async function openThroughput(name: DbContestant, url: string, connections: number): Promise<ThroughputHarness> {
  switch (name) {
    case 'manager-getConnection': {
      const { getConnectionInstance, closeConnectionInstance } = managerModule();
      const manager = getConnectionInstance({ connection: url, pool: { min: connections, max: connections }, logger: silentInfoLogger() });
      await manager.ready();
      return {
        op: async () => {
          const conn = await manager.getConnection();
          try {
            await conn.query('SELECT 1');
          } finally {
            await manager.releaseConnection(conn);
          }
        },
        close: () => closeConnectionInstance(),
      };
    }
    case 'manager-knex': {
      const { getConnectionInstance, closeConnectionInstance } = managerModule();
      const manager = getConnectionInstance({ connection: url, pool: { min: connections, max: connections }, logger: silentInfoLogger() });
      await manager.ready();
      const knex = manager.knex;
      return {
        op: async () => {
          await knex.raw('SELECT 1');
        },
        close: () => closeConnectionInstance(),
      };
    }
    case 'dedicated': {
      // More workers than clients queue inside each pg client, which pg 8.x flags as deprecated
      // (once per process); the warning would only clutter the benchmark's output.
      process.noDeprecation = true;
      const clients = await Promise.all(Array.from({ length: connections }, () => connectClient(url)));
      return {
        op: (worker) => (clients[worker % connections] as PgClient).query('SELECT 1'),
        close: async () => {
          await Promise.all(clients.map((c) => c.end()));
        },
      };
    }
    case 'pg-pool': {
      const pool = new (pg().Pool)({ connectionString: url, max: connections });
      pool.on('error', () => undefined);
      await prewarm(connections, () => pool.connect(), (c) => c.release());
      return {
        op: async () => {
          const client = await pool.connect();
          try {
            await client.query('SELECT 1');
          } finally {
            client.release();
          }
        },
        close: () => pool.end(),
      };
    }
    case 'knex-tarn': {
      const knex = knexFactory()({ client: 'pg', connection: url, pool: { max: connections } });
      await prewarm(connections, () => knex.client.acquireConnection() as Promise<PgClient>, (c) => knex.client.releaseConnection(c));
      return {
        op: async () => {
          await knex.raw('SELECT 1');
        },
        close: () => knex.destroy(),
      };
    }
    case 'generic-pool': {
      const pool = createGenericPool(url, connections, connections);
      await pool.ready();
      await prewarm(connections, () => pool.acquire(), (c) => pool.release(c));
      return {
        op: async () => {
          const client = await pool.acquire();
          try {
            await client.query('SELECT 1');
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

/** Leases `count` connections at once (so that many are open), then returns them all. */
export async function prewarm<L>(count: number, acquire: () => Promise<L>, release: (lease: L) => unknown): Promise<void> {
  const leases = await Promise.all(Array.from({ length: count }, () => acquire()));
  for (const lease of leases) await release(lease);
}

// ── cold start ────────────────────────────────────────────────────────────────────────────────

/**
 * One cold start: from construction until `connections` connections are open and each ran
 * `SELECT 1` (every lease is held until all have run, so they are distinct connections).
 * Returns the time it took and a function that shuts the contestant down (not timed).
 */
export async function coldStart(name: ColdContestant, url: string, connections: number): Promise<{ ms: number; close: () => Promise<void> }> {
  const leaseAll = async <L>(acquire: () => Promise<L>, run: (lease: L) => Promise<unknown>): Promise<L[]> =>
    Promise.all(
      Array.from({ length: connections }, async () => {
        const lease = await acquire();
        await run(lease);
        return lease;
      }),
    );
  // Load the modules first: loading code is not part of a cold start (the process has it loaded).
  const modules = {
    manager: name === 'manager' ? managerModule() : undefined,
    pg: pg(),
    knex: name === 'knex-tarn' ? knexFactory() : undefined,
    logger: name === 'manager' ? silentInfoLogger() : undefined,
  };
  const t0 = nowMs();
  switch (name) {
    case 'manager': {
      const { getConnectionInstance, closeConnectionInstance } = modules.manager as typeof ManagerModule;
      const manager = getConnectionInstance({ connection: url, pool: { min: connections, max: connections }, logger: modules.logger });
      await manager.ready();
      const leases = await leaseAll(() => manager.getConnection(), (c) => c.query('SELECT 1'));
      const ms = nowMs() - t0;
      for (const c of leases) await manager.releaseConnection(c);
      return { ms, close: () => closeConnectionInstance() };
    }
    case 'dedicated': {
      const clients = await Promise.all(
        Array.from({ length: connections }, async () => {
          const client = await connectClient(url);
          await client.query('SELECT 1');
          return client;
        }),
      );
      const ms = nowMs() - t0;
      return { ms, close: async () => void (await Promise.all(clients.map((c) => c.end()))) };
    }
    case 'pg-pool': {
      const pool = new modules.pg.Pool({ connectionString: url, max: connections });
      pool.on('error', () => undefined);
      const leases = await leaseAll(() => pool.connect(), (c) => c.query('SELECT 1'));
      const ms = nowMs() - t0;
      for (const c of leases) c.release();
      return { ms, close: () => pool.end() };
    }
    case 'knex-tarn': {
      const knex = (modules.knex as (config: Knex.Config) => Knex)({ client: 'pg', connection: url, pool: { max: connections } });
      const leases = await leaseAll(
        () => knex.client.acquireConnection() as Promise<PgClient>,
        (c) => knex.raw('SELECT 1').connection(c),
      );
      const ms = nowMs() - t0;
      for (const c of leases) knex.client.releaseConnection(c);
      return { ms, close: () => knex.destroy() };
    }
  }
}

// ── leasing (burst) ───────────────────────────────────────────────────────────────────────────

/** A pool seen as acquire / run SQL / release, for the burst test. */
export interface Leasing<L = unknown> {
  acquire(): Promise<L>;
  run(lease: L, sql: string): Promise<unknown>;
  release(lease: L): unknown;
  close(): Promise<void>;
}

/** Builds a pool of `max` connections, all open, for the burst test. */
export async function openLeasing(name: BurstContestant, url: string, max: number): Promise<Leasing> {
  let leasing: Leasing;
  switch (name) {
    case 'manager': {
      const { getConnectionInstance, closeConnectionInstance } = managerModule();
      const manager = getConnectionInstance({ connection: url, pool: { min: max, max }, logger: silentInfoLogger() });
      await manager.ready();
      leasing = {
        acquire: () => manager.getConnection(),
        run: (c, sql) => (c as ManagerModule.PooledConnection).query(sql),
        release: (c) => manager.releaseConnection(c as ManagerModule.PooledConnection),
        close: () => closeConnectionInstance(),
      };
      break;
    }
    case 'pg-pool': {
      const pool: PgPool = new (pg().Pool)({ connectionString: url, max });
      pool.on('error', () => undefined);
      leasing = {
        acquire: () => pool.connect(),
        run: (c, sql) => (c as PoolClient).query(sql),
        release: (c) => (c as PoolClient).release(),
        close: () => pool.end(),
      };
      break;
    }
    case 'knex-tarn': {
      const knex = knexFactory()({ client: 'pg', connection: url, pool: { max } });
      leasing = {
        acquire: () => knex.client.acquireConnection() as Promise<unknown>,
        run: (c, sql) => (c as PgClient).query(sql),
        release: (c) => knex.client.releaseConnection(c),
        close: () => knex.destroy(),
      };
      break;
    }
    case 'generic-pool': {
      const pool = createGenericPool(url, max, max);
      await pool.ready();
      leasing = {
        acquire: () => pool.acquire(),
        run: (c, sql) => (c as PgClient).query(sql),
        release: (c) => void pool.release(c as PgClient),
        close: async () => {
          await pool.drain();
          await pool.clear();
        },
      };
      break;
    }
  }
  await prewarm(max, () => leasing.acquire(), (c) => leasing.release(c));
  return leasing;
}
