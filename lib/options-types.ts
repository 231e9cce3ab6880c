/**
 * The option types: what a configuration may contain (TSDoc: unit, default, interactions) and
 * what it becomes after validation. docs/options.md documents each option; `resolveOptions()` in
 * options.ts checks them.
 */
import type { Knex } from 'knex';
import type { Logger } from 'winston';
import type { AdmissionOptions, ResolvedAdmissionOptions } from './admission/types';

/** Log levels understood by the built-in logger (winston's npm levels). */
export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

/** Pool sizing and timing. Every time is in milliseconds; `0` disables the timed features that say so. */
export interface PoolOptions {
  /** Connections kept open at all times; `ready()` resolves once this many are open. Default 2. */
  min?: number;
  /** Hard upper bound on open connections, counting those being opened or closed. Default 10. */
  max?: number;
  /** Longest a `getConnection()` may wait overall (queueing, opening, validating). Default 30000. */
  acquireTimeoutMs?: number;
  /** Longest one attempt to open a connection may take (TCP, TLS, auth, session setup). Default 10000. */
  createTimeoutMs?: number;
  /** Idle connections above `min` are closed after this long unused. `0` disables. Default 600000. */
  idleTimeoutMs?: number;
  /** Connections are replaced after this long (minus up to 2.5% jitter). `0` disables. Default 1800000. */
  maxLifetimeMs?: number;
  /** Longest a validation query (`SELECT 1`) may take. Default 5000. */
  validationTimeoutMs?: number;
  /** A connection idle longer than this is validated before it is handed out. `0` disables. Default 10000. */
  validationIdleThresholdMs?: number;
  /** Idle connections are pinged this often to keep them (and NAT/firewall state) alive. `0` disables. Default 120000. */
  keepaliveIntervalMs?: number;
  /** A connection held longer than this is reported as a possible leak. `0` disables. Default 0. */
  leakDetectionThresholdMs?: number;
  /** Most callers allowed to wait at once; more fail fast with `E_QUEUE_FULL`. Default `Infinity`. */
  maxWaiting?: number;
  /** How long `close()` waits for checked-out connections before closing them by force. Default 10000. */
  closeTimeoutMs?: number;
}

/** Retries of a failed connection attempt, with exponential backoff and jitter. */
export interface RetryOptions {
  /** Attempts in total per connection open (1 = no retry). Default 3. */
  attempts?: number;
  /** Delay before the first retry; doubles each time. Default 50. */
  initialDelayMs?: number;
  /** Cap on the delay between attempts (also how long recovery may lag a database restart). Default 500. */
  maxDelayMs?: number;
}

/** A read replica (a hot standby) that read-only work can be routed to. */
export interface ReplicaConfig {
  /** Unique name, used in stats, logs and metrics. */
  name: string;
  /** Its connection string or pg connection object. */
  connection: string | Knex.PgConnectionConfig;
  /** Relative share of reads under the `random` strategy. Default 1. */
  weight?: number;
}

/** How reads are spread over replicas. */
export type RoutingStrategy = 'round-robin' | 'least-busy' | 'random';

/** Read/write splitting. Only used when `replicas` are configured. */
export interface RoutingOptions {
  /** How a replica is picked for a read. Default `'round-robin'`. */
  strategy?: RoutingStrategy;
  /** A replica whose replay lag exceeds this is taken out of rotation. `0` disables. Default 10000. */
  maxReplicaLagMs?: number;
  /** After a write, reads in the same async context go to the primary for this long. `0` disables. Default 1000. */
  readYourWritesMs?: number;
  /** How often each replica's health and lag are checked. Default 1000. */
  healthCheckIntervalMs?: number;
}

/**
 * The admin endpoint (HTTP): stats, Prometheus metrics, the dashboard and the admin triggers, for
 * an operator in another process. Off unless configured. See docs/operations.md.
 */
export interface AdminOptions {
  /** TCP port to listen on; `0` picks a free one (read it from `await manager.adminReady()`). */
  port: number;
  /** Address to listen on. Default `'127.0.0.1'`. Any non-loopback address requires `token`. */
  host?: string;
  /**
   * Bearer token required by every route except the dashboard page (and `/metrics` unless
   * `metricsAuth`). At least 16 characters. Without it the endpoint only listens on loopback.
   */
  token?: string;
  /** Require the token for `/metrics` too. Default false. */
  metricsAuth?: boolean;
}

/** Admin options after validation. */
export interface ResolvedAdminOptions {
  port: number;
  host: string;
  token: string | undefined;
  metricsAuth: boolean;
}

/** Knex options passed through to the `knex` instance (everything but what the manager owns). */
export type KnexPassthroughOptions = Omit<Knex.Config, 'client' | 'connection' | 'pool' | 'connectionPool'>;

/** Configuration of {@link getConnectionInstance}. */
export interface ConnectionManagerConfig {
  /** A PostgreSQL connection string, or a knex/pg connection object. */
  connection: string | Knex.PgConnectionConfig;
  /** Pool sizing and timing. */
  pool?: PoolOptions;
  /** Connect retries. */
  retry?: RetryOptions;
  /** A winston logger to log to, or the level for the built-in one. Default `{ level: 'info' }`. */
  logger?: Logger | { level: LogLevel };
  /** Extra knex options (for example `searchPath`, `debug`, `postProcessResponse`). */
  knex?: KnexPassthroughOptions;
  /** Read replicas; each gets its own pool with the same limits. */
  replicas?: ReplicaConfig[];
  /** Read/write splitting over `replicas`. */
  routing?: RoutingOptions;
  /** The admin HTTP endpoint; off when left out. */
  admin?: AdminOptions;
  /** Fair, multi-tenant admission (tags, priorities, quotas, fair share, rate limits); off when left out. */
  admission?: AdmissionOptions;
}

/** Pool options with every default filled in. */
export type ResolvedPoolOptions = Required<PoolOptions>;
/** Retry options with every default filled in. */
export type ResolvedRetryOptions = Required<RetryOptions>;

/** A configuration after validation, with defaults filled in. */
export interface ResolvedConfig {
  connection: string | Knex.PgConnectionConfig;
  pool: ResolvedPoolOptions;
  retry: ResolvedRetryOptions;
  logger: Logger | { level: LogLevel };
  knex: KnexPassthroughOptions;
  replicas: Array<Required<ReplicaConfig>>;
  routing: Required<RoutingOptions>;
  /** Undefined when the admin endpoint is off. */
  admin?: ResolvedAdminOptions;
  /** Undefined when admission is off. */
  admission?: ResolvedAdmissionOptions;
}
