/**
 * The connection manager: owns the pool of physical connections, the knex instance whose pool it
 * is, and the admin triggers. One per process (see instance.ts).
 */
import type { Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { Logger } from 'winston';
import { ConnectionManagerError } from './errors';
import { createManagerLogger } from './logger';
import type { ResolvedConfig } from './options';
import { systemClock, type Clock } from './pool/clock';
import type { Connector } from './pool/connector';
import { expireConnections, renewConnections, resetPool } from './pool/eviction';
import { Pool, type AcquireOptions } from './pool/pool';
import type { PoolStats } from './pool/stats';
import { bindKnex, createKnex, ManagerPoolAdapter } from './driver/knex-adapter';
import { PgConnector } from './driver/pg-connector';
import { PgPooledConnection, type PooledConnection } from './driver/pooled-connection';

/** Options of `getConnection()` and `withConnection()`. */
export type GetConnectionOptions = AcquireOptions;

/** Replaceable parts, for tests. */
export interface ManagerDependencies {
  clock?: Clock;
  /** Replaces the PostgreSQL connector (tests with gated fake connections). */
  connector?: (knexClient: Knex.Client, logger: Logger) => Connector<PgClient>;
}

/** Connection settings handed to node-postgres, with the manager's defaults filled in. */
function driverSettings(config: ResolvedConfig): Record<string, unknown> {
  const base: Record<string, unknown> =
    typeof config.connection === 'string' ? { connectionString: config.connection } : { ...config.connection };
  // pg gives up on a connect after this long (the pool also bounds the whole open).
  base.connectionTimeoutMillis ??= config.pool.createTimeoutMs;
  // TCP keepalive lets the kernel notice a peer that vanished without closing the socket.
  base.keepAlive ??= true;
  // Visible in pg_stat_activity, so operators can tell the manager's sessions apart.
  base.application_name ??= 'knex-connection-manager';
  if (typeof config.connection === 'object' && config.connection.password !== undefined) {
    Object.defineProperty(base, 'password', { value: config.connection.password, enumerable: false, writable: true });
  }
  return base;
}

/** The process-wide PostgreSQL connection manager. Create it with `getConnectionInstance()`. */
export class ConnectionManager {
  /** A knex instance whose pool is this manager: every query checks a connection out and back in here. */
  readonly knex: Knex;
  /** The validated configuration this manager was created from. */
  readonly config: ResolvedConfig;

  private readonly pool: Pool<PgClient, PgPooledConnection>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;

  /** Use `getConnectionInstance()`; direct construction bypasses the process-wide singleton. */
  constructor(config: ResolvedConfig, dependencies: ManagerDependencies = {}) {
    this.config = config;
    this.clock = dependencies.clock ?? systemClock;
    this.log = createManagerLogger(config.logger);
    const adapter = new ManagerPoolAdapter();
    this.knex = createKnex(adapter, driverSettings(config), config.knex);
    const connector = dependencies.connector?.(this.knex.client, this.log) ?? new PgConnector(this.knex.client, this.log);
    this.pool = new Pool<PgClient, PgPooledConnection>({
      name: 'primary',
      options: config.pool,
      retry: config.retry,
      connector,
      clock: this.clock,
      logger: this.log,
      createEntry: (owner) => new PgPooledConnection(owner, (entry) => bindKnex(entry, this.knex, config.knex)),
    });
    adapter.attach(this.pool);
    this.log.info(`Connection manager started (min: ${config.pool.min}, max: ${config.pool.max})`);
  }

  /**
   * Resolves once `pool.min` connections are open.
   * @throws ConnectionManagerError `E_CONNECT` when opening them failed (the pool keeps retrying),
   *   `E_POOL_CLOSED` after `close()`.
   */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /**
   * Checks a connection out. Callers are served first come, first served; the wait ends with a
   * connection, at `timeoutMs` (`E_ACQUIRE_TIMEOUT`), when `signal` aborts (`E_ABORTED`), or at
   * `close()` (`E_POOL_CLOSED`). Give it back with {@link ConnectionManager.releaseConnection}.
   */
  getConnection(options?: GetConnectionOptions): Promise<PooledConnection> {
    return this.pool.acquire(options);
  }

  /**
   * Gives a connection back. A connection left inside a transaction is rolled back before reuse.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when it is not checked out from this manager
   *   (released twice, or from another manager).
   */
  releaseConnection(connection: PooledConnection): Promise<void> {
    try {
      this.pool.release(connection as PgPooledConnection);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Runs `fn` with a checked-out connection and always releases it, whatever `fn` does. */
  async withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T> {
    const connection = (await this.getConnection(options)) as PgPooledConnection;
    const lease = connection.leases;
    try {
      return await fn(connection);
    } finally {
      // Skip the release if `fn` already released it (and it may since have gone to someone else).
      if (connection.state === 'inUse' && connection.leases === lease) this.pool.release(connection);
    }
  }

  /** A consistent snapshot of the pool. */
  getPoolStats(): PoolStats {
    return this.pool.stats();
  }

  /**
   * Checks that `connection` is alive: the driver's view of the socket, then `SELECT 1` bounded by
   * `pool.validationTimeoutMs`. Never throws.
   */
  async isConnectionValid(connection: PooledConnection): Promise<boolean> {
    if (!this.pool.owns(connection)) return false;
    return this.pool.validate(connection);
  }

  /**
   * Closes every idle connection now and every checked-out one when it is released, then refills
   * to `pool.min` with new connections. Requests during the reset are served from new connections.
   */
  async resetPool(): Promise<void> {
    this.assertOpen();
    const evicted = await resetPool(this.pool);
    this.log.info(`Pool reset: ${evicted} connection(s) evicted, refilled to ${this.pool.registry.openCount}`);
  }

  /**
   * Runs the expiry sweep now: connections past `pool.maxLifetimeMs` are retired (idle ones now,
   * checked-out ones on release), idle ones past `pool.idleTimeoutMs` closed down to `pool.min`.
   * @returns the number of connections retired.
   */
  async triggerExpireConnections(): Promise<number> {
    this.assertOpen();
    const retired = await expireConnections(this.pool, this.clock);
    this.log.info(`Expiry sweep: ${retired} connection(s) retired`);
    return retired;
  }

  /**
   * Replaces every connection with a fresh one without lowering capacity (checked-out ones when
   * released). For password rotation, DNS failover, or after a primary switch-over.
   * @returns the number of connections replaced.
   */
  async triggerRenewConnections(): Promise<number> {
    this.assertOpen();
    const renewed = await renewConnections(this.pool);
    this.log.info(`Renewal: ${renewed} connection(s) being replaced`);
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
    this.closing ??= this.pool.close();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) {
      throw new ConnectionManagerError('E_POOL_CLOSED', 'The connection manager is closed. Call getConnectionInstance() again to create a new one.');
    }
  }
}
