/**
 * `resolveOptions()`, which validates a user's configuration up front: unknown keys and bad values
 * are refused with `E_INVALID_CONFIG` naming the option and the fix. The types live in
 * options-types.ts, the defaults in options-defaults.ts, the shared checks in options-rules.ts, the
 * connection checks in options-connection.ts and the environment in options-env.ts; all are
 * exported from here. docs/options.md documents every option (unit, default, interactions) — keep
 * the two in step.
 */
import type { Logger } from 'winston';
import type {
  ConnectionProvider,
  KnexPassthroughOptions,
  LogLevel,
  PoolLimits,
  ReplicaConfig,
  ResolvedAdminOptions,
  ResolvedConfig,
  ResolvedPoolOptions,
  RetryOptions,
  RoutingOptions,
  RoutingStrategy,
  SessionSetupHook,
  StaticConnection,
  ValidationHook,
} from './options-types';
import { exposureError } from './net';
import { invalidConfig } from './errors';
import { resolveConnection } from './options-connection';
import { resolveAdmission } from './options-admission';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys, type NumberRule } from './options-rules';
import { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS, DEFAULT_ROUTING_OPTIONS } from './options-defaults';
import { compileRoutingRules } from './routing/write-list';
import { resolveCircuitBreaker } from './resilience/options';
import { resolvePgBouncer, resolveStatementCache } from './statement-cache/options';

export { configFromEnvironment, ENVIRONMENT_VARIABLES } from './options-env';
export { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS, DEFAULT_ROUTING_OPTIONS } from './options-defaults';

export type {
  AdminOptions,
  CircuitBreakerOptions,
  ResolvedCircuitBreakerOptions,
  ConnectionManagerConfig,
  ConnectionProvider,
  ProvidedConnection,
  SessionSetupConnection,
  SessionSetupHook,
  StaticConnection,
  ValidationHook,
  KnexPassthroughOptions,
  LogLevel,
  PoolOptions,
  ReplicaConfig,
  ResolvedAdminOptions,
  ResolvedConfig,
  ResolvedPoolOptions,
  ResolvedRetryOptions,
  RetryOptions,
  RoutingOptions,
  RoutingStrategy,
} from './options-types';

const TOP_LEVEL_KEYS = ['connection', 'pool', 'retry', 'logger', 'knex', 'replicas', 'routing', 'admin', 'admission', 'circuitBreaker', 'statementCache', 'pgbouncer'] as const;
const STRATEGIES: readonly RoutingStrategy[] = ['round-robin', 'least-busy', 'random'];
const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** A time in milliseconds of at least `min`. */
const ms = (min: number, zeroDisables = false): NumberRule => ({ min, integer: false, kind: 'ms', zeroDisables, unit: 'milliseconds' });

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

const RETRY_RULES: Record<keyof RetryOptions, NumberRule> = {
  attempts: { min: 1, integer: true, kind: 'count', unit: 'attempts in total' },
  initialDelayMs: ms(0),
  maxDelayMs: ms(0),
};

