/**
 * The option types: what a configuration may contain (TSDoc: unit, default, interactions) and
 * what it becomes after validation. docs/options.md documents each option; `resolveOptions()` in
 * options.ts checks them.
 */
import type { PgBouncerMode, ResolvedStatementCacheOptions, StatementCacheOptions } from './statement-cache/options';
import type { Knex } from 'knex';
import type { QueryResult } from 'pg';
import type { Logger } from 'winston';
import type { AdmissionOptions, ResolvedAdmissionOptions } from './admission/types';

/** A PostgreSQL connection string, or a knex/pg connection object. */
export type StaticConnection = string | Knex.PgConnectionConfig;

/**
 * What a connection function returns: the settings, optionally with knex's `expirationChecker`
 * (called before each later open; once it returns true the function is called again).
 */
export type ProvidedConnection = StaticConnection | (Knex.PgConnectionConfig & { expirationChecker?: () => boolean });

/**
 * A function returning the connection settings, sync or async, as knex accepts. It is called for
 * the first connection, and again whenever the `expirationChecker` it returned says they expired
 * (without one, its first result is kept). For rotating credentials (IAM tokens, Vault leases).
 */
export type ConnectionProvider = () => ProvidedConnection | Promise<ProvidedConnection>;

/** The new session as `pool.afterCreate` sees it: only `query`, and only while the hook runs. */
export interface SessionSetupConnection {
  /** Runs `sql` on the new session, with `$1`-style placeholders. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, bindings?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** The session set-up hook: runs on every new connection before anyone can use it. */
export type SessionSetupHook = (connection: SessionSetupConnection) => Promise<void> | void;

/**
 * A custom health check (`pool.validate`): true when the connection is fit to use. It replaces
 * `SELECT 1` for validation on borrow, keepalive pings and `isConnectionValid()`, bounded by
 * `pool.validationTimeoutMs`; a throw, a timeout or anything but `true` counts as invalid.
 */
export type ValidationHook = (connection: SessionSetupConnection) => Promise<boolean> | boolean;

/** Log levels understood by the built-in logger (winston's npm levels). */
export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

/** Pool sizing and timing. Every time is in milliseconds; `0` disables the timed features that say so. */
export interface PoolOptions {
  /** Connections kept open at all times; `ready()` resolves once this many are open. Default 2. */
  min?: number;
  /** Hard upper bound on open connections, counting those being opened or closed. Default 10. */
  max?: number;
  /**
   * Idle connections kept ready beyond those in use (opened as soon as fewer are idle), up to
   * `max`; the idle timeout never closes these. Default 0.
   */
  minIdle?: number;
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
  /**
   * Session set-up (`SET search_path`, `SET ROLE`, …) run on every new connection before anyone
   * sees it, within `createTimeoutMs`. A throw fails the open (retried like any failed open, counted
   * in `createErrors`) and the connection is closed. Default: none.
   */
  afterCreate?: SessionSetupHook;
  /** A custom health check replacing `SELECT 1` (see {@link ValidationHook}). Default: none. */
  validate?: ValidationHook;
}

/**
 * The circuit breaker of each pool (primary and each replica): see docs/resilience.md. After
 * `failureThreshold` consecutive failed connection attempts with no connection open, acquires that
 * no idle connection can serve fail at once with `E_DB_UNAVAILABLE`, and one probe open runs per
 * `openMs` (growing with backoff) until one succeeds.
 */
export interface CircuitBreakerOptions {
  /** Consecutive failed connection attempts (each retry counts), with none open, that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Delay before the first probe once the circuit is open; doubles after each failed probe, up to `retry.maxDelayMs` × 10. Default 1000. */
  openMs?: number;
}

/** Circuit breaker options with every default filled in. */
export type ResolvedCircuitBreakerOptions = Required<CircuitBreakerOptions>;

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
  /** Its connection string or pg connection object, or a function returning one (see {@link ConnectionProvider}). */
  connection: StaticConnection | ConnectionProvider;
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
  /**
   * Functions that write although a call of them reads like a read: a statement calling one runs on
   * the primary. `name` (any schema) or `schema.name`, unquoted parts folded to lower case, quoted
   * parts as written (`'"MyFunc"'`). Default `[]`. See docs/routing.md.
   */
  primaryFunctions?: string[];
  /** Tables and views whose reading writes (a view over a writing function); same forms. Default `[]`. */
  primaryRelations?: string[];
  /**
   * Remember the functions (or relations) of a statement a replica refused with `25006`, so the next
   * one runs on the primary without the refused round trip. Default true.
   */
  learnFromReadOnlyErrors?: boolean;
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
export type KnexPassthroughOptions = Omit<Knex.Config, 'client' | 'connection' | 'pool' | 'connectionPool' | 'acquireConnectionTimeout'>;

/** Configuration of {@link getConnectionInstance}. */
export interface ConnectionManagerConfig {
  /**
   * A PostgreSQL connection string, a knex/pg connection object, or a function returning one
   * (called as knex calls it; see {@link ConnectionProvider}).
   */
  connection: StaticConnection | ConnectionProvider;
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
  /** The circuit breaker of each pool; `false` turns it off. Default `{ failureThreshold: 5, openMs: 1000 }`. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /** Named pools over other databases or roles, by name (`manager.pool(name)`; docs/named-pools.md). */
  pools?: Record<string, NamedPoolConfig>;
  /** Makes a pool for a name not in `pools` on its first `manager.pool(name)`; `undefined` means no such pool. */
  poolFactory?: PoolFactory;
  /** Most pools made by `poolFactory` open at once; the least recently used idle one closes to make room. Default 100. */
  maxPools?: number;
  /** A pool made by `poolFactory` unused for this long is closed and forgotten; 0 never. Default 300000 (5 min). */
  poolIdleTimeoutMs?: number;
  /** One limit on the connections of every pool of the manager together; none when left out. */
  budget?: BudgetOptions;
  /** Fleet-wide triggers: a LISTEN session steered by `kcm fleet` (docs/fleet.md); off when left out. */
  fleet?: FleetOptions;
  /**
   * Per-connection cache of prepared statements (docs/options.md, "Statement cache"); `false` turns
   * it off. Default `{ size: 100 }`, or off with `pgbouncer: 'transaction'`.
   */
  statementCache?: StatementCacheOptions | false;
  /** PgBouncer's pool mode when connecting through PgBouncer; leave it out for a direct connection. */
  pgbouncer?: PgBouncerMode;
  /** Pool metrics through `@opentelemetry/api` (`db.client.connection.*`); a no-op until an SDK is registered. Default true. */
  telemetry?: boolean;
  /** Count and time every statement run on a checked-out connection (docs/observability.md). Default true. */
  queryMetrics?: boolean;
  /** One info line of every pool's counts, waits and counters per this many milliseconds; 0 (default) is off, else at least 1000. */
  logStatsIntervalMs?: number;
  /**
   * The prefix of each session's `application_name`, which becomes `<prefix>:<connection number>`
   * (`manager.inspect()` joins the two views by it). Default: the connection's own
   * `application_name`, else `knex-connection-manager`. 1-46 printable ASCII characters, no ":".
   */
  applicationName?: string;
}

/**
 * One of `pools`: a database (or role) of its own. `pool` options not given are the top level's,
 * except `min` and `minIdle` (0 unless given); retry, knex, admission and circuit breaker settings
 * are the top level's.
 */
export interface NamedPoolConfig {
  connection: StaticConnection | ConnectionProvider;
  pool?: PoolOptions;
  replicas?: ReplicaConfig[];
  routing?: RoutingOptions;
}

/** What `poolFactory` returns for a name it knows: a pool of one database, without replicas. */
export interface PoolFactoryResult {
  connection: StaticConnection | ConnectionProvider;
  pool?: PoolOptions;
}

/** Called once per name (concurrent first uses share the call); `undefined` means the name is unknown (`E_UNKNOWN_POOL`). */
export type PoolFactory = (name: string) => PoolFactoryResult | undefined | Promise<PoolFactoryResult | undefined>;

/** `budget`: the most connections of the whole manager. */
export interface BudgetOptions {
  /** Connections of every pool together (open, being opened or being closed); at least the sum of every static pool's `min`. */
  maxConnections: number;
}

/** `fleet`: one LISTEN session per manager, steered by `kcm fleet` for every instance of `service`. */
export interface FleetOptions {
  /** The service's name, shared by all of its instances: 1-24 letters, digits, `_`, `-` or `.`. */
  service: string;
  /** The PostgreSQL channel to LISTEN on; default `kcm_fleet`. */
  channel?: string;
  /** The shared secret that signs commands and replies: 16-1024 printable characters. */
  token: string;
  /** Where the listening session connects, when not through `connection` (PgBouncer in transaction mode cannot LISTEN). */
  directConnection?: StaticConnection | ConnectionProvider;
}

/** `fleet` after validation. */
export type ResolvedFleetOptions = Required<Omit<FleetOptions, 'directConnection'>> & Pick<FleetOptions, 'directConnection'>;

/** A named pool after validation: the sections every pool has, defaults filled in. */
export interface ResolvedNamedPool {
  connection: StaticConnection | ConnectionProvider;
  pool: ResolvedPoolOptions;
  replicas: Array<Required<ReplicaConfig>>;
  routing: Required<RoutingOptions>;
}

/** The numeric pool options. */
export type PoolLimits = Omit<PoolOptions, 'afterCreate' | 'validate'>;
/** Pool options with every default filled in. */
export type ResolvedPoolOptions = Required<PoolLimits> & { afterCreate?: SessionSetupHook; validate?: ValidationHook };
/** Retry options with every default filled in. */
export type ResolvedRetryOptions = Required<RetryOptions>;

/** A configuration after validation, with defaults filled in. */
export interface ResolvedConfig {
  connection: StaticConnection | ConnectionProvider;
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
  /** `false` when turned off. */
  circuitBreaker: ResolvedCircuitBreakerOptions | false;
  /** Named pools by name; empty when none are configured. */
  pools: Record<string, ResolvedNamedPool>;
  poolFactory?: PoolFactory;
  maxPools: number;
  poolIdleTimeoutMs: number;
  /** Undefined when there is no budget. */
  budget?: Required<BudgetOptions>;
  /** Undefined when the fleet listener is off. */
  fleet?: ResolvedFleetOptions;
  /** `false` when turned off. */
  statementCache: ResolvedStatementCacheOptions | false;
  /** Undefined for a direct connection. */
  pgbouncer?: PgBouncerMode;
  telemetry: boolean;
  queryMetrics: boolean;
  logStatsIntervalMs: number;
  /** Undefined when not given (the connection's own `application_name` or the default is the prefix). */
  applicationName: string | undefined;
}
