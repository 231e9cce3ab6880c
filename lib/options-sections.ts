/**
 * The sections of a configuration that every pool of a manager has — `connection`, `pool`,
 * `replicas`, `routing` — checked the same way for the top level, each of `pools` and each result
 * of `poolFactory` (lib/named-pools/options.ts). Refusals are `E_INVALID_CONFIG` naming the option.
 */
import type {
  ConnectionProvider,
  PoolLimits,
  ReplicaConfig,
  ResolvedPoolOptions,
  RoutingOptions,
  RoutingStrategy,
  StaticConnection,
  ValidationHook,
  SessionSetupHook,
} from './options-types';
import { invalidConfig } from './errors';
import { resolveConnection } from './options-connection';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys, type NumberRule } from './options-rules';
import { DEFAULT_POOL_OPTIONS, DEFAULT_ROUTING_OPTIONS } from './options-defaults';
import { compileRoutingRules } from './routing/write-list';

const STRATEGIES: readonly RoutingStrategy[] = ['round-robin', 'least-busy', 'random'];

/** A time in milliseconds of at least `min`. */
export const ms = (min: number, zeroDisables = false): NumberRule => ({ min, integer: false, kind: 'ms', zeroDisables, unit: 'milliseconds' });

const POOL_RULES: Record<keyof PoolLimits, NumberRule> = {
  min: { min: 0, integer: true, kind: 'count', unit: 'connections' },
  max: { min: 1, integer: true, kind: 'count', unit: 'connections' },
  minIdle: { min: 0, integer: true, kind: 'count', unit: 'idle connections' },
  acquireTimeoutMs: ms(1),
  createTimeoutMs: ms(1),
  idleTimeoutMs: ms(0, true),
  maxLifetimeMs: ms(0, true),
  validationTimeoutMs: ms(1),
  validationIdleThresholdMs: ms(0, true),
  keepaliveIntervalMs: ms(0, true),
  leakDetectionThresholdMs: ms(0, true),
  maxWaiting: { min: 0, integer: true, infinite: true, kind: 'count', unit: 'waiting callers' },
  closeTimeoutMs: ms(0),
};

/** Numbers of a section, each checked by its rule, over `defaults`. */
export function resolveNumbers<T extends object>(
  section: string,
  input: unknown,
  rules: Record<keyof T & string, NumberRule>,
  defaults: Readonly<Required<T>>,
): Required<T> {
  if (input === undefined) return { ...defaults };
  if (!isPlainObject(input)) {
    throw invalidConfig(section, `expected an object, got ${describe(input)}`, `Pass "${section}" as an object such as { ... } or leave it out.`);
  }
  const keys = Object.keys(rules);
  rejectUnknownKeys(section, input, keys);
  const out: Record<string, number> = { ...(defaults as Record<string, number>) };
  for (const key of keys) {
    const value = input[key];
    if (value === undefined) continue;
    out[key] = checkNumber(`${section}.${key}`, value, rules[key as keyof T & string]);
  }
  return out as Required<T>;
}

export function resolveReplicas(value: unknown): Array<Required<ReplicaConfig>> {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw invalidConfig('replicas', `expected an array, got ${describe(value)}`, 'Pass replicas: [{ name, connection, weight? }].');
  }
  const names = new Set<string>();
  return value.map((item: unknown, index) => {
    const at = `replicas[${index}]`;
    if (!isPlainObject(item)) throw invalidConfig(at, `expected an object, got ${describe(item)}`, 'Pass { name, connection, weight? }.');
    rejectUnknownKeys(at, item, ['name', 'connection', 'weight']);
    if (typeof item.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(item.name)) {
      throw invalidConfig(`${at}.name`, `expected 1-64 letters, digits, "_", "-" or ".", got ${describe(item.name)}`, 'Give each replica a short unique name such as "replica-1".');
    }
    if (names.has(item.name) || item.name === 'primary') {
      throw invalidConfig(`${at}.name`, `the name "${item.name}" is ${item.name === 'primary' ? 'reserved' : 'used twice'}`, 'Give each replica a unique name other than "primary".');
    }
    names.add(item.name);
    const connection = resolveConnectionOrProvider(item.connection, `${at}.connection`);
    const weight = item.weight === undefined ? 1 : checkNumber(`${at}.weight`, item.weight, { min: 0, integer: false, kind: 'count', unit: 'relative share' });
    return { name: item.name, connection, weight };
  });
}

const ROUTING_KEYS = ['strategy', 'maxReplicaLagMs', 'readYourWritesMs', 'healthCheckIntervalMs', 'primaryFunctions', 'primaryRelations', 'learnFromReadOnlyErrors'];

