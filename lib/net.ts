/**
 * The one rule for network exposure: which hosts only this machine can reach, and the refusal to
 * listen anywhere else without a token. Option resolution and the admin endpoint both apply it, so
 * a configuration that passes one is never refused by the other.
 */
import { isIP } from 'node:net';
import { invalidConfig, type ConnectionManagerError } from './errors';

/**
 * True for hosts that only this machine can reach: `localhost` (and `*.localhost`), 127.0.0.0/8,
 * `::1` (and its IPv4-mapped form `::ffff:127.x.y.z`), with or without brackets. `0.0.0.0`, `::`
 * and every other address or name are reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1].startsWith('127.');
  }
  return false;
}

/**
 * The `E_INVALID_CONFIG` error for an endpoint that would listen on `host` without a token when
 * other machines can reach `host`, or undefined when that is allowed (a token is set, or the host
 * is loopback).
 */
export function exposureError(host: string, token: string | undefined): ConnectionManagerError | undefined {
  if (token !== undefined || isLoopbackHost(host)) return undefined;
  return invalidConfig(
    'admin.token',
    `the admin endpoint would listen on ${host}, which other machines can reach, without a token`,
    'Set admin.token to a long random secret, or listen on 127.0.0.1.',
  );
}
