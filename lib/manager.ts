/**
 * The connection manager: owns the primary's pool and one pool per read replica, the knex
 * instances drawing from them, the read/write router, and the admin triggers. One per process
 * (see instance.ts).
 */
import type { Knex } from 'knex';
import type { Client as PgClient, QueryResult } from 'pg';
import type { Logger } from 'winston';
import { PoolMetrics } from './admin/metrics';
import { startAdminServer, type AdminServer } from './admin/server';
import { ConnectionManagerError, isConnectionManagerError } from './errors';
import { createManagerLogger } from './logger';
import type { ResolvedConfig } from './options';
import { validateCallOptions, validateQueryArguments, type CheckedCallOptions } from './call-options';
import { systemClock, type Clock } from './pool/clock';
import { AcquireDeadline } from './pool/deadline';
import { expireConnections, renewConnections, resetPool } from './pool/eviction';
import type { AcquireOptions, Pool } from './pool/pool';
import type { ManagerPoolStats } from './pool/stats';
import { createKnex, LeasingPoolAdapter } from './driver/knex-adapter';
import { createPgPool, driverSettings, type ConnectorFactory, type PgPool } from './driver/pg-pool';
import type { PgPooledConnection, PooledConnection, Row } from './driver/pooled-connection';
import { classifyStatement } from './routing/classify';
import { ReplicaHealthMonitor } from './routing/health';
import { ReadYourWrites } from './routing/read-your-writes';
import { Router, type ReplicaState } from './routing/router';

export type { ManagerPoolStats, ReplicaPoolStats } from './pool/stats';

/** Options of `getConnection()` and `withConnection()`. */
export interface GetConnectionOptions extends AcquireOptions {
  /**
   * `'read'` leases from a healthy replica (the primary when none is, or right after a write in
   * the same async context); `'write'` or no intent leases from the primary.
   */
  intent?: 'read' | 'write';
}

/** Where the admin endpoint listens (see `ConnectionManager.adminReady`). */
export interface AdminEndpoint {
  /** `http://host:port`. */
  url: string;
  port: number;
}

/** Replaceable parts, for tests. */
export interface ManagerDependencies {
  clock?: Clock;
  /** Replaces the PostgreSQL connector (tests with gated fake connections). */
  connector?: ConnectorFactory;
}

type PgEntryPool = Pool<PgClient, PgPooledConnection>;

/** The process-wide PostgreSQL connection manager. Create it with `getConnectionInstance()`. */
export class ConnectionManager {
  /** A knex instance whose pool is the primary's: every query checks a connection out and back in here. */
  readonly knex: Knex;
  /**
   * A knex instance for reads: each query runs on a healthy replica (the primary when none is, or
   * right after a write in the same async context). Its transactions run on the primary. Without
   * replicas it reads from the primary.
   */
  readonly readKnex: Knex;
  /** The validated configuration this manager was created from. */
  readonly config: ResolvedConfig;

  private readonly primary: PgPool;
  private readonly router: Router;
  private readonly health: ReplicaHealthMonitor | undefined;
  private readonly readYourWrites: ReadYourWrites;
  private readonly clock: Clock;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;
  /** The admin endpoint being started (when `admin` is configured). */
  private readonly adminStart: Promise<AdminServer> | undefined;
  private adminServer: AdminServer | undefined;

