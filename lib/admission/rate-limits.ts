/**
 * Token buckets per tag value, on the pool's clock (so fake-clock testable). A bucket refills
 * lazily when it is read: no timers. The number of buckets is bounded (`MAX_BUCKETS`): past it,
 * buckets that have refilled to full (indistinguishable from new ones) are dropped, and if none
 * has, the oldest.
 */
import { ConnectionManagerError } from '../errors';
import type { Clock } from '../pool/clock';
import type { RateLimit, ResolvedAdmissionOptions, Tags } from './types';

/** Most buckets kept at once. */
export const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  atMono: number;
  readonly limit: Readonly<Required<RateLimit>>;
}

/** Why an acquire was refused: which tag, its limit, and when its next token is free. */
export interface RateRefusal {
  key: string;
  value: string;
  limit: Readonly<Required<RateLimit>>;
  /** Milliseconds until the bucket has a token again. */
  retryInMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly keys: readonly string[];

  constructor(
    private readonly limits: ResolvedAdmissionOptions['rateLimits'],
    private readonly clock: Clock,
  ) {
    this.keys = Object.keys(limits);
  }

  /**
   * Takes one token from the bucket of each rate-limited tag in `tags`, or none when any bucket is
   * empty (then that bucket's refusal is returned). O(rate-limited keys).
   */
  take(tags: Tags): RateRefusal | undefined {
    const now = this.clock.now();
    let taken: Bucket[] | undefined;
    for (const key of this.keys) {
      const value = tags[key];
      if (value === undefined) continue;
      const bucket = this.bucket(key, value, now);
      if (bucket === undefined) continue;
      if (bucket.tokens < 1) {
        const retryInMs = Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / bucket.limit.perSecond));
        return { key, value, limit: bucket.limit, retryInMs };
      }
      (taken ??= []).push(bucket);
    }
    // Taken only once every bucket had one: a refusal must not spend another key's token.
    if (taken !== undefined) for (const bucket of taken) bucket.tokens -= 1;
    return undefined;
  }

  /** The refilled bucket of `key=value`, made on first use; undefined when the value has no limit. */
  private bucket(key: string, value: string, now: number): Bucket | undefined {
    const id = `${key}\u0000${value}`;
    let bucket = this.buckets.get(id);
    if (bucket === undefined) {
      const byValue = this.limits[key];
      const limit = byValue[value] ?? byValue.default;
      if (limit === undefined) return undefined;
      if (this.buckets.size >= MAX_BUCKETS) this.shed(now);
      bucket = { tokens: limit.burst, atMono: now, limit };
      this.buckets.set(id, bucket);
      return bucket;
    }
    const elapsed = now - bucket.atMono;
    if (elapsed > 0) {
      bucket.tokens = Math.min(bucket.limit.burst, bucket.tokens + (elapsed * bucket.limit.perSecond) / 1000);
      bucket.atMono = now;
    }
    return bucket;
  }

  /** Drops full buckets (a new one starts full anyway), else the oldest. O(buckets), once per MAX_BUCKETS/2 new values at most. */
  private shed(now: number): void {
    for (const [id, b] of this.buckets) {
      if (b.tokens + ((now - b.atMono) * b.limit.perSecond) / 1000 >= b.limit.burst) this.buckets.delete(id);
    }
    for (const id of this.buckets.keys()) {
      if (this.buckets.size < MAX_BUCKETS / 2) break;
      this.buckets.delete(id);
    }
  }
}

/** `E_RATE_LIMITED` for a refusal. */
export function rateLimitedError(refusal: RateRefusal): ConnectionManagerError {
  const { key, value, limit, retryInMs } = refusal;
  return new ConnectionManagerError(
    'E_RATE_LIMITED',
    `Rate limited: ${key}=${value} is over its limit of ${limit.perSecond} acquires per second (burst ${limit.burst}, admission.rateLimits.${key}); ` +
      `the next token is free in ${retryInMs} ms. Retry after that, spread the work out, or raise the limit.`,
  );
}
