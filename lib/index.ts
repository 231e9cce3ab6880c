/**
 * knex-connection-manager: one observable, steerable PostgreSQL connection manager per process.
 * Public exports only.
 */
export { getConnectionInstance, closeConnectionInstance } from './instance';
export { ConnectionManager, type AdminEndpoint, type GetConnectionOptions, type ManagerPoolStats, type PoolHandle, type ReplicaPoolStats,
  type InspectedConnection, type InspectResult, type ServerSession } from './manager';
export { classifyStatement, type StatementClass } from './routing/classify';
export type { PooledConnection, Row } from './driver/pooled-connection';
export type { PoolStats, PoolCounters, WaitStats, ConnectionStats, RoutingStats, LearnedWritesStats, BudgetStats, PoolTotals, StatementCacheStats } from './pool/stats';
export type { PgBouncerMode, StatementCacheOptions, ResolvedStatementCacheOptions } from './statement-cache/options';
export type { AdmissionOptions, Priority, RateLimit, Tags, TagStats, TagStatsByKey } from './admission/types';
export { ConnectionManagerError, isConnectionManagerError, type ErrorCode } from './errors';
export {
  resolveOptions,
  configFromEnvironment,
  DEFAULT_POOL_OPTIONS,
  DEFAULT_RETRY_OPTIONS,
  DEFAULT_ROUTING_OPTIONS,
  ENVIRONMENT_VARIABLES,
  type ConnectionManagerConfig,
  type PoolOptions,
  type RetryOptions,
  type ReplicaConfig,
  type RoutingOptions,
  type RoutingStrategy,
  type AdminOptions,
  type ResolvedAdminOptions,
  type LogLevel,
  type KnexPassthroughOptions,
  type ResolvedConfig,
  type ResolvedPoolOptions,
  type ResolvedRetryOptions,
  type ConnectionProvider,
  type ProvidedConnection,
  type StaticConnection,
  type SessionSetupConnection,
  type SessionSetupHook,
} from './options';
export type { CircuitBreakerOptions, ResolvedCircuitBreakerOptions } from './options';
export type { BudgetOptions, NamedPoolConfig, PoolFactory, PoolFactoryResult, ResolvedNamedPool } from './options';
export type { ResizeOptions } from './options-sections';
export type { CircuitState, CircuitStats } from './resilience/types';
export type { WarmUpOptions } from './resilience/warm-up';
export type { ValidationHook } from './options';
export type { RetryPolicyOptions, TransactionOptions } from './resilience/retry';
