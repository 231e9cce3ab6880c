/**
 * The observability options (docs/observability.md): OpenTelemetry pool metrics, query metrics,
 * the periodic stats log line and the `application_name` prefix of every session.
 */
import { invalidConfig } from './errors';
import { checkNumber, describe } from './options-rules';

/** What the observability options become after validation. */
export interface ResolvedObservabilityOptions {
  /** Report the pool metrics through `@opentelemetry/api` (a no-op until the app registers an SDK). */
  telemetry: boolean;
  /** Count and time every statement run on a checked-out connection. */
  queryMetrics: boolean;
  /** One info line of every pool's counts per this many ms; 0 = off. */
  logStatsIntervalMs: number;
  /** The prefix of each session's `application_name` (`<prefix>:<N>`), when given; see `sessionPrefix`. */
  applicationName: string | undefined;
}

/** The prefix when neither `applicationName` nor the connection's own `application_name` is given. */
export const DEFAULT_APPLICATION_NAME = 'knex-connection-manager';

/**
 * The longest prefix accepted: PostgreSQL keeps 63 bytes of `application_name`, and `:<N>` needs
 * up to 17 more (N is a safe integer), so the connection number is never cut off.
 */
export const MAX_APPLICATION_NAME = 46;

function checkBoolean(name: string, value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value === 'boolean') return value;
  throw invalidConfig(name, `expected true or false, got ${describe(value)}`, `Set ${name} to false to turn it off, or leave it out (on).`);
}

/** Validates the observability keys of a configuration. */
export function resolveObservability(config: Record<string, unknown>): ResolvedObservabilityOptions {
  const telemetry = checkBoolean('telemetry', config.telemetry);
  const queryMetrics = checkBoolean('queryMetrics', config.queryMetrics);
  const logStatsIntervalMs = config.logStatsIntervalMs === undefined ? 0 : checkNumber('logStatsIntervalMs', config.logStatsIntervalMs, {
    min: 0, integer: true, kind: 'ms', zeroDisables: true, unit: 'milliseconds',
  });
  if (logStatsIntervalMs > 0 && logStatsIntervalMs < 1000) {
    throw invalidConfig('logStatsIntervalMs', `expected 0 (off) or at least 1000, got ${logStatsIntervalMs}`, 'Log the stats at most once a second, e.g. logStatsIntervalMs: 60000.');
  }
  let applicationName: string | undefined;
  if (config.applicationName !== undefined) {
    const value = config.applicationName;
    // Printable ASCII only: the server replaces other bytes with "?", and the prefix would no longer match.
    if (typeof value !== 'string' || !/^[\x20-\x7e]+$/.test(value) || value.length > MAX_APPLICATION_NAME || value.includes(':')) {
      throw invalidConfig(
        'applicationName',
        typeof value === 'string' ? `expected 1 to ${MAX_APPLICATION_NAME} printable ASCII characters without ":", got ${describe(value)}` : `expected a string, got ${describe(value)}`,
        `Set applicationName to a short name such as "orders-api" (at most ${MAX_APPLICATION_NAME} characters), or leave it out.`,
      );
    }
    applicationName = value;
  }
  return { telemetry, queryMetrics, logStatsIntervalMs, applicationName };
}
