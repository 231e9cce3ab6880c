/**
 * The read side's set-up: one pool per configured replica, in the router's bookkeeping, and the
 * knex instance for reads that leases from them (its transactions run on the primary).
 */
import type { Knex } from 'knex';
import type { Logger } from 'winston';
import type { ResolvedConfig } from '../options';
import type { Clock } from '../pool/clock';
import { createKnex, LeasingPoolAdapter } from '../driver/knex-adapter';
import { createPgPool, driverSettings, type ConnectorFactory } from '../driver/pg-pool';
import type { Client as PgClient } from 'pg';
import { ENTRY, type PgPooledConnection, type TaggedClient } from '../driver/pooled-connection';
import { ReplicaHealthMonitor } from './health';
import type { ReplicaState, Router } from './router';
import type { PoolStats } from '../pool/stats';
import type { BudgetSeam } from '../pool/types';

/**
 * A pool per replica, each out of rotation until its first health check passes. The pools of a
 * named pool's replicas are named `<pool>/<replica>` (`scope`), the default pool's by the replica alone.
 */
export function createReplicas(
  config: ResolvedConfig,
  clock: Clock,
  log: Logger,
  connector: ConnectorFactory | undefined,
  scope: { pool: string | undefined; label: string; budget: BudgetSeam | undefined } = { pool: undefined, label: '', budget: undefined },
): ReplicaState[] {
  const named = scope.pool !== undefined;
  return config.replicas.map((r) => ({
    name: r.name,
    weight: r.weight,
    handle: createPgPool(
      named ? `${scope.pool}/${r.name}` : r.name, r.connection, config, clock, log.child({ replica: r.name }), connector,
      named ? `${scope.label}.replicas[${r.name}].connection` : undefined, scope.budget,
    ),
    healthy: false,
    lagMs: null,
    reason: 'not checked yet',
    healthChanges: 0,
    reads: 0,
  }));
}

/** How `readKnex` leases and where it runs each statement (`ReadRouting`). */
export interface ReadKnexRouting {
  leaseDefaultRead(): Promise<PgPooledConnection>;
  runReadKnexStatement<T>(entry: PgPooledConnection, sql: string, run: (raw: PgClient) => Promise<T>): Promise<T>;
}

/** The part of knex's dialect client that runs one statement on a driver connection. */
interface StatementRunner {
  _query(connection: PgClient, query: { sql?: unknown }): Promise<unknown>;
}

/**
 * A knex instance whose queries lease through `routing`; its transactions (which may write) run on
 * `primaryKnex`. knex shows the statement only once it holds a connection, so each statement is
 * handed to `routing` with the connection leased for it, to run there or on the primary.
 */
export function createReadKnex(config: ResolvedConfig, primaryKnex: Knex, routing: ReadKnexRouting): Knex {
  const adapter = new LeasingPoolAdapter(() => routing.leaseDefaultRead(), () => undefined, () => 0);
  const readKnex = createKnex(adapter, driverSettings(config.connection, config), config.knex);
  const client = readKnex.client as unknown as StatementRunner;
  const runStatement = client._query.bind(client);
  client._query = (connection, query) => {
    const entry = (connection as TaggedClient)[ENTRY];
    if (entry === undefined || typeof query?.sql !== 'string') return runStatement(connection, query);
    return routing.runReadKnexStatement(entry, query.sql, (raw) => runStatement(raw, query));
  };
  Object.defineProperty(readKnex, 'transaction', {
    value: (...args: Parameters<Knex['transaction']>) => primaryKnex.transaction(...args),
    configurable: true,
    writable: true,
  });
  return readKnex;
}

/** The health checks of the router's replicas, on the routing settings. */
export function createHealthMonitor(router: Router, config: ResolvedConfig, clock: Clock, log: Logger): ReplicaHealthMonitor {
  return new ReplicaHealthMonitor(
    router,
    { intervalMs: config.routing.healthCheckIntervalMs, maxLagMs: config.routing.maxReplicaLagMs, timeoutMs: config.pool.validationTimeoutMs },
    clock,
    log,
  );
}

/** Each replica's pool statistics plus its health, by replica name. */
export function replicaStats(replicas: readonly ReplicaState[]): Record<string, PoolStats & { healthy: boolean; lagMs: number | null; healthChanges: number; unhealthyReason?: string }> {
  const out: ReturnType<typeof replicaStats> = {};
  for (const r of replicas) {
    out[r.name] = {
      ...r.handle.pool.stats(),
      healthy: r.healthy,
      lagMs: r.lagMs,
      healthChanges: r.healthChanges,
      ...(r.reason === undefined ? {} : { unhealthyReason: r.reason }),
    };
  }
  return out;
}
