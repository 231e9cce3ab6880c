/**
 * With `fleet` configured, the application_name prefix of every session of the manager carries the
 * instance, so `kcm fleet` can tell the instances apart from pg_stat_activity alone: sessions are
 * named `<prefix>@<instance>:<N>` (lib/observability adds `:<N>`), the prefix being `applicationName`
 * when given, else the connection's own `application_name`, else the service. Cut to PostgreSQL's
 * limit with room for `:<N>` (the observability options allow a 46-character prefix).
 */
import type { ResolvedConfig } from '../options-types';

const MAX_PREFIX = 46;

/** `config` with the fleet's session prefix as its `applicationName`; `config` itself without `fleet`. */
export function withFleetNames(config: ResolvedConfig, instance: string): ResolvedConfig {
  if (config.fleet === undefined) return config;
  const own = typeof config.connection === 'object' ? config.connection.application_name : undefined;
  const base = config.applicationName ?? (typeof own === 'string' && own !== '' ? own : config.fleet.service);
  const room = Math.max(1, MAX_PREFIX - 1 - instance.length);
  return { ...config, applicationName: `${base.slice(0, room)}@${instance}` };
}