  /** Use `getConnectionInstance()`; direct construction bypasses the process-wide singleton. */
  constructor(config: ResolvedConfig, dependencies: ManagerDependencies = {}) {
    this.config = config;
    this.clock = dependencies.clock ?? systemClock;
    this.log = createManagerLogger(config.logger);
    this.primary = createPgPool('primary', config.connection, config, this.clock, this.log, dependencies.connector);
    this.knex = this.primary.knex;
    const replicas: ReplicaState[] = config.replicas.map((r) => ({
      name: r.name,
      weight: r.weight,
      handle: createPgPool(r.name, r.connection, config, this.clock, this.log.child({ replica: r.name }), dependencies.connector),
      healthy: false,
      lagMs: null,
      reason: 'not checked yet',
      healthChanges: 0,
      reads: 0,
    }));
    this.router = new Router(replicas, config.routing.strategy, this.log);
    this.readYourWrites = new ReadYourWrites(config.routing.readYourWritesMs, this.clock);
    if (replicas.length > 0) {
      this.health = new ReplicaHealthMonitor(
        this.router,
        { intervalMs: config.routing.healthCheckIntervalMs, maxLagMs: config.routing.maxReplicaLagMs, timeoutMs: config.pool.validationTimeoutMs },
        this.clock,
        this.log,
      );
    }
    this.readKnex = this.createReadKnex();
    if (config.admin) {
      // Histograms are fed by pool events; gauges and counters are read at scrape time.
      const metrics = new PoolMetrics(() => this.getPoolStats());
      this.primary.pool.observe(metrics.observer('primary'));
      for (const r of replicas) r.handle.pool.observe(metrics.observer(r.name));
      this.adminStart = startAdminServer(this, { ...config.admin, metrics, logger: this.log });
      this.adminStart.then(
        (server) => {
          this.adminServer = server;
        },
        (error: unknown) => this.log.error(`Admin endpoint could not start: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
    this.log.info(
      `Connection manager started (min: ${config.pool.min}, max: ${config.pool.max}${replicas.length ? `, replicas: ${replicas.map((r) => r.name).join(', ')}` : ''})`,
    );
  }

  private createReadKnex(): Knex {
    if (this.router.replicas.length === 0) return this.knex;
    const adapter = new LeasingPoolAdapter(
      () => this.leaseForRead(AcquireDeadline.start({}, this.config.pool.acquireTimeoutMs, this.clock)),
      () => undefined,
      () => 0,
    );
    const readKnex = createKnex(adapter, driverSettings(this.config.connection, this.config), this.config.knex);
    // Transactions may write: they always run on the primary.
    const primaryKnex = this.knex;
    Object.defineProperty(readKnex, 'transaction', {
      value: (...args: Parameters<Knex['transaction']>) => primaryKnex.transaction(...args),
      configurable: true,
      writable: true,
    });
    return readKnex;
  }

  /** Where the admin endpoint listens, once it does; undefined before that or when it is off. */
  get admin(): AdminEndpoint | undefined {
    return this.adminServer && { url: this.adminServer.url, port: this.adminServer.port };
  }

  /**
   * Resolves once the admin endpoint listens, with its URL and port (the picked one for
   * `admin.port: 0`). Independent of `ready()`: the endpoint comes up even while the database is down.
   * @throws ConnectionManagerError `E_INVALID_CONFIG` when `admin` is not configured; the listen
   *   error (`EADDRINUSE`, …) when the endpoint could not start.
   */
  async adminReady(): Promise<AdminEndpoint> {
    if (!this.adminStart) {
      throw new ConnectionManagerError('E_INVALID_CONFIG', 'Invalid option "admin": the admin endpoint is not configured. Pass admin: { port } to getConnectionInstance().');
    }
    const server = await this.adminStart;
    return { url: server.url, port: server.port };
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
    return this.leaseChecked(checked);
  }

  /** `getConnection()` after its options were checked. */
  private leaseChecked(options: CheckedCallOptions): Promise<PgPooledConnection> {
    const deadline = AcquireDeadline.start(options, this.config.pool.acquireTimeoutMs, this.clock);
    if (options.intent === 'read' && this.router.replicas.length > 0) return this.leaseForRead(deadline);
    if (options.intent === 'write') this.readYourWrites.noteWrite();
    return this.primary.pool.acquire(deadline);
  }

  /**
   * A lease for a read: from the picked replica, or the primary when no replica is healthy, the
   * caller wrote recently, or the replica cannot lend one in time (it is then taken out of
   * rotation). The primary gets what is left of the caller's deadline, not a new one.
   */
  private async leaseForRead(deadline: AcquireDeadline): Promise<PgPooledConnection> {
    const replica = this.readYourWrites.mustReadPrimary() ? undefined : this.router.pick();
    // With no time left, a replica's timeout would say nothing about the replica: go to the primary, which reports it.
    if (!replica || deadline.remainingMs(this.clock) <= 0) return this.primary.pool.acquire(deadline);
    try {
      const entry = await replica.handle.pool.acquire(this.replicaDeadline(deadline));
      replica.reads++;
      return entry;
    } catch (error) {
      if (isConnectionManagerError(error, 'E_ABORTED') || isConnectionManagerError(error, 'E_POOL_CLOSED') || isConnectionManagerError(error, 'E_INVALID_CONFIG')) throw error;
      this.router.markUnhealthy(replica, `could not lend a connection: ${error instanceof Error ? error.message : String(error)}`);
      return this.primary.pool.acquire(deadline);
    }
  }

  /**
   * A replica gets a share of what is left of the caller's deadline (half, at most one
   * `createTimeoutMs`), so a failing replica leaves time for the primary.
   */
  private replicaDeadline(deadline: AcquireDeadline): AcquireDeadline {
    return deadline.capped(Math.min(deadline.remainingMs(this.clock) / 2, this.config.pool.createTimeoutMs), this.clock);
  }

  /**
   * Runs `fn` in a read-your-writes scope of its own (for example one per HTTP request): a write
   * made anywhere inside it, however deep, sends the reads made anywhere inside it to the primary
   * for `routing.readYourWritesMs`. Without it, a write is only seen by reads in the async context
   * that made it (see docs/routing.md).
   */
  withReadYourWrites<T>(fn: () => T): T {
    return this.readYourWrites.run(fn);
  }

  /**
   * Runs one statement where it belongs: plain reads on a replica (see docs/routing.md for the
   * rules), everything else on the primary. A read that fails on a replica because of the replica
   * (connection lost, server shutting down, read-only error) is retried once on the primary.
   * Without replicas every statement runs on the primary.
   */
  async query<R extends Row = Row>(sql: string, bindings?: readonly unknown[], options?: AcquireOptions): Promise<QueryResult<R>> {
    validateQueryArguments(sql, bindings);
    // One deadline for the call: a read retried on the primary gets what is left of it.
    const deadline = AcquireDeadline.start(validateCallOptions(options, 'query'), this.config.pool.acquireTimeoutMs, this.clock);
    if (this.router.replicas.length > 0) {
      const target = classifyStatement(sql).target;
      if (target === 'replica') {
        const entry = await this.leaseForRead(deadline);
        const pool = entry.owner as PgEntryPool;
        if (pool !== this.primary.pool) {
          try {
            return await entry.query<R>(sql, bindings);
          } catch (error) {
            if (!isReplicaFault(error)) throw error;
            // A read-only error (25006) says the statement writes (a function the classifier does
            // not know), not that the replica is unwell: it stays in rotation.
            const replica = isReadOnlyViolation(error) ? undefined : this.router.replicas.find((r) => r.handle.pool === pool);
            if (replica) this.router.markUnhealthy(replica, `a read failed: ${error instanceof Error ? error.message : String(error)}`);
          } finally {
            if (entry.state === 'inUse') pool.release(entry);
          }
          return this.runOnPrimary<R>(sql, bindings, deadline);
        }
        try {
          return await entry.query<R>(sql, bindings);
        } finally {
          if (entry.state === 'inUse') pool.release(entry);
        }
      }
      this.readYourWrites.noteWrite();
    }
    return this.runOnPrimary<R>(sql, bindings, deadline);
  }

  private async runOnPrimary<R extends Row>(sql: string, bindings: readonly unknown[] | undefined, deadline: AcquireDeadline): Promise<QueryResult<R>> {
    const entry = await this.primary.pool.acquire(deadline);
    try {
      return await entry.query<R>(sql, bindings);
    } finally {
      if (entry.state === 'inUse') this.primary.pool.release(entry);
    }
  }

  /**
   * Gives a connection back (to whichever pool lent it). A connection left inside a transaction is
   * rolled back before reuse.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when it is not checked out from this manager
   *   (released twice, or from another manager).
   */
  releaseConnection(connection: PooledConnection): Promise<void> {
    try {
      this.poolOf(connection).release(connection as PgPooledConnection);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The pool that lent `connection`; the primary's for anything else (which it then refuses: each
   * pool accepts only its own records, by identity). Never throws, whatever `connection` is.
   */
  private poolOf(connection: unknown): PgEntryPool {
    let owner: unknown;
    try {
      owner = (connection as Partial<PgPooledConnection> | null | undefined)?.owner;
    } catch {
      return this.primary.pool; // a proxy whose trap throws
    }
    if (owner === this.primary.pool) return this.primary.pool;
    for (const r of this.router.replicas) if (owner === r.handle.pool) return r.handle.pool;
    return this.primary.pool;
  }

  /**
   * Runs `fn` with a checked-out connection and always releases it, whatever `fn` does.
   * Takes the options of {@link ConnectionManager.getConnection}, checked the same way.
   */
  async withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T> {
    if (typeof fn !== 'function') {
      throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid argument "fn" of withConnection(): expected a function, got ${fn === null ? 'null' : typeof fn}. Pass (connection) => ... as the first argument.`);
    }
    const connection = await this.leaseChecked(validateCallOptions(options, 'withConnection'));
    const lease = connection.leases;
    try {
      return await fn(connection);
    } finally {
      // Skip the release if `fn` already released it (and it may since have gone to someone else).
      if (connection.state === 'inUse' && connection.leases === lease) this.poolOf(connection).release(connection);
    }
  }

  /** A consistent snapshot of the primary's pool, plus each replica's when replicas are configured. */
  getPoolStats(): ManagerPoolStats {
    const stats: ManagerPoolStats = this.primary.pool.stats();
    if (this.router.replicas.length > 0) {
      stats.replicas = {};
      for (const r of this.router.replicas) {
        stats.replicas[r.name] = {
          ...r.handle.pool.stats(),
          healthy: r.healthy,
          lagMs: r.lagMs,
          healthChanges: r.healthChanges,
          ...(r.reason === undefined ? {} : { unhealthyReason: r.reason }),
        };
      }
    }
    return stats;
  }

  /**
   * Checks that `connection` is alive: the driver's view of the socket, then `SELECT 1` bounded by
   * `pool.validationTimeoutMs`. Never throws.
   */
  async isConnectionValid(connection: PooledConnection): Promise<boolean> {
    try {
      const pool = this.poolOf(connection);
      // Only the holder of a lease may check it: a released connection may be someone else's now.
      if (!pool.owns(connection) || (connection as PgPooledConnection).state !== 'inUse') return false;
      return await pool.validate(connection as PgPooledConnection);
    } catch {
      return false;
    }
  }

  /**
   * Closes every idle connection now and every checked-out one when it is released, then refills
   * to `pool.min` with new connections; on every pool. Requests during the reset are served from
   * new connections.
   * @returns the number of connections evicted (checked-out ones included).
   */
  async resetPool(): Promise<number> {
    this.assertOpen();
    const evicted = sum(await Promise.all(this.pools.map((pool) => resetPool(pool))));
    this.log.info(`Pool reset: ${evicted} connection(s) evicted, refilled to ${this.primary.pool.registry.openCount}`);
    return evicted;
  }

  /**
   * Runs the expiry sweep now on every pool: connections past `pool.maxLifetimeMs` are retired
   * (idle ones now, checked-out ones on release), idle ones past `pool.idleTimeoutMs` closed down
   * to `pool.min`.
   * @returns the number of connections retired.
   */
  async triggerExpireConnections(): Promise<number> {
    this.assertOpen();
    const retired = sum(await Promise.all(this.pools.map((pool) => expireConnections(pool, this.clock))));
    this.log.info(`Expiry sweep: ${retired} connection(s) retired`);
    return retired;
  }

  /**
   * Replaces every connection of every pool with a fresh one without lowering capacity
   * (checked-out ones when released). For password rotation, DNS failover, or after a primary
   * switch-over.
   * @returns the number of connections replaced.
   */
  async triggerRenewConnections(): Promise<number> {
    this.assertOpen();
    const renewed = sum(await Promise.all(this.pools.map((pool) => renewConnections(pool))));
    this.log.info(`Renewal: ${renewed} connection(s) replaced`);
    return renewed;
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
      this.adminStart?.then((server) => server.close(), () => undefined),
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

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** `25006 read_only_sql_transaction`: a write reached a read-only server. */
function isReadOnlyViolation(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === '25006';
}

/**
 * Errors that say the replica, not the statement, is at fault: a lost connection, a server
 * shutting down or starting, or a write reaching a read-only server (25006). Reads are safe to
 * repeat on the primary after these.
 */
function isReplicaFault(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (code === '25006' || code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNRESET, EPIPE, ...
  }
  return error instanceof Error && /Connection terminated|connection ended|not queryable/i.test(error.message);
}
