/**
 * The connection manager: owns the primary's pool and one pool per read replica, the knex
 * instances drawing from them, the read/write router, and the admin triggers. One per process
 * (see instance.ts).
 */
import type { Knex } from 'knex';
import type { Client as PgClient, QueryResult } from 'pg';
import type { Logger } from 'winston';
import { ConnectionManagerError } from './errors';
import { createManagerLogger } from './logger';
import type { ResolvedConfig } from './options';
import { validateCallback, validateCallOptions, validateQueryArguments, type CheckedCallOptions } from './call-options';
import { systemClock, type Clock } from './pool/clock';
import type { AcquireOptions, Pool } from './pool/pool';
import type { ManagerPoolStats } from './pool/stats';
import { createPgPool, type PgPool } from './driver/pg-pool';
import { exposeConfig, keepOnDestroy } from './driver/knex-adapter';
import type { PgPooledConnection, PooledConnection, Row } from './driver/pooled-connection';
import type { ReplicaHealthMonitor } from './routing/health';
import { ReadYourWrites } from './routing/read-your-writes';
import { Router } from './routing/router';
import { createHealthMonitor, createReadKnex, createReplicas, replicaStats } from './routing/replicas';
import { ReadRouting } from './routing/read-routing';
import { StatementPolicy } from './routing/statement-policy';
import { expireEveryPool, renewEveryPool, resetEveryPool } from './manager/triggers';
import type { GetConnectionOptions, ManagerDependencies } from './manager/types';
import { warmUp, type WarmUpOptions } from './resilience/warm-up';
import { FAULT_SEAM } from './resilience/seam';
import { runTransaction, withRetry, type RetryHost, type RetryPolicyOptions, type TransactionOptions } from './resilience/retry';
import { AdminEndpointHandle, adminNotConfigured, type AdminEndpoint } from './manager/admin-endpoint';
import { TagAdmission } from './admission/policy';
import { checkTags, runWithTags } from './admission/tags';

export type { AdminEndpoint } from './manager/admin-endpoint';
export type { GetConnectionOptions, ManagerDependencies } from './manager/types';

export type { ManagerPoolStats, ReplicaPoolStats, RoutingStats } from './pool/stats';

type PgEntryPool = Pool<PgClient, PgPooledConnection>;

/** The process-wide PostgreSQL connection manager. Create it with `getConnectionInstance()`. */
export class ConnectionManager {
  /** A knex instance whose pool is the primary's: every query checks a connection out and back in here. */
  readonly knex: Knex;
  /**
   * A knex instance for reads: each query leases from a healthy replica (the primary when none is,
   * or right after a write in the same async context) and is classified like `query()`'s: reads run
   * there (retried once on the primary after a replica fault), anything else on the primary. Its
   * transactions run on the primary. Without replicas it is `knex`.
   */
  readonly readKnex: Knex;
  /** The validated configuration this manager was created from. */
  readonly config: ResolvedConfig;

  private readonly primary: PgPool;
  private readonly retryHost: RetryHost;
  private readonly router: Router;
  private readonly health: ReplicaHealthMonitor | undefined;
  private readonly readYourWrites: ReadYourWrites;
  /** Decides where each lease and statement goes. */
  private readonly routing: ReadRouting;
  /** The declared and learned write names, and the session-state warnings given. */
  private readonly statements: StatementPolicy;
  private readonly clock: Clock;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;
  /** The admin endpoint (when `admin` is configured). */
  private readonly adminEndpoint: AdminEndpointHandle | undefined;

  /** Use `getConnectionInstance()`; direct construction bypasses the process-wide singleton. */
  constructor(config: ResolvedConfig, dependencies: ManagerDependencies = {}) {
    this.config = config;
    this.clock = dependencies.clock ?? systemClock;
    this.log = createManagerLogger(config.logger);
    this.retryHost = { clock: this.clock, random: Math.random, retried: () => this.primary.pool.noteRetry() };
    this.primary = createPgPool('primary', config.connection, config, this.clock, this.log, dependencies.connector);
    this.knex = this.primary.knex;
    const replicas = createReplicas(config, this.clock, this.log, dependencies.connector);
    this.router = new Router(replicas, config.routing.strategy, this.log);
    this.readYourWrites = new ReadYourWrites(config.routing.readYourWritesMs, this.clock);
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
    if (config.admin) {
      const observed = [{ name: 'primary', pool: this.primary.pool }, ...replicas.map((r) => ({ name: r.name, pool: r.handle.pool }))];
      this.adminEndpoint = new AdminEndpointHandle(this, config.admin, observed, this.log);
    }
    this.log.info(
      `Connection manager started (min: ${config.pool.min}, max: ${config.pool.max}${replicas.length ? `, replicas: ${replicas.map((r) => r.name).join(', ')}` : ''})`,
    );
  }

