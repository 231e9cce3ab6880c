/**
 * `resolveOptions()`, which validates a user's configuration up front: unknown keys and bad values
 * are refused with `E_INVALID_CONFIG` naming the option and the fix. The types live in
 * options-types.ts, the defaults in options-defaults.ts, the shared checks in options-rules.ts, the
 * connection checks in options-connection.ts, the sections every pool has in options-sections.ts,
 * named pools in named-pools/options.ts and the environment in options-env.ts; all are
 * exported from here. docs/options.md documents every option (unit, default, interactions) — keep
 * the two in step.
 */
import type { Logger } from 'winston';
import type {
  KnexPassthroughOptions,
  LogLevel,
  ResolvedAdminOptions,
  ResolvedConfig,
  RetryOptions,
} from './options-types';
import { exposureError } from './net';
import { invalidConfig } from './errors';
import { ms, resolveConnectionOrProvider, resolveNumbers, resolvePool, resolveReplicas, resolveRouting } from './options-sections';
import { resolveAdmission } from './options-admission';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys, type NumberRule } from './options-rules';
import { DEFAULT_RETRY_OPTIONS } from './options-defaults';
import { resolveCircuitBreaker } from './resilience/options';
import { checkMinimumsFit, resolveNamedPools } from './named-pools/options';
import { resolveFleet } from './fleet/options';
import { resolvePgBouncer, resolveStatementCache } from './statement-cache/options';
import { resolveObservability } from './options-observability';

export { configFromEnvironment, ENVIRONMENT_VARIABLES } from './options-env';
export { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS, DEFAULT_ROUTING_OPTIONS } from './options-defaults';

export type {
  AdminOptions,
  BudgetOptions,
  FleetOptions,
  NamedPoolConfig,
  ResolvedNamedPool,
  PoolFactory,
  PoolFactoryResult,
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

const TOP_LEVEL_KEYS = [
  'connection', 'pool', 'retry', 'logger', 'knex', 'replicas', 'routing', 'admin', 'admission', 'circuitBreaker',
  'pools', 'poolFactory', 'maxPools', 'poolIdleTimeoutMs', 'budget', 'statementCache', 'pgbouncer', 'fleet',
  'telemetry', 'queryMetrics', 'logStatsIntervalMs', 'applicationName',
] as const;
const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

const RETRY_RULES: Record<keyof RetryOptions, NumberRule> = {
  attempts: { min: 1, integer: true, kind: 'count', unit: 'attempts in total' },
  initialDelayMs: ms(0),
  maxDelayMs: ms(0),
};

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
  const resolved: ResolvedConfig = {
    connection, pool, retry, logger, knex: knexOptions, replicas, routing, admin, admission, circuitBreaker, statementCache,
    ...(pgbouncer === undefined ? {} : { pgbouncer }), ...resolveNamedPools(config, pool), ...fleetOf(config.fleet), ...resolveObservability(config),
  };
  checkMinimumsFit(resolved);
  return resolved;
}

/** `{ fleet }` when configured, else nothing (so configurations without it compare equal). */
function fleetOf(value: unknown): { fleet?: ResolvedConfig['fleet'] } {
  const fleet = resolveFleet(value);
  return fleet === undefined ? {} : { fleet };
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

