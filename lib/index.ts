/**
 * knex-connection-manager: one observable, steerable PostgreSQL connection manager per process.
 * Public exports only.
 */
export { getConnectionInstance, closeConnectionInstance } from './instance';
export { ConnectionManager, type GetConnectionOptions } from './manager';
export type { PooledConnection, Row } from './driver/pooled-connection';
export type { PoolStats, PoolCounters, WaitStats, ConnectionStats } from './pool/stats';
export { ConnectionManagerError, isConnectionManagerError, type ErrorCode } from './errors';
export {
  resolveOptions,
  configFromEnvironment,
  DEFAULT_POOL_OPTIONS,
  DEFAULT_RETRY_OPTIONS,
  ENVIRONMENT_VARIABLES,
  type ConnectionManagerConfig,
  type PoolOptions,
  type RetryOptions,
  type LogLevel,
  type KnexPassthroughOptions,
  type ResolvedConfig,
  type ResolvedPoolOptions,
  type ResolvedRetryOptions,
} from './options';
