/**
 * One pool of the manager, as users see it: a database's primary pool, one pool per read replica,
 * the knex instances drawing from them, the read/write router, and the admin operations on them.
 * The manager's default pool (`primary`) is one; each of `pools` and each pool made by
 * `poolFactory` is another (lib/named-pools). The manager's own methods are its default pool's.
 */
import type { Knex } from 'knex';
import type { Client as PgClient, QueryResult } from 'pg';
import type { Logger } from 'winston';
import { ConnectionManagerError } from '../errors';
import type { ResolvedConfig } from '../options';
import { validateCallback, validateCallOptions, validateQueryArguments, type CheckedCallOptions } from '../call-options';
import type { Clock } from '../pool/clock';
import type { AcquireOptions, Pool } from '../pool/pool';
import type { ManagerPoolStats } from '../pool/stats';
import type { BudgetSeam } from '../pool/types';
import { createPgPool, type PgPool } from '../driver/pg-pool';
import { exposeConfig, keepOnDestroy } from '../driver/knex-adapter';
import type { PgPooledConnection, PooledConnection, Row } from '../driver/pooled-connection';
import type { ReplicaHealthMonitor } from '../routing/health';
import { ReadYourWrites, type WriteMarks } from '../routing/read-your-writes';
import { Router } from '../routing/router';
import { createHealthMonitor, createReadKnex, createReplicas, replicaStats } from '../routing/replicas';
import { ReadRouting } from '../routing/read-routing';
import { StatementPolicy } from '../routing/statement-policy';
import { expireEveryPool, renewEveryPool, resetEveryPool } from './triggers';
import type { GetConnectionOptions, ManagerDependencies } from './types';
import { warmUp, type WarmUpOptions } from '../resilience/warm-up';
import { runTransaction, type RetryHost, type TransactionOptions } from '../resilience/retry';
import { TagAdmission } from '../admission/policy';

type PgEntryPool = Pool<PgClient, PgPooledConnection>;

/** What every pool of a manager shares. */
export interface NamedPoolParts {
  clock: Clock;
  log: Logger;
  connector: ManagerDependencies['connector'];
  /** The manager's connection budget, when configured. */
  budget: BudgetSeam | undefined;
  /** The manager's read-your-writes context. */
  writeMarks: WriteMarks;
}

/**
 * The API of one pool of the manager: `manager.pool(name)` returns one, and the manager's own
 * methods of the same names are its default pool's (`manager.pool('primary')`).
 */
export interface PoolHandle {
  /** The pool's name (`primary` for the manager's default pool). */
  readonly name: string;
  /** A knex instance whose pool is this pool's primary. */
  readonly knex: Knex;
  /** A knex instance whose reads go to this pool's replicas (`knex` when it has none). */
  readonly readKnex: Knex;
  /** Resolves once `pool.min` connections are open (see `ConnectionManager.ready`). */
  ready(): Promise<void>;
  /** Checks a connection out (see `ConnectionManager.getConnection`). */
  getConnection(options?: GetConnectionOptions): Promise<PooledConnection>;
  /** Gives a connection back (see `ConnectionManager.releaseConnection`). */
  releaseConnection(connection: PooledConnection): Promise<void>;
  /** Runs `fn` with a checked-out connection and always releases it. */
  withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T>;
  /** Runs one statement where it belongs (see `ConnectionManager.query`). */
  query<R extends Row = Row>(sql: string, bindings?: readonly unknown[], options?: AcquireOptions): Promise<QueryResult<R>>;
  /** `fn(trx)` in a retried knex transaction on this pool's primary (see `ConnectionManager.transaction`). */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T> | T, options?: TransactionOptions): Promise<T>;
  /** Opens connections until `n` are open (see `ConnectionManager.warmUp`). */
  warmUp(n: number, options?: WarmUpOptions): Promise<number>;
  /** A consistent snapshot of this pool (its replicas' included). */
  getPoolStats(): ManagerPoolStats;
  /** Checks that a connection of this pool is alive; never throws. */
  isConnectionValid(connection: PooledConnection): Promise<boolean>;
  /** Replaces every connection of this pool (see `ConnectionManager.resetPool`). */
  resetPool(): Promise<number>;
  /** Runs the expiry sweep on this pool now. */
  triggerExpireConnections(): Promise<number>;
  /** Replaces every connection of this pool without lowering capacity. */
  triggerRenewConnections(): Promise<number>;
}