export function resolveRouting(value: unknown): Required<RoutingOptions> {
  // Fresh arrays: the frozen defaults' are shared, and a caller's may change after the check.
  if (value === undefined) return { ...DEFAULT_ROUTING_OPTIONS, primaryFunctions: [], primaryRelations: [] };
  if (!isPlainObject(value)) throw invalidConfig('routing', `expected an object, got ${describe(value)}`, `Pass routing: { ${ROUTING_KEYS.map((k) => `${k}?`).join(', ')} }.`);
  rejectUnknownKeys('routing', value, ROUTING_KEYS);
  const out: Required<RoutingOptions> = { ...DEFAULT_ROUTING_OPTIONS, primaryFunctions: [], primaryRelations: [] };
  if (value.strategy !== undefined) {
    if (typeof value.strategy !== 'string' || !(STRATEGIES as readonly string[]).includes(value.strategy)) {
      throw invalidConfig('routing.strategy', `expected one of ${STRATEGIES.join(', ')}, got ${describe(value.strategy)}`, 'Set routing.strategy to "round-robin", "least-busy" or "random".');
    }
    out.strategy = value.strategy as RoutingStrategy;
  }
  if (value.maxReplicaLagMs !== undefined) out.maxReplicaLagMs = checkNumber('routing.maxReplicaLagMs', value.maxReplicaLagMs, ms(0, true));
  if (value.readYourWritesMs !== undefined) out.readYourWritesMs = checkNumber('routing.readYourWritesMs', value.readYourWritesMs, ms(0, true));
  if (value.healthCheckIntervalMs !== undefined) out.healthCheckIntervalMs = checkNumber('routing.healthCheckIntervalMs', value.healthCheckIntervalMs, ms(10));
  // Compiled here only to refuse a bad name up front (E_INVALID_CONFIG naming the entry); the manager compiles its own.
  compileRoutingRules({ primaryFunctions: value.primaryFunctions as readonly string[] | undefined, primaryRelations: value.primaryRelations as readonly string[] | undefined });
  if (value.primaryFunctions !== undefined) out.primaryFunctions = [...(value.primaryFunctions as string[])];
  if (value.primaryRelations !== undefined) out.primaryRelations = [...(value.primaryRelations as string[])];
  if (value.learnFromReadOnlyErrors !== undefined) {
    if (typeof value.learnFromReadOnlyErrors !== 'boolean') {
      throw invalidConfig('routing.learnFromReadOnlyErrors', `expected a boolean, got ${describe(value.learnFromReadOnlyErrors)}`, 'Set routing.learnFromReadOnlyErrors to true or false.');
    }
    out.learnFromReadOnlyErrors = value.learnFromReadOnlyErrors;
  }
  return out;
}

/** A static connection setting (checked now), or a function returning one (checked at each call). */
export function resolveConnectionOrProvider(value: unknown, at: string): StaticConnection | ConnectionProvider {
  if (typeof value === 'function') return value as ConnectionProvider;
  return resolveConnection(value, at);
}

/** The `pool` section: the numeric options, and the `afterCreate` and `validate` hooks. */
export function resolvePool(value: unknown, defaults: Readonly<ResolvedPoolOptions> = DEFAULT_POOL_OPTIONS): ResolvedPoolOptions {
  const pool = resolvePoolHooks(value, defaults);
  if (pool.min > pool.max) {
    throw invalidConfig('pool.min', `min (${pool.min}) is greater than max (${pool.max})`, 'Lower pool.min or raise pool.max so that min <= max.');
  }
  if (pool.minIdle > pool.max) {
    throw invalidConfig('pool.minIdle', `minIdle (${pool.minIdle}) is greater than max (${pool.max})`, 'Lower pool.minIdle or raise pool.max so that minIdle <= max.');
  }
  return pool;
}

/** The numbers over `defaults` (hooks included), then the hooks given. */
function resolvePoolHooks(value: unknown, defaults: Readonly<ResolvedPoolOptions>): ResolvedPoolOptions {
  if (!isPlainObject(value) || (value.afterCreate === undefined && value.validate === undefined)) return resolveNumbers<PoolLimits>('pool', value, POOL_RULES, defaults);
  const { afterCreate, validate, ...limits } = value;
  const pool: ResolvedPoolOptions = resolveNumbers<PoolLimits>('pool', limits, POOL_RULES, defaults);
  if (validate !== undefined) {
    if (typeof validate !== 'function') {
      throw invalidConfig('pool.validate', `expected a function, got ${describe(validate)}`, 'Pass pool.validate: async (conn) => (await conn.query("SELECT ...")).rowCount === 1, or leave it out.');
    }
    pool.validate = validate as ValidationHook;
  }
  if (afterCreate === undefined) return pool;
  if (typeof afterCreate !== 'function') {
    throw invalidConfig('pool.afterCreate', `expected a function, got ${describe(afterCreate)}`, 'Pass pool.afterCreate: async (conn) => { await conn.query("SET ...") }, or leave it out.');
  }
  if (afterCreate.length >= 2) {
    throw invalidConfig(
      'pool.afterCreate',
      "it takes a callback (knex's (conn, done) form), which the manager does not call",
      'Write it as async (conn) => { await conn.query("SET ...") }: return (or throw) instead of calling done (docs/knex.md).',
    );
  }
  pool.afterCreate = afterCreate as SessionSetupHook;
  return pool;
}

/** `manager.resize()`'s argument: the new `pool.min` and `pool.max` (a missing one is kept). */
export interface ResizeOptions {
  min?: number;
  max?: number;
}

/**
 * Checks `manager.resize(limits)` against the current limits like the `pool` options are checked
 * at start: whole numbers, `min >= 0`, `max >= 1`, `min <= max`.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` naming `resize.min` or `resize.max`.
 */
export function resolveResize(limits: unknown, current: { min: number; max: number }): Required<ResizeOptions> {
  if (!isPlainObject(limits)) throw invalidConfig('resize', `expected an object, got ${describe(limits)}`, 'Pass resize({ min?, max? }) with whole numbers.');
  if (limits.min === undefined && limits.max === undefined) throw invalidConfig('resize', 'neither min nor max is given', 'Pass resize({ min?, max? }) with at least one of them.');
  const next = resolveNumbers<ResizeOptions>('resize', limits, { min: POOL_RULES.min, max: POOL_RULES.max }, current);
  if (next.min > next.max) {
    throw invalidConfig('resize.min', `min (${next.min}) would be greater than max (${next.max})`, 'Lower min or raise max so that min <= max.');
  }
  return next;
}

