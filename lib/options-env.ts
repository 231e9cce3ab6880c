/**
 * Configuration from the environment: `DATABASE_URL` and the documented `KCM_*` variables, for
 * `getConnectionInstance()` called without a config. The values are validated by `resolveOptions()`.
 */
import { invalidConfig } from './errors';
import type { ConnectionManagerConfig, LogLevel } from './options-types';

/** The `KCM_*` environment variables read when `getConnectionInstance()` is called without config. */
export const ENVIRONMENT_VARIABLES = {
  KCM_POOL_MIN: 'pool.min',
  KCM_POOL_MAX: 'pool.max',
  KCM_ACQUIRE_TIMEOUT_MS: 'pool.acquireTimeoutMs',
  KCM_CREATE_TIMEOUT_MS: 'pool.createTimeoutMs',
  KCM_IDLE_TIMEOUT_MS: 'pool.idleTimeoutMs',
  KCM_MAX_LIFETIME_MS: 'pool.maxLifetimeMs',
  KCM_VALIDATION_TIMEOUT_MS: 'pool.validationTimeoutMs',
  KCM_VALIDATION_IDLE_THRESHOLD_MS: 'pool.validationIdleThresholdMs',
  KCM_KEEPALIVE_INTERVAL_MS: 'pool.keepaliveIntervalMs',
  KCM_LEAK_DETECTION_THRESHOLD_MS: 'pool.leakDetectionThresholdMs',
  KCM_MAX_WAITING: 'pool.maxWaiting',
  KCM_CLOSE_TIMEOUT_MS: 'pool.closeTimeoutMs',
  KCM_RETRY_ATTEMPTS: 'retry.attempts',
  KCM_RETRY_INITIAL_DELAY_MS: 'retry.initialDelayMs',
  KCM_RETRY_MAX_DELAY_MS: 'retry.maxDelayMs',
} as const;

/**
 * Builds a configuration from the environment: `DATABASE_URL` and the documented `KCM_*` variables
 * (see {@link ENVIRONMENT_VARIABLES} and docs/options.md). Values are validated by `resolveOptions()`.
 */
export function configFromEnvironment(env: NodeJS.ProcessEnv = process.env): ConnectionManagerConfig {
  const url = env.DATABASE_URL;
  if (url === undefined || url.trim() === '') {
    throw invalidConfig('connection', 'no configuration was given and DATABASE_URL is not set', 'Pass a config to getConnectionInstance({ connection }) or set DATABASE_URL.');
  }
  const pool: Record<string, number> = {};
  const retry: Record<string, number> = {};
  for (const [variable, path] of Object.entries(ENVIRONMENT_VARIABLES)) {
    const raw = env[variable];
    if (raw === undefined || raw.trim() === '') continue;
    const value = raw.trim() === 'Infinity' ? Number.POSITIVE_INFINITY : Number(raw);
    if (Number.isNaN(value)) {
      throw invalidConfig(path, `environment variable ${variable} is not a number (${JSON.stringify(raw)})`, `Set ${variable} to a number, or unset it.`);
    }
    const [section, key] = path.split('.') as [string, string];
    (section === 'pool' ? pool : retry)[key] = value;
  }
  const config: ConnectionManagerConfig = { connection: url, pool, retry };
  const level = env.KCM_LOG_LEVEL;
  if (level !== undefined && level.trim() !== '') config.logger = { level: level.trim() as LogLevel };
  return config;
}
