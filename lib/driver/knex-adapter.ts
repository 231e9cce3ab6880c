/**
 * knex's side of the manager: a tarn-compatible pool (what knex's `connectionPool` option accepts)
 * over the manager's pool, so every plain knex query checks a connection out and back in through
 * the same records, limits and stats; and knex instances bound to one leased connection (`conn.db`).
 */
import knexFactory, { type Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { ResolvedConfig } from '../options';
import type { Pool } from '../pool/pool';
import { forKnex } from './knex-errors';
import { ENTRY, type PgPooledConnection, type TaggedClient } from './pooled-connection';

/** The subset of tarn's `Pool` that knex calls (knex checks for these methods to accept a pool). */
export interface TarnLikePool {
  acquire(): { promise: Promise<PgClient> };
  release(raw: PgClient): boolean;
  destroy(): Promise<void>;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

/** The counts a tarn-like pool reports (knex only logs them). */
interface Counts {
  busyCount: number;
  idleCount: number;
  pendingCount: number;
}

/**
 * Lends the manager's connections to knex: `acquire` draws a record from whichever pool `lease`
 * picks (the primary, or a replica for the read instance) and hands knex its driver client;
 * `release` gives it back to the pool that owns the record.
 */
export class LeasingPoolAdapter implements TarnLikePool {
  constructor(
    private readonly lease: () => Promise<PgPooledConnection>,
    private readonly counts: () => Counts | undefined,
    private readonly waiting: () => number,
  ) {}

  acquire(): { promise: Promise<PgClient> } {
    // An acquire timeout becomes knex's KnexTimeoutError (which knex then gives `sql`/`bindings`).
    return { promise: this.lease().then(rawOf, forKnex) };
  }

  /**
   * Gives the connection back. One knex marked disposed (a query timed out without being
   * cancelled) already carries the pool's retire mark (see `markDisposal`), so it is closed here.
   */
  release(raw: PgClient): boolean {
    const entry = (raw as TaggedClient)[ENTRY];
    if (!entry) return false;
    try {
      (entry.owner as Pool<PgClient, PgPooledConnection>).release(entry);
      return true;
    } catch {
      return false; // not checked out (already released): knex only logs a refused release
    }
  }

  /** knex does not own this pool (see `keepOnDestroy` for what `knex.destroy()` does). */
  destroy(): Promise<void> {
    return Promise.resolve();
  }

  numUsed(): number {
    return this.counts()?.busyCount ?? 0;
  }

  numFree(): number {
    return this.counts()?.idleCount ?? 0;
  }

  numPendingAcquires(): number {
    return this.waiting();
  }

  numPendingCreates(): number {
    return this.counts()?.pendingCount ?? 0;
  }
}

function rawOf(entry: PgPooledConnection): PgClient {
  return entry.raw as PgClient;
}

/** A pool of exactly one connection: the one leased as `entry`, and only while it is leased. */
class LeasedConnectionPool implements TarnLikePool {
  constructor(private readonly entry: PgPooledConnection) {}

  acquire(): { promise: Promise<PgClient> } {
    try {
      this.entry.assertLeased();
      return { promise: Promise.resolve(this.entry.raw as PgClient) };
    } catch (error) {
      return { promise: Promise.reject(error) };
    }
  }

  /** The lease, not knex, decides when the connection goes back. */
  release(): boolean {
    return true;
  }

  destroy(): Promise<void> {
    return Promise.resolve();
  }

  numUsed(): number {
    return 1;
  }

  numFree(): number {
    return 0;
  }

  numPendingAcquires(): number {
    return 0;
  }

  numPendingCreates(): number {
    return 0;
  }
}

/** Builds a pg knex instance whose connections come from `pool` and are opened with `settings`. */
export function createKnex(pool: TarnLikePool, settings: object, options: Knex.Config, version?: string): Knex {
  const instance = knexFactory({ ...options, client: 'pg', connectionPool: pool });
  // With an external pool knex keeps no connection settings, but its dialect client opens
  // connections for the manager (and for query cancellation) from exactly these.
  instance.client.connectionSettings = settings;
  if (version !== undefined) instance.client.version = version;
  return instance;
}

/** knex bound to the connection leased as `entry` (the connection's `db`). */
export function bindKnex(entry: PgPooledConnection, main: Knex, options: Knex.Config): Knex {
  const bound = createKnex(new LeasedConnectionPool(entry), main.client.connectionSettings, options, main.client.version);
  // Its config describes the manager's connection and limits, as the main instance's does.
  const from = (main.client as unknown as KnexClientInternals).config;
  const to = hidePool(bound);
  for (const key of ['connection', 'pool', 'acquireConnectionTimeout']) {
    if (key in from) to[key] = from[key];
  }
  // It serves every later lease of this record too: `conn.db.destroy()` must not break it for them.
  keepOnDestroy(bound);
  return bound;
}

/** Keeps knex's `connectionPool` readable but out of copies of the config; returns the config. */
function hidePool(instance: Knex): Record<string, unknown> {
  const out = (instance.client as unknown as KnexClientInternals).config;
  const external = out.connectionPool;
  delete out.connectionPool;
  Object.defineProperty(out, 'connectionPool', { value: external, enumerable: false, configurable: true, writable: true });
  return out;
}

/** What the knex client of `manager.knex` is changed in after knex built it. */
interface KnexClientInternals {
  config: Record<string, unknown>;
  destroy: (callback?: (error?: unknown) => void) => Promise<void>;
}

/**
 * Makes `client.config` tell the truth about where connections come from: the manager's
 * `connection` (a password in an object is non-enumerable, as knex itself keeps it), and the
 * manager's limits under knex's names (`pool.min`, `pool.max`, `pool.createTimeoutMillis`, …,
 * `acquireConnectionTimeout`). The external pool stays readable but is not enumerable, so a copy of
 * the config (`knex({ ...db.client.config, pool: { max: 1 } })`) builds a knex with a pool of its own.
 */
export function exposeConfig(instance: Knex, connection: ResolvedConfig['connection'], config: ResolvedConfig): void {
  const out = hidePool(instance);
  if (typeof connection === 'object') {
    const copy: Record<string, unknown> = { ...connection };
    if (connection.password !== undefined) {
      Object.defineProperty(copy, 'password', { value: connection.password, enumerable: false, writable: true, configurable: true });
    }
    out.connection = copy;
  } else {
    out.connection = connection;
  }
  const p = config.pool;
  const pool: Record<string, number> = { min: p.min, max: p.max, createTimeoutMillis: p.createTimeoutMs };
  // In tarn 0 would close idle connections at once; in the manager it means "never".
  if (p.idleTimeoutMs > 0) pool.idleTimeoutMillis = p.idleTimeoutMs;
  if (p.maxLifetimeMs > 0) pool.maxConnectionLifetimeMillis = p.maxLifetimeMs;
  out.pool = pool;
  out.acquireConnectionTimeout = p.acquireTimeoutMs;
}

/**
 * `knex.destroy()` on `instance` leaves the manager's pool in place and calls back as knex's does.
 * The pool is shared (explicit leases, other modules, `readKnex`), so one caller's `destroy()` must
 * not end it for the others; knex's own `destroy()` would also drop its reference to the pool and
 * make every later query on the shared instance fail. A script still exits after it: idle
 * connections do not hold the event loop open (see `PgPooledConnection.transition`).
 */
export function keepOnDestroy(instance: Knex): void {
  const client = instance.client as unknown as KnexClientInternals;
  client.destroy = (callback) => {
    if (typeof callback === 'function') callback();
    return Promise.resolve();
  };
}
