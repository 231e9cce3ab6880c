/**
 * The `fleet` option: `{ service, channel?, token, directConnection? }`, checked up front
 * (`E_INVALID_CONFIG` naming the key and the fix). docs/fleet.md and docs/options.md document it.
 */
import { invalidConfig } from '../errors';
import type { ResolvedFleetOptions } from '../options-types';

export type { FleetOptions, ResolvedFleetOptions } from '../options-types';
import { describe, isPlainObject, rejectUnknownKeys } from '../options-rules';
import { resolveConnectionOrProvider } from '../options-sections';

export const DEFAULT_FLEET_CHANNEL = 'kcm_fleet';

export function resolveFleet(value: unknown): ResolvedFleetOptions | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw invalidConfig('fleet', `expected an object, got ${describe(value)}`, 'Pass fleet: { service, token, channel?, directConnection? }, or leave it out.');
  rejectUnknownKeys('fleet', value, ['service', 'channel', 'token', 'directConnection']);
  if (typeof value.service !== 'string' || !/^[A-Za-z0-9_.-]{1,24}$/.test(value.service)) {
    throw invalidConfig('fleet.service', `expected 1-24 letters, digits, "_", "-" or ".", got ${describe(value.service)}`, 'Name the service, the same in every instance, e.g. "orders-api".');
  }
  const channel = value.channel ?? DEFAULT_FLEET_CHANNEL;
  if (typeof channel !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw invalidConfig('fleet.channel', `expected a lower-case identifier of at most 63 characters, got ${describe(channel)}`, 'Use a name such as "kcm_fleet", or leave it out.');
  }
  if (typeof value.token !== 'string' || !/^[\x21-\x7e]{16,1024}$/.test(value.token)) {
    throw invalidConfig(
      'fleet.token',
      typeof value.token === 'string' ? `expected 16 to 1024 printable characters without spaces, got ${value.token.length} character(s)` : `expected a string, got ${describe(value.token)}`,
      'Set fleet.token to a long random secret shared by the instances and kcm (KCM_FLEET_TOKEN).',
    );
  }
  const directConnection = value.directConnection === undefined ? undefined : resolveConnectionOrProvider(value.directConnection, 'fleet.directConnection');
  return { service: value.service, channel, token: value.token, ...(directConnection === undefined ? {} : { directConnection }) };
}
