/**
 * knex's side of the manager: a tarn-compatible pool (what knex's `connectionPool` option accepts)
 * over the manager's pool, so every plain knex query checks a connection out and back in through
 * the same records, limits and stats; and knex instances bound to one leased connection (`conn.db`).
 */
import knexFactory, { type Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { Pool } from '../pool/pool';
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
    return { promise: this.lease().then(rawOf) };
  }

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

  /** knex does not own this pool: `knex.destroy()` leaves it to `manager.close()`. */
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
  return createKnex(new LeasedConnectionPool(entry), main.client.connectionSettings, options, main.client.version);
}