/** A database's pools, router and knex instances, under one name. */
export class NamedPool implements PoolHandle {
  readonly knex: Knex;
  readonly readKnex: Knex;
  /** The primary's pool (admin endpoint, warm-up, fault injection). */
  readonly primary: PgPool;
  readonly router: Router;
  readonly retryHost: RetryHost;
  private readonly health: ReplicaHealthMonitor | undefined;
  private readonly readYourWrites: ReadYourWrites;
  /** Decides where each lease and statement goes. */
  private readonly routing: ReadRouting;
  /** The declared and learned write names, and the session-state warnings given. */
  private readonly statements: StatementPolicy;
  private readonly clock: Clock;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;

  /**
   * @param label where this pool was configured, for error messages (`pools.analytics`,
   *   `poolFactory("acme")`); empty for the default pool.
   */
  constructor(readonly name: string, readonly config: ResolvedConfig, parts: NamedPoolParts, label = '') {
    this.clock = parts.clock;
    this.log = name === 'primary' ? parts.log : parts.log.child({ namedPool: name });
    const connectionLabel = label === '' ? 'connection' : `${label}.connection`;
    this.primary = createPgPool(name, config.connection, config, this.clock, this.log, parts.connector, connectionLabel, parts.budget);
    this.retryHost = { clock: this.clock, random: Math.random, retried: () => this.primary.pool.noteRetry() };
    this.knex = this.primary.knex;
    const scope = { pool: name === 'primary' ? undefined : name, label, budget: parts.budget };
    const replicas = createReplicas(config, this.clock, this.log, parts.connector, scope);
    this.router = new Router(replicas, config.routing.strategy, this.log);
    this.readYourWrites = new ReadYourWrites(config.routing.readYourWritesMs, this.clock, parts.writeMarks);
    this.health = replicas.length > 0 ? createHealthMonitor(this.router, config, this.clock, this.log) : undefined;
    this.statements = new StatementPolicy(config.routing, this.log);
    this.routing = new ReadRouting(this.primary.pool, this.router, this.readYourWrites, this.clock, config.pool, this.statements);
    // Without replicas, reads go to the primary's knex.
    this.readKnex = replicas.length === 0 ? this.knex : createReadKnex(config, this.knex, this.routing);
    if (this.readKnex !== this.knex) exposeConfig(this.readKnex, config.connection, config);
    // The pool is shared, so `knex.destroy()` leaves it open (docs/knex.md); the process still
    // exits after it, because idle connections do not hold the event loop open.
    keepOnDestroy(this.knex);
    if (this.readKnex !== this.knex) keepOnDestroy(this.readKnex);
    // Each pool gets its own policy: quotas and fair share count the connections of that pool.
    if (config.admission) for (const pool of this.pools) pool.useAdmission(new TagAdmission(config.admission, this.clock));
  }

  /** The primary's pool, then each replica's. */
  get pools(): PgEntryPool[] {
    return [this.primary.pool, ...this.router.replicas.map((r) => r.handle.pool)];
  }

  /** Each pool with the name its metrics carry. */
  get observed(): Array<{ name: string; pool: PgEntryPool }> {
    return [{ name: this.primary.name, pool: this.primary.pool }, ...this.router.replicas.map((r) => ({ name: r.handle.name, pool: r.handle.pool }))];
  }

  /** True until `close()` is called. */
  get isOpen(): boolean {
    return this.closing === undefined;
  }

  /** The pool of this named pool that lent `connection`, or undefined when none did. */
  ownerOf(connection: unknown): PgEntryPool | undefined {
    let owner: unknown;
    try {
      owner = (connection as Partial<PgPooledConnection> | null | undefined)?.owner;
    } catch {
      return undefined; // a proxy whose trap throws
    }
    return this.pools.find((pool) => pool === owner);
  }

