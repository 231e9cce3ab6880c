/**
 * The parts a manager is made of, built in the order they depend on each other: the budget (every
 * pool takes slots from it), the default pool, the directory of named pools, observability (which
 * watches every pool, those made later included), the admin endpoint, and the fleet listener. Each
 * capability is a part with one seam; the manager (manager.ts) only delegates to them.
 */
import { createManagerLogger } from '../logger';
import type { ResolvedConfig } from '../options';
import { systemClock } from '../pool/clock';
import type { ManagerPoolStats } from '../pool/stats';
import { createWriteMarks } from '../routing/read-your-writes';
import type { AdminTarget } from '../admin/server';
import { ConnectionBudget } from '../named-pools/budget';
import { PoolDirectory } from '../named-pools/directory';
import { namedPoolStats } from '../named-pools/stats';
import { Observability } from '../observability';
import { startFleet } from '../fleet/start';
import type { FleetListener, FleetTarget } from '../fleet/listener';
import { withFleetNames } from '../fleet/naming';
import { AdminEndpointHandle } from './admin-endpoint';
import { NamedPool } from './named-pool';
import { startedMessage } from './resize';
import type { ManagerDependencies } from './types';

/** What the parts need of the manager: the operations the endpoint and the fleet run. */
export type ManagerFace = AdminTarget & FleetTarget;

export interface ManagerParts {
  /** `getPoolStats()`: the default pool's stats, with the named pools, budget and fleet when configured. */
  stats(): ManagerPoolStats;
  /** The default pool (`pool('primary')`). */
  main: NamedPool;
  /** Named pools and pools made on demand (undefined when neither is configured, nor a budget). */
  directory: PoolDirectory | undefined;
  observability: Observability;
  adminEndpoint: AdminEndpointHandle | undefined;
  fleet: FleetListener | undefined;
}

/** Builds the parts of `manager` from its configuration; `instance` is its fleet instance id. */
export function buildParts(manager: ManagerFace, configured: ResolvedConfig, dependencies: ManagerDependencies, instance: string): ManagerParts {
  // With `fleet`, every session's name carries the instance (lib/fleet/naming.ts); the manager's
  // `config` stays as given.
  const config = withFleetNames(configured, instance);
  const clock = dependencies.clock ?? systemClock;
  const log = createManagerLogger(config.logger);
  const budget = config.budget === undefined ? undefined : new ConnectionBudget(config.budget.maxConnections);
  const shared = { clock, log, connector: dependencies.connector, budget, writeMarks: createWriteMarks() };
  const main = new NamedPool('primary', config, shared);
  const named = Object.keys(config.pools).length > 0 || config.poolFactory !== undefined || config.budget !== undefined;
  // Pools made later are watched as they are made; those made with the directory, just below.
  let watcher: Observability | undefined;
  const directory = named ? new PoolDirectory(config, shared, (pool) => watcher?.watch(pool)) : undefined;
  // The metrics take their first sample as they are made, before the fleet listener exists: the
  // stats must not need the manager, and read the listener once it is there.
  const later: { fleet?: FleetListener } = {};
  const stats = (): ManagerPoolStats => {
    const snapshot = main.getPoolStats();
    if (directory !== undefined) namedPoolStats(snapshot, main, directory, budget);
    if (later.fleet !== undefined) snapshot.fleet = later.fleet.stats();
    return snapshot;
  };
  const observability = (watcher = new Observability(stats, config, clock, log));
  for (const pool of [main, ...(directory?.pools() ?? [])]) observability.watch(pool);
  const adminEndpoint = config.admin ? new AdminEndpointHandle(manager, config.admin, observability.metrics, log) : undefined;
  const fleet = (later.fleet = startFleet(config, instance, manager, clock, log));
  log.info(startedMessage(config, main.router.replicas.map((r) => r.name)));
  return { stats, main, directory, observability, adminEndpoint, fleet };
}
