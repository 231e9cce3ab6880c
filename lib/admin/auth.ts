/**
 * Bearer-token checks for the admin endpoint.
 *
 * The token is compared in constant time: both sides are hashed with SHA-256 first, so the
 * comparison always runs over two 32-byte digests and its duration says nothing about the token's
 * length or about how many leading characters matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

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