  /** Where the admin endpoint listens, once it does; undefined before that or when it is off. */
  get admin(): AdminEndpoint | undefined {
    return this.adminEndpoint?.current;
  }

  /**
   * Resolves once the admin endpoint listens, with its URL and port (the picked one for
   * `admin.port: 0`). Independent of `ready()`: the endpoint comes up even while the database is down.
   * @throws ConnectionManagerError `E_INVALID_CONFIG` when `admin` is not configured; the listen
   *   error (`EADDRINUSE`, …) when the endpoint could not start.
   */
  async adminReady(): Promise<AdminEndpoint> {
    if (!this.adminEndpoint) throw adminNotConfigured();
    return this.adminEndpoint.ready();
  }

  /** The pools, for `injectFaults()` (knex-connection-manager/testing) only. */
  [FAULT_SEAM](): PgEntryPool[] {
    return this.pools;
  }

  private get pools(): PgEntryPool[] {
    return [this.primary.pool, ...this.router.replicas.map((r) => r.handle.pool)];
  }

  /**
   * Resolves once `pool.min` connections are open on the primary (and the replicas' first health
   * check is done; a replica that is down does not fail it).
   * @throws ConnectionManagerError `E_CONNECT` when opening them failed (the pool keeps retrying),
   *   `E_POOL_CLOSED` after `close()`.
   */
  async ready(): Promise<void> {
    await this.primary.pool.ready();
    if (this.health) await this.health.firstRound;
  }

