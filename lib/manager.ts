/**
 * The connection manager: the public face of its parts (built in manager/parts.ts): the default
 * pool (the primary's pool and one per read replica, their knex instances and router;
 * manager/named-pool.ts), the named pools and those made on demand under one budget
 * (lib/named-pools), observability, the admin endpoint and the fleet listener. One per process
 * (see instance.ts). Its lease, query and admin methods are its default pool's; `pool(name)`
 * reaches the others.
 */
import type { Knex } from 'knex';
import type { QueryResult } from 'pg';
import { ConnectionManagerError } from './errors';
import type { ResolvedConfig } from './options';
import type { ResizeOptions } from './options-sections';
import { resizeDefaultPool } from './manager/resize';
import { buildParts } from './manager/parts';
import { validateCallback } from './call-options';
import type { AcquireOptions } from './pool/pool';
import type { ManagerPoolStats } from './pool/stats';
import type { PooledConnection, Row } from './driver/pooled-connection';
import type { GetConnectionOptions, ManagerDependencies } from './manager/types';
import { NamedPool, type PoolHandle } from './manager/named-pool';
import type { WarmUpOptions } from './resilience/warm-up';
import { FAULT_SEAM } from './resilience/seam';
import { withRetry, type RetryPolicyOptions, type TransactionOptions } from './resilience/retry';
import { adminNotConfigured, type AdminEndpoint, type AdminEndpointHandle } from './manager/admin-endpoint';
import { checkTags, runWithTags } from './admission/tags';
import { noSuchPool, type PoolDirectory } from './named-pools/directory';
import { newInstanceId, type FleetListener } from './fleet/listener';
import type { InspectResult, Observability } from './observability';
import { currentDriverSettings } from './driver/pg-pool';
import type { Registry } from 'prom-client';

export type { AdminEndpoint } from './manager/admin-endpoint';
export type { GetConnectionOptions, ManagerDependencies } from './manager/types';
export type { PoolHandle } from './manager/named-pool';