  /** True while no connection is checked out, being opened, or awaited, in any of its pools. */
  get quiet(): boolean {
    return this.pools.every((pool) => pool.counts.busyCount === 0 && pool.counts.pendingCount === 0 && pool.waiting === 0);
  }

  async ready(): Promise<void> {
    await this.primary.pool.ready();
    if (this.health) await this.health.firstRound;
  }

  getConnection(options?: GetConnectionOptions): Promise<PooledConnection> {
    let checked: CheckedCallOptions;
    try {
      checked = validateCallOptions(options, 'getConnection');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.routing.lease(checked);
  }

  /** Runs `fn` in this pool's read-your-writes scope (the manager's `withReadYourWrites`). */
  withReadYourWrites<T>(fn: () => T): T {
    return this.readYourWrites.run(fn);
  }

  async query<R extends Row = Row>(sql: string, bindings?: readonly unknown[], options?: AcquireOptions): Promise<QueryResult<R>> {
    validateQueryArguments(sql, bindings);
    return this.routing.query<R>(sql, bindings, validateCallOptions(options, 'query'));
  }

  releaseConnection(connection: PooledConnection): Promise<void> {
    try {
      this.routing.poolOf(connection).release(connection as PgPooledConnection);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T> {
    validateCallback(fn, 'withConnection');
    const connection = await this.routing.lease(validateCallOptions(options, 'withConnection'));
    const lease = connection.leases;
    try {
      return await fn(connection);
    } finally {
      // Skip the release if `fn` already released it (and it may since have gone to someone else).
      if (connection.state === 'inUse' && connection.leases === lease) this.routing.poolOf(connection).release(connection);
    }
  }

  getPoolStats(): ManagerPoolStats {
    const stats: ManagerPoolStats = this.primary.pool.stats();
    if (this.router.replicas.length > 0) {
      stats.replicas = replicaStats(this.router.replicas);
      stats.routing = this.statements.stats();
    }
    return stats;
  }

  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T> | T, options?: TransactionOptions): Promise<T> {
    // Each attempt's acquire carries the transaction's tags (admission: quotas, fair share, stats).
    const lease = options?.tags === undefined ? undefined : { tags: options.tags };
    return runTransaction((attempt) => this.withConnection(attempt, lease), fn, options, this.retryHost);
  }

  warmUp(n: number, options?: WarmUpOptions): Promise<number> {
    return warmUp(this.primary.pool, n, options, this.clock, this.log);
  }

  isConnectionValid(connection: PooledConnection): Promise<boolean> {
    if (typeof connection !== 'object' || connection === null) return Promise.resolve(false);
    return this.routing.poolOf(connection).validateLease(connection);
  }

  async resetPool(): Promise<number> {
    this.assertOpen();
    return resetEveryPool(this.pools, this.log);
  }

  async triggerExpireConnections(): Promise<number> {
    this.assertOpen();
    return expireEveryPool(this.pools, this.clock, this.log);
  }

  async triggerRenewConnections(): Promise<number> {
    this.assertOpen();
    return renewEveryPool(this.pools, this.log);
  }

  /**
   * Sets `min` and `max` of its primary's pool and of each replica's (checked by the caller);
   * returns the connections closed now and those closing on release or arrival, over all of them.
   */
  resize(min: number, max: number): { closed: number; retiring: number } {
    this.assertOpen();
    const total = { closed: 0, retiring: 0 };
    for (const pool of this.pools) {
      const { closed, retiring } = pool.resize(min, max);
      total.closed += closed;
      total.retiring += retiring;
    }
    return total;
  }

  /** Closes its pools and health checks (see `ConnectionManager.close`). */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.health?.stop(), ...this.pools.map((pool) => pool.close())]).then(() => undefined);
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) {
      const what = this.name === 'primary' ? 'The connection manager is closed. Call getConnectionInstance() again to create a new one.'
        : `The pool "${this.name}" is closed (the manager closed, or the pool was closed as idle). Call manager.pool("${this.name}") again.`;
      throw new ConnectionManagerError('E_POOL_CLOSED', what);
    }
  }
}

/** One settled promise shared by every successful release (saves an allocation per query). */
const RESOLVED: Promise<void> = Promise.resolve();