function resolveNumbers<T extends object>(
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

function isWinstonLogger(value: unknown): value is Logger {
  return isPlainObjectOrInstance(value) && typeof (value as { log?: unknown }).log === 'function' &&
    typeof (value as { info?: unknown }).info === 'function' && typeof (value as { child?: unknown }).child === 'function';
}

function isPlainObjectOrInstance(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/**
 * Validates a user configuration and fills in the defaults.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` naming the offending option and the fix.
 */
export function resolveOptions(config: unknown): ResolvedConfig {
  if (!isPlainObject(config)) {
    throw invalidConfig('config', `expected an object, got ${describe(config)}`, 'Pass { connection, pool?, retry?, logger?, knex? }.');
  }
  rejectUnknownKeys('', config, TOP_LEVEL_KEYS);
  const connection = resolveConnectionOrProvider(config.connection, 'connection');
  const pool = resolvePool(config.pool);
  if (pool.min > pool.max) {
    throw invalidConfig('pool.min', `min (${pool.min}) is greater than max (${pool.max})`, 'Lower pool.min or raise pool.max so that min <= max.');
  }
  if (pool.minIdle > pool.max) {
    throw invalidConfig('pool.minIdle', `minIdle (${pool.minIdle}) is greater than max (${pool.max})`, 'Lower pool.minIdle or raise pool.max so that minIdle <= max.');
  }
  const retry = resolveNumbers<RetryOptions>('retry', config.retry, RETRY_RULES, DEFAULT_RETRY_OPTIONS);
  if (retry.initialDelayMs > retry.maxDelayMs) {
    throw invalidConfig('retry.initialDelayMs', `initialDelayMs (${retry.initialDelayMs}) is greater than maxDelayMs (${retry.maxDelayMs})`, 'Lower retry.initialDelayMs or raise retry.maxDelayMs.');
  }
  const logger = resolveLogger(config.logger);
  let knexOptions: KnexPassthroughOptions = {};
  if (config.knex !== undefined) {
    if (!isPlainObject(config.knex)) {
      throw invalidConfig('knex', `expected an object, got ${describe(config.knex)}`, 'Pass knex options such as { searchPath: ["app"] } or leave it out.');
    }
    for (const owned of ['client', 'connection', 'connectionPool']) {
      if (owned in config.knex) {
        throw invalidConfig(`knex.${owned}`, 'the manager owns this knex option', `Remove knex.${owned}; use the top-level "connection" and "pool" options instead.`);
      }
    }
    refuseKnexPoolOptions(config.knex);
    knexOptions = config.knex as KnexPassthroughOptions;
  }
  const replicas = resolveReplicas(config.replicas);
  const routing = resolveRouting(config.routing);
  const admin = resolveAdmin(config.admin);
  const admission = resolveAdmission(config.admission);
  const circuitBreaker = resolveCircuitBreaker(config.circuitBreaker);
  const pgbouncer = resolvePgBouncer(config.pgbouncer);
  const statementCache = resolveStatementCache(config.statementCache, pgbouncer);
  return { connection, pool, retry, logger, knex: knexOptions, replicas, routing, admin, admission, circuitBreaker, statementCache, ...(pgbouncer === undefined ? {} : { pgbouncer }) };
}

function resolveAdmin(value: unknown): ResolvedAdminOptions | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw invalidConfig('admin', `expected an object, got ${describe(value)}`, 'Pass admin: { port, host?, token?, metricsAuth? }, or leave it out to keep the endpoint off.');
  rejectUnknownKeys('admin', value, ['port', 'host', 'token', 'metricsAuth']);
  if (value.port === undefined) throw invalidConfig('admin.port', 'it is missing', 'Set admin.port to a free TCP port, or 0 to pick one.');
  const port = checkNumber('admin.port', value.port, { min: 0, max: 65535, integer: true, kind: 'count', unit: 'TCP port, 0 picks a free one' });
  let host = '127.0.0.1';
  if (value.host !== undefined) {
    if (typeof value.host !== 'string' || value.host.trim() === '' || /\s/.test(value.host.trim())) {
      throw invalidConfig('admin.host', `expected a host name or address, got ${describe(value.host)}`, 'Set admin.host to an address such as "127.0.0.1", or leave it out.');
    }
    host = value.host.trim();
  }
  let token: string | undefined;
  if (value.token !== undefined) {
    if (typeof value.token !== 'string' || !/^[\x21-\x7e]{16,1024}$/.test(value.token)) {
      throw invalidConfig(
        'admin.token',
        typeof value.token === 'string' ? `expected 16 to 1024 printable characters without spaces, got ${value.token.length} character(s)` : `expected a string, got ${describe(value.token)}`,
        'Set admin.token to a long random secret, e.g. the output of: node -e "console.log(require(\'crypto\').randomBytes(24).toString(\'base64url\'))".',
      );
    }
    token = value.token;
  }
  const exposed = exposureError(host, token);
  if (exposed) throw exposed;
  if (value.metricsAuth !== undefined && typeof value.metricsAuth !== 'boolean') {
    throw invalidConfig('admin.metricsAuth', `expected true or false, got ${describe(value.metricsAuth)}`, 'Set admin.metricsAuth to true to require the token for /metrics, or leave it out.');
  }
  return { port, host, token, metricsAuth: value.metricsAuth === true };
}

function resolveReplicas(value: unknown): Array<Required<ReplicaConfig>> {
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

function resolveRouting(value: unknown): Required<RoutingOptions> {
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

function resolveLogger(value: unknown): Logger | { level: LogLevel } {
  if (value === undefined) return { level: 'info' };
  if (isWinstonLogger(value)) return value;
  if (isPlainObject(value)) {
    rejectUnknownKeys('logger', value, ['level']);
    if (typeof value.level === 'string' && (LOG_LEVELS as readonly string[]).includes(value.level)) {
      return { level: value.level as LogLevel };
    }
    throw invalidConfig('logger.level', `expected one of ${LOG_LEVELS.join(', ')}, got ${describe(value.level)}`, 'Set logger.level to a winston level such as "info".');
  }
  throw invalidConfig('logger', `expected a winston logger or { level }, got ${describe(value)}`, 'Pass a logger created by winston.createLogger(), or { level: "info" }.');
}

/** A static connection setting (checked now), or a function returning one (checked at each call). */
function resolveConnectionOrProvider(value: unknown, at: string): StaticConnection | ConnectionProvider {
  if (typeof value === 'function') return value as ConnectionProvider;
  return resolveConnection(value, at);
}

/** knex's pool and timeout options, each with the manager option that does its job. */
const KNEX_POOL_EQUIVALENTS: Readonly<Record<string, string>> = {
  min: 'pool.min',
  max: 'pool.max',
  acquireTimeoutMillis: 'pool.acquireTimeoutMs',
  createTimeoutMillis: 'pool.createTimeoutMs',
  idleTimeoutMillis: 'pool.idleTimeoutMs',
  maxConnectionLifetimeMillis: 'pool.maxLifetimeMs',
  afterCreate: 'pool.afterCreate (async (conn) => { await conn.query(...) }; see docs/knex.md)',
  createRetryIntervalMillis: 'retry.initialDelayMs',
  propagateCreateError: 'retry.attempts',
};

/**
 * knex options that size or time a pool would be silently ignored (the manager's pool serves
 * knex): refused, naming the manager option to use instead.
 */
function refuseKnexPoolOptions(knex: Record<string, unknown>): void {
  if (knex.acquireConnectionTimeout !== undefined) {
    throw invalidConfig('knex.acquireConnectionTimeout', 'the manager\'s pool serves knex, so knex would ignore it', 'Remove it and set pool.acquireTimeoutMs instead.');
  }
  if (knex.pool === undefined) return;
  const pool = knex.pool;
  const first = isPlainObject(pool) ? Object.keys(pool)[0] : undefined;
  const instead = first === undefined ? undefined : KNEX_POOL_EQUIVALENTS[first];
  throw invalidConfig(
    first === undefined ? 'knex.pool' : `knex.pool.${first}`,
    'the manager owns the pool, so knex would ignore it',
    instead === undefined ? 'Remove knex.pool and use the top-level "pool" options (docs/options.md).' : `Remove it and set ${instead} instead.`,
  );
}

/** The `pool` section: the numeric options, and the `afterCreate` and `validate` hooks. */
function resolvePool(value: unknown): ResolvedPoolOptions {
  if (!isPlainObject(value) || (value.afterCreate === undefined && value.validate === undefined)) return resolveNumbers<PoolLimits>('pool', value, POOL_RULES, DEFAULT_POOL_OPTIONS);
  const { afterCreate, validate, ...limits } = value;
  const pool: ResolvedPoolOptions = resolveNumbers<PoolLimits>('pool', limits, POOL_RULES, DEFAULT_POOL_OPTIONS);
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