export type { ManagerPoolStats, ReplicaPoolStats, RoutingStats } from './pool/stats';
export type { InspectedConnection, InspectResult, ServerSession } from './observability';

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

  /** The default pool (`pool('primary')`). */
  private readonly main: NamedPool;
  /** Named pools and pools made on demand (undefined when neither is configured, nor a budget). */
  private readonly directory: PoolDirectory | undefined;
  /** Builds `getPoolStats()`'s snapshot (manager/parts.ts). */
  private readonly stats: () => ManagerPoolStats;
  private closing: Promise<void> | undefined;
  /** The admin endpoint (when `admin` is configured). */
  private readonly adminEndpoint: AdminEndpointHandle | undefined;
  /** The fleet listener (when `fleet` is configured). */
  private readonly fleet: FleetListener | undefined;
  /** This manager's fleet instance id (`host:pid:random`), in its sessions' names with `fleet`. */
  private readonly instance = newInstanceId();
  /** Metrics, OpenTelemetry, the stats log and inspect() (lib/observability). */
  private readonly observability: Observability;

  /** Use `getConnectionInstance()`; direct construction bypasses the process-wide singleton. */
  constructor(config: ResolvedConfig, dependencies: ManagerDependencies = {}) {
    this.config = config;
    ({ stats: this.stats, main: this.main, directory: this.directory, observability: this.observability,
      adminEndpoint: this.adminEndpoint, fleet: this.fleet } = buildParts(this, config, dependencies, this.instance));
    this.knex = this.main.knex;
    this.readKnex = this.main.readKnex;
  }

  /**
   * A prom-client `Registry` with every pool metric and the query metrics, whether or not the
   * admin endpoint runs (its `/metrics` serves this one): merge it into the application's own with
   * `Registry.merge([register, manager.metricsRegistry])`. docs/observability.md lists the names.
   */
  get metricsRegistry(): Registry {
    return this.observability.registry;
  }

  /**
   * Every connection of every pool joined with the server's view of its session
   * (`pg_stat_activity`: state, statement, wait event, transaction start), plus the sessions under
   * the manager's `application_name` prefix that no record owns. One query, on a short-lived session
   * opened for it outside the pools (so never a connection callers could have had), bounded by
   * `pool.validationTimeoutMs`. Sessions on other servers (replicas) are listed with null server fields.
   * @throws ConnectionManagerError `E_CONNECT` when the server did not answer in time; `E_POOL_CLOSED` after `close()`.
   */
  async inspect(): Promise<InspectResult> {
    this.assertOpen();
    return this.observability.inspect(currentDriverSettings(this.knex));
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
  [FAULT_SEAM](): NamedPool['pools'] {
    return this.main.pools;
  }

  /**
   * The pool named `name`, with the same API as the manager's own (which is `pool('primary')`'s):
   * one of `pools`, or one `poolFactory` makes on the first use of `name` (concurrent first uses
   * share one call). A handle of a made pool stays good after the pool was closed as idle: its next
   * call makes the pool again. Cached: a call for a known name costs two Map lookups.
   * @throws ConnectionManagerError `E_UNKNOWN_POOL` for a name not in `pools` when there is no
   *   `poolFactory` or it returned undefined (an async factory's answer rejects the handle's calls
   *   instead); `E_TOO_MANY_POOLS` when `maxPools` made pools are open and none is quiet;
   *   `E_INVALID_CONFIG` for a name that is not a string of 1-128 characters.
   */
  pool(name: string): PoolHandle {
    if (name === 'primary') return this.main;
    return this.directory !== undefined ? this.directory.handle(name) : noSuchPool(name);
  }

  /**
   * Resolves once `pool.min` connections are open on the primary (and the replicas' first health
   * check is done; a replica that is down does not fail it), and the same for each of `pools`.
   * Pools made by `poolFactory` are not waited for: `pool(name).ready()` waits for one.
   * @throws ConnectionManagerError `E_CONNECT` when opening them failed (the pool keeps retrying),
   *   `E_POOL_CLOSED` after `close()`.
   */
  async ready(): Promise<void> {
    await Promise.all([this.main, ...(this.directory?.pools() ?? [])].map((pool) => pool.ready()));
  }

  /**
   * Checks a connection out. Callers are served first come, first served; the wait ends with a
   * connection, at `timeoutMs` (`E_ACQUIRE_TIMEOUT`), when `signal` aborts (`E_ABORTED`), or at
   * `close()` (`E_POOL_CLOSED`). Give it back with {@link ConnectionManager.releaseConnection}.
   * One deadline covers the whole call, a replica tried first and the primary after it included.
   * Bad options reject with `E_INVALID_CONFIG` before anything else is looked at.
   */
  getConnection(options?: GetConnectionOptions): Promise<PooledConnection> {
    return this.main.getConnection(options);
  }

  /**
   * Runs `fn` in a read-your-writes scope of its own (for example one per HTTP request): a write
   * made anywhere inside it, however deep, sends the reads made anywhere inside it to the primary
   * for `routing.readYourWritesMs`. Without it, a write is only seen by reads in the async context
   * that made it (see docs/routing.md).
   */
  withReadYourWrites<T>(fn: () => T): T {
    validateCallback(fn, 'withReadYourWrites');
    // Every pool shares the scope's write marks (routing/read-your-writes.ts).
    return this.main.withReadYourWrites(fn);
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
    return this.main.query<R>(sql, bindings, options);
  }

  /**
   * Gives a connection back to whichever pool lent it (a named pool's too). A connection left
   * inside a transaction is rolled back before reuse.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when it is not checked out from this manager
   *   (released twice, or from another manager).
   */
  releaseConnection(connection: PooledConnection): Promise<void> {
    const owner = this.main.ownerOf(connection) === undefined ? this.directory?.ownerOf(connection) : undefined;
    return (owner ?? this.main).releaseConnection(connection);
  }

  /**
   * Runs `fn` with a checked-out connection and always releases it, whatever `fn` does.
   * Takes the options of {@link ConnectionManager.getConnection}, checked the same way.
   */
  withConnection<T>(fn: (connection: PooledConnection) => Promise<T> | T, options?: GetConnectionOptions): Promise<T> {
    return this.main.withConnection(fn, options);
  }

  /**
   * A consistent snapshot of the primary's pool, plus, when replicas are configured, each replica's
   * and `routing` (learned write names, read-only refusals, session-state warnings given); with
   * named pools or a budget, every pool by name (`pools`), the budget and the totals.
   */
  getPoolStats(): ManagerPoolStats {
    return this.stats();
  }

  /**
   * Runs `fn` again, with backoff and jitter, after a serialization failure (40001), a deadlock
   * (40P01) or a lost connection; any other error passes through unchanged (docs/resilience.md).
   */
  withRetry<T>(fn: () => Promise<T> | T, options?: RetryPolicyOptions): Promise<T> {
    return withRetry(fn, options, this.main.retryHost);
  }

  /**
   * `fn(trx)` in a knex transaction on one primary connection, run again whole on 40001, 40P01 or
   * a connection lost before COMMIT. @throws `E_COMMIT_UNKNOWN` if lost after COMMIT was sent.
   */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T> | T, options?: TransactionOptions): Promise<T> {
    return this.main.transaction(fn, options);
  }

  /**
   * Opens primary connections in parallel until `n` (capped at `pool.max`) are open; resolves with
   * how many are. @throws `E_CONNECT` when not within `timeoutMs` (default `pool.acquireTimeoutMs`).
   */
  warmUp(n: number, options?: WarmUpOptions): Promise<number> {
    return this.main.warmUp(n, options);
  }

  /**
   * Checks that `connection` is alive: the driver's view of the socket, then `SELECT 1` (or
   * `pool.validate`) bounded by `pool.validationTimeoutMs`. Never throws.
   */
  isConnectionValid(connection: PooledConnection): Promise<boolean> {
    return this.main.isConnectionValid(connection);
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
    return this.main.resetPool();
  }

  /**
   * Runs the expiry sweep now on every pool: connections past `pool.maxLifetimeMs` are retired
   * (idle ones now, checked-out ones on release), idle ones past `pool.idleTimeoutMs` closed down
   * to `pool.min`.
   * @returns the number of connections retired.
   */
  async triggerExpireConnections(): Promise<number> {
    this.assertOpen();
    return this.main.triggerExpireConnections();
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
    return this.main.triggerRenewConnections();
  }

  /**
   * Changes `pool.min` and `pool.max` of the default pool (its primary and each replica) while it
   * runs; a limit left out is kept. Growing opens what waiting callers and the new `min` need;
   * shrinking closes idle connections beyond the new `max` at once and checked-out ones when
   * released (opens in flight when they arrive), never below the new `min`. `getPoolStats()` shows
   * the new limits at once; `config` keeps the configured ones.
   * @returns the connections closed at once and those closing on release or arrival.
   * @throws ConnectionManagerError `E_INVALID_CONFIG` for bad limits (or a `min` that, with the
   *   other pools', would not fit in `budget.maxConnections`); `E_POOL_CLOSED` after `close()`.
   */
  async resize(limits: ResizeOptions): Promise<{ closed: number; retiring: number }> {
    this.assertOpen();
    return resizeDefaultPool(this.config, this.main, this.directory?.pools() ?? [], limits);
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
    this.observability.close();
    this.closing ??= Promise.all([this.fleet?.close(), this.adminEndpoint?.close(), this.main.close(), this.directory?.close()]).then(() => undefined);
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) {
      throw new ConnectionManagerError('E_POOL_CLOSED', 'The connection manager is closed. Call getConnectionInstance() again to create a new one.');
    }
  }
}
