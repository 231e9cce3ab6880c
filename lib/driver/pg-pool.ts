/**
 * Builds one PostgreSQL pool: the knex instance whose dialect client opens its connections (and
 * whose own pool it is), the connector, and the generic pool of `PgPooledConnection` records.
 * The manager builds one for the primary and one per read replica, all with the same limits.
 */
import type { Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { Logger } from 'winston';
import type { ResolvedConfig } from '../options';
import type { Clock } from '../pool/clock';
import type { Connector } from '../pool/connector';
import type { Pool } from '../pool/pool';
import type { BudgetSeam } from '../pool/types';
import { TransactionModeGuard } from '../pgbouncer/transaction-mode';
import { newStatementCacheStats, type StatementCacheSettings } from '../statement-cache/cache';
import { ConnectionSource } from './connection-source';
import { bindKnex, createKnex, exposeConfig, LeasingPoolAdapter } from './knex-adapter';
import { PgConnector } from './pg-connector';
import { PgEntryPool } from './pg-entry-pool';
import { PgPooledConnection } from './pooled-connection';
import { DEFAULT_APPLICATION_NAME } from '../options-observability';
import { timeOpens } from '../observability/session';

/** A pool of PostgreSQL connections and the knex instance that draws from it. */
export interface PgPool {
  readonly name: string;
  readonly pool: Pool<PgClient, PgPooledConnection>;
  /** knex whose pool is `pool`. */
  readonly knex: Knex;
}

/** Makes the PostgreSQL connector for a knex client (replaceable in tests). */
export type ConnectorFactory = (knexClient: Knex.Client, logger: Logger) => Connector<PgClient>;

/**
 * Connection settings handed to node-postgres, with the manager's defaults filled in. For a
 * connection function, only the defaults (its results get them at each open).
 */
export function driverSettings(connection: ResolvedConfig['connection'], config: ResolvedConfig): Record<string, unknown> {
  const base: Record<string, unknown> =
    typeof connection === 'string' ? { connectionString: connection } : typeof connection === 'function' ? {} : { ...connection };
  // pg gives up on a connect after this long (the pool also bounds the whole open).
  base.connectionTimeoutMillis ??= config.pool.createTimeoutMs;
  // TCP keepalive lets the kernel notice a peer that vanished without closing the socket.
  base.keepAlive ??= true;
  // The prefix of `<prefix>:<N>` in pg_stat_activity (lib/observability/session.ts): the
  // applicationName option, else the connection's own application_name, else the default.
  if (config.applicationName !== undefined) base.application_name = config.applicationName;
  else base.application_name ??= DEFAULT_APPLICATION_NAME;
  if (typeof connection === 'object' && connection.password !== undefined) {
    // Kept out of JSON.stringify and console.log of the settings.
    Object.defineProperty(base, 'password', { value: connection.password, enumerable: false, writable: true });
  }
  return base;
}

/** The node-postgres settings `knex` last opened a connection with (a connection function's latest result). */
export function currentDriverSettings(knex: Knex): Record<string, unknown> {
  return (knex.client as unknown as { connectionSettings: Record<string, unknown> }).connectionSettings;
}

/**
 * Builds the pool named `name` over `connection`.
 * @param label where `connection` was configured, for error messages (`connection`, `replicas[r1].connection`, …).
 * @param budget the manager's connection budget, when one is configured.
 */
export function createPgPool(
  name: string,
  connection: ResolvedConfig['connection'],
  config: ResolvedConfig,
  clock: Clock,
  logger: Logger,
  connectorFactory?: ConnectorFactory,
  label: string = name === 'primary' ? 'connection' : `replicas[${name}].connection`,
  budget?: BudgetSeam,
): PgPool {
  // The adapter is handed to knex before the pool exists (the pool's connector needs knex's client).
  const ref: { pool?: Pool<PgClient, PgPooledConnection> } = {};
  const adapter = new LeasingPoolAdapter(
    () => (ref.pool as Pool<PgClient, PgPooledConnection>).acquire(),
    () => ref.pool?.counts,
    () => ref.pool?.waiting ?? 0,
  );
  const knex = createKnex(adapter, driverSettings(connection, config), config.knex);
  exposeConfig(knex, connection, config);
  const setup = {
    // Fixed settings are already the knex client's; a function is called as each open needs it.
    source: typeof connection === 'function' ? new ConnectionSource(connection, (c) => driverSettings(c, config), label) : undefined,
    afterCreate: config.pool.afterCreate,
    validate: config.pool.validate,
  };
  const connector = connectorFactory?.(knex.client, logger) ?? new PgConnector(knex.client, logger, clock, setup);
  // One set of statement cache counters per pool, shared by its connections (each has its own cache).
  const cache: StatementCacheSettings | undefined = config.statementCache === false ? undefined : { size: config.statementCache.size, stats: newStatementCacheStats() };
  const guard = config.pgbouncer === 'transaction' ? new TransactionModeGuard(logger) : undefined;
  timeOpens(connector, () => ref.pool); // db.client.connection.create_time (lib/observability)
  const pool = new PgEntryPool({
    name,
    options: config.pool,
    retry: config.retry,
    circuitBreaker: config.circuitBreaker,
    budget,
    connector,
    clock,
    logger,
    createEntry: (owner) => new PgPooledConnection(owner, (entry) => bindKnex(entry, knex, config.knex), cache, guard),
  }, cache?.stats);
  ref.pool = pool;
  return { name, pool, knex };
}
