/**
 * The defaults of every option with one, documented in docs/options.md (keep the two in step).
 * Exported from options.ts, which fills in what a configuration leaves out from these.
 */
import type { ResolvedPoolOptions, ResolvedRetryOptions, RoutingOptions } from './options-types';

/** The defaults, documented in docs/options.md. */
export const DEFAULT_POOL_OPTIONS: Readonly<ResolvedPoolOptions> = Object.freeze({
  min: 2,
  max: 10,
  minIdle: 0,
  acquireTimeoutMs: 30_000,
  createTimeoutMs: 10_000,
  idleTimeoutMs: 600_000,
  maxLifetimeMs: 1_800_000,
  validationTimeoutMs: 5_000,
  validationIdleThresholdMs: 10_000,
  keepaliveIntervalMs: 120_000,
  leakDetectionThresholdMs: 0,
  maxWaiting: Number.POSITIVE_INFINITY,
  closeTimeoutMs: 10_000,
});

export const DEFAULT_RETRY_OPTIONS: Readonly<ResolvedRetryOptions> = Object.freeze({
  attempts: 3,
  initialDelayMs: 50,
  maxDelayMs: 500,
});

export const DEFAULT_ROUTING_OPTIONS: Readonly<Required<RoutingOptions>> = Object.freeze({
  strategy: 'round-robin',
  maxReplicaLagMs: 10_000,
  readYourWritesMs: 1_000,
  healthCheckIntervalMs: 1_000,
  primaryFunctions: [],
  primaryRelations: [],
  learnFromReadOnlyErrors: true,
});