  /**
   * Checks a connection out. Callers are served first come, first served; the wait ends with a
   * connection, at `timeoutMs` (`E_ACQUIRE_TIMEOUT`), when `signal` aborts (`E_ABORTED`), or at
   * `close()` (`E_POOL_CLOSED`). Give it back with {@link ConnectionManager.releaseConnection}.
   * One deadline covers the whole call, a replica tried first and the primary after it included.
   * Bad options reject with `E_INVALID_CONFIG` before anything else is looked at.
   */
  getConnection(options?: GetConnectionOptions): Promise<PooledConnection> {
    let checked: CheckedCallOptions;
    try {
      checked = validateCallOptions(options, 'getConnection');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.routing.lease(checked);
  }

  /**
   * Runs `fn` in a read-your-writes scope of its own (for example one per HTTP request): a write
   * made anywhere inside it, however deep, sends the reads made anywhere inside it to the primary
   * for `routing.readYourWritesMs`. Without it, a write is only seen by reads in the async context
   * that made it (see docs/routing.md).
   */
  withReadYourWrites<T>(fn: () => T): T {
    validateCallback(fn, 'withReadYourWrites');
    return this.readYourWrites.run(fn);
  }

  /**
   * Runs `fn` in a tag scope: every acquire inside it, however deep (`getConnection`,
   * `withConnection`, `query`, `knex`, `readKnex`), carries `tags`, merged over those of an
   * enclosing scope; a call's own `tags` option merges over them. See docs/admission.md.
   * @throws ConnectionManagerError `E_INVALID_CONFIG` for bad tags or a non-function `fn`.
   */
  withTags<T>(tags: Readonly<Record<string, string>>, fn: () => T): T {
    const checked = checkTags(tags, 'withTags() tags');
    validateCallback(fn, 'withTags');
    return runWithTags(checked, fn);
  }

  /**
   * Runs one statement where it belongs: plain reads on a replica (see docs/routing.md for the
   * rules and `routing.primaryFunctions`), everything else on the primary. A read that fails on a
   * replica because of the replica (connection lost, server shutting down, read-only error) is
   * retried once on the primary within what is left of the deadline; a read-only error also teaches
   * the function it called (`routing.learnFromReadOnlyErrors`). Without replicas every statement runs
   * on the primary. Statements with session state (`SET`, `CREATE TEMP TABLE`, …) log a warning once
   * per kind: the next call may run on another connection.
   */
  async query<R extends Row = Row>(sql: string, bindings?: readonly unknown[], options?: AcquireOptions): Promise<QueryResult<R>> {
    validateQueryArguments(sql, bindings);
    return this.routing.query<R>(sql, bindings, validateCallOptions(options, 'query'));
  }

  /**
   * Gives a connection back (to whichever pool lent it). A connection left inside a transaction is
   * rolled back before reuse.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when it is not checked out from this manager
   *   (released twice, or from another manager).
   */
  releaseConnection(connection: PooledConnection): Promise<void> {
    try {
      this.routing.poolOf(connection).release(connection as PgPooledConnection);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs `fn` with a checked-out connection and always releases it, whatever `fn` does.
   * Takes the options of {@link ConnectionManager.getConnection}, checked the same way.
   */
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

  /**
   * A consistent snapshot of the primary's pool, plus, when replicas are configured, each replica's
   * and `routing` (learned write names, read-only refusals, session-state warnings given).
   */
  getPoolStats(): ManagerPoolStats {
    const stats: ManagerPoolStats = this.primary.pool.stats();
    if (this.router.replicas.length > 0) {
      stats.replicas = replicaStats(this.router.replicas);
      stats.routing = this.statements.stats();
    }
    return stats;
  }

  /**
   * Runs `fn` again, with backoff and jitter, after a serialization failure (40001), a deadlock
   * (40P01) or a lost connection; any other error passes through unchanged (docs/resilience.md).
   */
  withRetry<T>(fn: () => Promise<T> | T, options?: RetryPolicyOptions): Promise<T> {
    return withRetry(fn, options, this.retryHost);
  }

  /**
   * `fn(trx)` in a knex transaction on one primary connection, run again whole on 40001, 40P01 or
   * a connection lost before COMMIT. @throws `E_COMMIT_UNKNOWN` if lost after COMMIT was sent.
   */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T> | T, options?: TransactionOptions): Promise<T> {
    // Each attempt's acquire carries the transaction's tags (admission: quotas, fair share, stats).
    const lease = options?.tags === undefined ? undefined : { tags: options.tags };
    return runTransaction((attempt) => this.withConnection(attempt, lease), fn, options, this.retryHost);
  }

  /**
   * Opens primary connections in parallel until `n` (capped at `pool.max`) are open; resolves with
   * how many are. @throws `E_CONNECT` when not within `timeoutMs` (default `pool.acquireTimeoutMs`).
   */
  warmUp(n: number, options?: WarmUpOptions): Promise<number> {
    return warmUp(this.primary.pool, n, options, this.clock, this.log);
  }

  /**
   * Checks that `connection` is alive: the driver's view of the socket, then `SELECT 1` (or
   * `pool.validate`) bounded by `pool.validationTimeoutMs`. Never throws.
   */
  isConnectionValid(connection: PooledConnection): Promise<boolean> {
    if (typeof connection !== 'object' || connection === null) return Promise.resolve(false);
    return this.routing.poolOf(connection).validateLease(connection);
  }

  /**
   * Closes every idle connection now and every checked-out one when it is released, then refills
   * to `pool.min` with new connections; on every pool. Requests during the reset are served from
   * new connections. Resolves once `pool.min` are open again (checked-out old ones count until
   * released). Runs after any admin operation already under way, never interleaved with it.
   * @returns the number of connections evicted (checked-out ones included).
   * @throws ConnectionManagerError `E_CONNECT` when the primary is not back at `pool.min` within
   *   `pool.acquireTimeoutMs` (the server refuses new connections); `E_POOL_CLOSED` after `close()`.
   */
  async resetPool(): Promise<number> {
    this.assertOpen();
    return resetEveryPool(this.pools, this.log);
  }

  /**
   * Runs the expiry sweep now on every pool: connections past `pool.maxLifetimeMs` are retired
   * (idle ones now, checked-out ones on release), idle ones past `pool.idleTimeoutMs` closed down
   * to `pool.min`.
   * @returns the number of connections retired.
   */
  async triggerExpireConnections(): Promise<number> {
    this.assertOpen();
    return expireEveryPool(this.pools, this.clock, this.log);
  }

  /**
   * Replaces every connection of every pool with a fresh one without lowering capacity
   * (checked-out ones when released). For password rotation, DNS failover, or after a primary
   * switch-over. Resolves once every idle connection has been replaced by an open one. Where there
   * is room, an old connection whose replacement the server refuses keeps serving (not counted).
   * Runs after any admin operation already under way, never interleaved with it.
   * @returns the number of connections replaced (checked-out ones included: replaced on release).
   * @throws ConnectionManagerError `E_CONNECT` when, at `pool.max`, a primary connection was closed
   *   and its replacement could not be opened (after the `retry` attempts); `E_POOL_CLOSED` after `close()`.
   */
  async triggerRenewConnections(): Promise<number> {
    this.assertOpen();
    return renewEveryPool(this.pools, this.log);
  }

  /** True until `close()` is called. */
  get isOpen(): boolean {
    return this.closing === undefined;
  }

  /**
   * Closes the manager: waiters get `E_POOL_CLOSED`, idle connections close now, checked-out ones
   * when released (or by force after `pool.closeTimeoutMs`). Resolves when no server session is left.
   */
  close(): Promise<void> {
    this.closing ??= Promise.all([
      this.health?.stop(),
      this.adminEndpoint?.close(),
      ...this.pools.map((pool) => pool.close()),
    ]).then(() => undefined);
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) {
      throw new ConnectionManagerError('E_POOL_CLOSED', 'The connection manager is closed. Call getConnectionInstance() again to create a new one.');
    }
  }
}

/** One settled promise shared by every successful release (saves an allocation per query). */
const RESOLVED: Promise<void> = Promise.resolve();

