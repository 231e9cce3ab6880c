/**
 * Starts a manager's fleet listener (listener.ts) with the settings its session connects with:
 * `fleet.directConnection` when given (PgBouncer in transaction mode cannot LISTEN), else the
 * manager's `connection`, with the manager's driver defaults.
 */
import type { ClientConfig } from 'pg';
import type { Logger } from 'winston';
import type { ResolvedConfig } from '../options-types';
import type { Clock } from '../pool/clock';
import { driverSettings } from '../driver/pg-pool';
import { FleetListener, type FleetTarget } from './listener';

export function startFleet(config: ResolvedConfig, instance: string, target: FleetTarget, clock: Clock, log: Logger): FleetListener | undefined {
  const fleet = config.fleet;
  if (fleet === undefined) return undefined;
  const connection = fleet.directConnection ?? config.connection;
  const settings = async (): Promise<ClientConfig> => {
    const given = typeof connection === 'function' ? await connection() : connection;
    return driverSettings(given, config) as ClientConfig;
  };
  return new FleetListener(instance, fleet, settings, target, config.retry, clock, log);
}
