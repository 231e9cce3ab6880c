/**
 * The options of named pools: `pools`, `poolFactory`, `maxPools`, `poolIdleTimeoutMs` and
 * `budget`, checked up front like every other option (`E_INVALID_CONFIG` naming the option and
 * the fix), and a factory's result checked the same way when it comes. docs/named-pools.md and
 * docs/options.md document them.
 */
import { ConnectionManagerError, invalidConfig, isConnectionManagerError } from '../errors';
import type { BudgetOptions, PoolFactory, ResolvedConfig, ResolvedNamedPool, ResolvedPoolOptions } from '../options-types';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys } from '../options-rules';
import { ms, resolveConnectionOrProvider, resolvePool, resolveReplicas, resolveRouting } from '../options-sections';

/** The defaults, documented in docs/options.md. */
export const DEFAULT_MAX_POOLS = 100;
export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 300_000;

/** The named-pool part of a resolved configuration. */
export type ResolvedNamedPools = Pick<ResolvedConfig, 'pools' | 'poolFactory' | 'maxPools' | 'poolIdleTimeoutMs' | 'budget'>;

/** True when `name` may name a pool: 1-128 characters, no control characters, no "/" (it separates a pool from its replica in pool names). */
export function isPoolName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x2f) return false;
  }
  return true;
}

/** Checks the named-pool options of `config` over the top-level `pool` options already resolved. */
export function resolveNamedPools(config: Record<string, unknown>, basePool: ResolvedPoolOptions): ResolvedNamedPools {
  const pools: Record<string, ResolvedNamedPool> = {};
  if (config.pools !== undefined) {
    if (!isPlainObject(config.pools)) {
      throw invalidConfig('pools', `expected an object of named pools, got ${describe(config.pools)}`, 'Pass pools: { analytics: { connection, pool? } }, or leave it out.');
    }
    for (const [name, value] of Object.entries(config.pools)) {
      if (name === 'primary' || !isPoolName(name)) {
        throw invalidConfig(`pools.${name}`, name === 'primary' ? 'the name "primary" is the default pool\'s' : 'a pool name is 1-128 characters, without control characters or "/"', 'Rename the pool.');
      }
      pools[name] = resolveNamedPool(value, `pools.${name}`, basePool, true);
    }
  }
  let poolFactory: PoolFactory | undefined;
  if (config.poolFactory !== undefined) {
    if (typeof config.poolFactory !== 'function') {
      throw invalidConfig('poolFactory', `expected a function, got ${describe(config.poolFactory)}`, 'Pass poolFactory: async (name) => ({ connection, pool? }) (undefined for an unknown name), or leave it out.');
    }
    poolFactory = config.poolFactory as PoolFactory;
  }
  const maxPools = config.maxPools === undefined ? DEFAULT_MAX_POOLS : checkNumber('maxPools', config.maxPools, { min: 1, integer: true, kind: 'count', unit: 'pools made by poolFactory' });
  const poolIdleTimeoutMs = config.poolIdleTimeoutMs === undefined ? DEFAULT_POOL_IDLE_TIMEOUT_MS : checkNumber('poolIdleTimeoutMs', config.poolIdleTimeoutMs, ms(0, true));
  return { pools, poolFactory, maxPools, poolIdleTimeoutMs, budget: resolveBudget(config.budget) };
}

function resolveBudget(value: unknown): Required<BudgetOptions> | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw invalidConfig('budget', `expected an object, got ${describe(value)}`, 'Pass budget: { maxConnections }, or leave it out.');
  rejectUnknownKeys('budget', value, ['maxConnections']);
  if (value.maxConnections === undefined) throw invalidConfig('budget.maxConnections', 'it is missing', 'Set budget.maxConnections to the most sessions the database can give this process.');
  return { maxConnections: checkNumber('budget.maxConnections', value.maxConnections, { min: 1, integer: true, kind: 'count', unit: 'connections' }) };
}

/**
 * One named pool (`staticPool`: one of `pools`, which may have replicas and routing) or one result
 * of `poolFactory` (connection and pool only). Its `pool` options default to the top level's,
 * except `min` and `minIdle`, which default to 0: a pool made for a tenant should hold no session
 * it was not asked for.
 */
export function resolveNamedPool(value: unknown, label: string, basePool: ResolvedPoolOptions, staticPool: boolean): ResolvedNamedPool {
  const keys = staticPool ? ['connection', 'pool', 'replicas', 'routing'] : ['connection', 'pool'];
  if (!isPlainObject(value)) {
    throw invalidConfig(label, `expected an object, got ${describe(value)}`, `Give it as { ${keys.map((k, i) => (i === 0 ? k : `${k}?`)).join(', ')} }.`);
  }
  rejectUnknownKeys(label, value, keys);
  return under(label, () => {
    if (value.connection === undefined) throw invalidConfig('connection', 'it is missing', 'Give each pool its own connection string or object.');
    const connection = resolveConnectionOrProvider(value.connection, 'connection');
    const pool = resolvePool(value.pool, { ...basePool, min: 0, minIdle: 0 });
    return { connection, pool, replicas: resolveReplicas(value.replicas), routing: resolveRouting(value.routing) };
  });
}

/** Runs `check`, naming the options it refuses under `label` (`pool.max` becomes `pools.analytics.pool.max`). */
function under<T>(label: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!isConnectionManagerError(error, 'E_INVALID_CONFIG')) throw error;
    throw new ConnectionManagerError('E_INVALID_CONFIG', error.message.replace(/^Invalid option "/, `Invalid option "${label}.`));
  }
}

/** Connections a pool keeps open at least: `min` for its primary and for each replica. */
export function minimumOf(pool: { pool: ResolvedPoolOptions; replicas: readonly unknown[] }): number {
  return pool.pool.min * (1 + pool.replicas.length);
}

/**
 * Refuses a budget the static pools' `min` do not fit in: the default pool and its replicas, and
 * every one of `pools` with its replicas.
 */
export function checkMinimumsFit(config: ResolvedConfig): void {
  if (config.budget === undefined) return;
  let total = minimumOf(config);
  for (const named of Object.values(config.pools)) total += minimumOf(named);
  if (total > config.budget.maxConnections) {
    throw invalidConfig(
      'budget.maxConnections',
      `the pools' min connections add up to ${total}, more than the budget of ${config.budget.maxConnections}`,
      'Raise budget.maxConnections or lower pool.min of the default pool or of named pools (replicas count once each).',
    );
  }
}

/** The full configuration of the named pool `named`: its own sections over the manager's. */
export function configFor(base: ResolvedConfig, named: ResolvedNamedPool): ResolvedConfig {
  return { ...base, connection: named.connection, pool: named.pool, replicas: named.replicas, routing: named.routing, admin: undefined, pools: {} };
}
