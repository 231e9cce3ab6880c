/**
 * Who may use the admin endpoint: bearer-token checks, and, without a token, the refusal of
 * browser requests from other sites.
 *
 * The token is compared in constant time: both sides are hashed with SHA-256 first, so the
 * comparison always runs over two 32-byte digests and its duration says nothing about the token's
 * length or about how many leading characters matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import { isLoopbackHost } from '../net';

/** Outcome of checking a request's credentials. */
export type AuthResult = 'ok' | 'missing' | 'wrong';

/** Checks `Authorization: Bearer <token>` headers against one configured token. */
export class TokenChecker {
  private readonly digest: Buffer | undefined;

  /** `token` undefined means the endpoint has no token: every request passes. */
  constructor(token: string | undefined) {
    this.digest = token === undefined ? undefined : sha256(token);
  }

  /** True when a token is configured. */
  get enabled(): boolean {
    return this.digest !== undefined;
  }

  /**
   * `'missing'` when there is no usable `Authorization: Bearer` header (answer 401), `'wrong'` when
   * the token does not match (answer 403), `'ok'` otherwise or when no token is configured.
   */
  check(authorization: string | string[] | undefined): AuthResult {
    if (this.digest === undefined) return 'ok';
    const presented = bearerToken(authorization);
    if (presented === undefined) return 'missing';
    return timingSafeEqual(sha256(presented), this.digest) ? 'ok' : 'wrong';
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(authorization: string | string[] | undefined): string | undefined {
  // Node joins repeated Authorization headers into one value; an array would be a bug upstream.
  if (typeof authorization !== 'string') return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match ? match[1] : undefined;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The host part of a `Host` header (`127.0.0.1:8080` → `127.0.0.1`, `[::1]:80` → `::1`), or
 * undefined when it is missing or malformed.
 */
export function hostOfHostHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+)(?::\d{1,5})?$/.exec(header.trim());
  return match ? match[1].replace(/^\[(.*)\]$/, '$1') : undefined;
}

/**
 * Why a request to a tokenless endpoint looks like a browser request from another site, or
 * undefined. With a token there is nothing to check: a browser never attaches the token on its
 * own, and a cross-origin page cannot add an Authorization header without a CORS preflight that
 * this endpoint never approves (so a proxy that rewrites Host or adds TLS in front is no problem).
 * Without a token, a page on any site could POST to the loopback endpoint, or read /stats after
 * rebinding a DNS name to 127.0.0.1: so the `Host` must be a loopback name, and a foreign `Origin`
 * or `Sec-Fetch-Site: cross-site` is refused.
 */
export function crossSiteReason(req: http.IncomingMessage, tokenRequired: boolean): string | undefined {
  if (tokenRequired) return undefined;
  const host = req.headers.host;
  const name = hostOfHostHeader(host);
  if (name === undefined || !isLoopbackHost(name)) return 'without admin.token only loopback host names are accepted';
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-site browser requests are not accepted';
  const origin = req.headers.origin;
  if (origin !== undefined && originHost(origin) !== host?.toLowerCase()) return 'requests from another origin are not accepted';
  return undefined;
}

/** `host:port` of an Origin header (`http://127.0.0.1:9187` → `127.0.0.1:9187`), or undefined. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase() || undefined;
  } catch {
    return undefined;
  }
}
