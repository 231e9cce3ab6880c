/**
 * The handle `manager.pool(name)` returns for a pool made by `poolFactory`. It holds the name, not
 * the pool: each call finds the pool in the directory (waiting for the factory on a first use), so
 * a handle kept by the caller stays good after its pool was closed as idle or to make room — the
 * next call makes the pool again.
 */
import type { Knex } from 'knex';
import type { QueryResult } from 'pg';
import { ConnectionManagerError } from '../errors';
import type { AcquireOptions } from '../pool/pool';
import type { ManagerPoolStats } from '../pool/stats';
import { newCounters, statsSnapshot } from '../pool/stats';
import { createKnex, exposeConfig, keepOnDestroy, LeasingPoolAdapter } from '../driver/knex-adapter';
import type { PooledConnection, Row } from '../driver/pooled-connection';
import type { NamedPool, PoolHandle } from '../manager/named-pool';
import type { GetConnectionOptions } from '../manager/types';
import type { KnexPassthroughOptions } from '../options-types';
import type { TransactionOptions } from '../resilience/retry';
import type { WarmUpOptions } from '../resilience/warm-up';

/** Where a handle finds its pool (the directory). */
export interface PoolResolver {
  /** The pool named `name`, made first if need be; throws or rejects when it cannot be had. */
  resolve(name: string): NamedPool | Promise<NamedPool>;
  /** The pool named `name` if it is open now, without making it. */
  current(name: string): NamedPool | undefined;
}

export class DynamicPoolHandle implements PoolHandle {
  private ownKnex: Knex | undefined;

  constructor(
    readonly name: string,
    private readonly directory: PoolResolver,
    private readonly knexOptions: KnexPassthroughOptions,
  ) {}

  /**
   * knex over this pool, made on first use. Its queries lease through the handle, so they keep
   * working across the pool being closed and made again; its connection settings are the pool's
   * (set each time the handle finds a new pool).
   */
  get knex(): Knex {
    if (this.ownKnex === undefined) {
      const adapter = new LeasingPoolAdapter(
        () => this.run((pool) => pool.primary.pool.acquire()),
        () => this.directory.current(this.name)?.primary.pool.counts,
        () => this.directory.current(this.name)?.primary.pool.waiting ?? 0,
      );
      this.ownKnex = createKnex(adapter, {}, this.knexOptions);
      keepOnDestroy(this.ownKnex);
      const pool = this.directory.current(this.name);
      if (pool !== undefined) this.adopt(pool);
    }
    return this.ownKnex;
  }

  /** A pool made by `poolFactory` has no replicas: reads go where `knex`'s do. */
  get readKnex(): Knex {
    return this.knex;
  }

  ready(): Promise<void> {
    return this.run((pool) => pool.ready());
  }

  getConnection(options?: GetConnectionOptions): Promise<PooledConnection> {
    return this.run((pool) => pool.getConnection(options));
  }

  releaseConnection(connection: PooledConnection): Promise<void> {
    const pool = this.directory.current(this.name);
    // With no pool open, nothing of it can be checked out.
    return pool === undefined ? Promise.reject(notCheckedOut(this.name)) : pool.releaseConnection(connection);
  }

  withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T> {
    return this.run((pool) => pool.withConnection(fn, options));
  }

  query<R extends Row = Row>(sql: string, bindings?: readonly unknown[], options?: AcquireOptions): Promise<QueryResult<R>> {
    return this.run((pool) => pool.query<R>(sql, bindings, options));
  }

  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T> | T, options?: TransactionOptions): Promise<T> {
    return this.run((pool) => pool.transaction(fn, options));
  }

  warmUp(n: number, options?: WarmUpOptions): Promise<number> {
    return this.run((pool) => pool.warmUp(n, options));
  }

  /** The pool's stats; while it is not open (not made yet, or closed as idle), an empty snapshot. */
  getPoolStats(): ManagerPoolStats {
    return this.directory.current(this.name)?.getPoolStats() ?? emptyStats();
  }

  isConnectionValid(connection: PooledConnection): Promise<boolean> {
    const pool = this.directory.current(this.name);
    return pool === undefined ? Promise.resolve(false) : pool.isConnectionValid(connection);
  }

  resetPool(): Promise<number> {
    return this.whenOpen((pool) => pool.resetPool());
  }

  triggerExpireConnections(): Promise<number> {
    return this.whenOpen((pool) => pool.triggerExpireConnections());
  }

  triggerRenewConnections(): Promise<number> {
    return this.whenOpen((pool) => pool.triggerRenewConnections());
  }

  /** `fn` on the pool, made first if need be. */
  private run<T>(fn: (pool: NamedPool) => Promise<T>): Promise<T> {
    let target: NamedPool | Promise<NamedPool>;
    try {
      target = this.directory.resolve(this.name);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!(target instanceof Promise)) {
      if (this.ownKnex !== undefined) this.adopt(target);
      return fn(target);
    }
    return target.then((pool) => {
      if (this.ownKnex !== undefined) this.adopt(pool);
      return fn(pool);
    });
  }

  /** An admin operation: on the pool if it is open; a pool that is not open has no connection to act on (0). */
  private whenOpen(fn: (pool: NamedPool) => Promise<number>): Promise<number> {
    const pool = this.directory.current(this.name);
    return pool === undefined ? Promise.resolve(0) : fn(pool);
  }

  /** Gives the handle's knex the settings of `pool` (cancellation opens connections from them). */
  private adopt(pool: NamedPool): void {
    const knex = this.ownKnex as Knex;
    const client = knex.client as { connectionSettings?: unknown };
    if (client.connectionSettings === pool.knex.client.connectionSettings) return;
    client.connectionSettings = pool.knex.client.connectionSettings;
    exposeConfig(knex, pool.config.connection, pool.config);
  }
}

function notCheckedOut(name: string): Error {
  return new ConnectionManagerError(
    'E_NOT_CHECKED_OUT',
    `This connection is not checked out from the pool "${name}" (it is not open now). Release each connection once, to the pool that lent it.`,
  );
}

/** The stats of a pool that is not open. */
function emptyStats(): ManagerPoolStats {
  const gauges = { min: 0, max: 0, total: 0, idle: 0, inUse: 0, pending: 0, closing: 0, waiting: 0 };
  return statsSnapshot(gauges, newCounters(), { count: 0, totalMs: 0, maxMs: 0 }, [], 0, { state: 'closed', since: null, failures: 0 }, undefined);
}
