/**
 * The shapes of admission: tags, priority classes, the `admission` options and the per-tag
 * statistics. Kept apart from the logic so options, call options, stats and metrics can name them
 * without importing the policy.
 */
export type { TagStats, TagStatsByKey } from '../pool/stats';

/** Labels a caller attaches to its acquires (`{ tenant: 'acme', feature: 'checkout' }`). */
export type Tags = Readonly<Record<string, string>>;

/** A caller's priority class: higher classes are served first. Default `'normal'`. */
export type Priority = 'high' | 'normal' | 'low';

/** A token bucket: `perSecond` tokens added per second, at most `burst` kept. */
export interface RateLimit {
  /** Acquires allowed per second on average (greater than 0). */
  perSecond: number;
  /** Acquires allowed at once after a quiet spell. Default: `perSecond` rounded up (at least 1). */
  burst?: number;
}

/**
 * Fair, multi-tenant admission (docs/admission.md). Every rule is optional; with `admission` left
 * out the pool serves callers strictly first come, first served and records no tags.
 */
export interface AdmissionOptions {
  /**
   * Tag keys counted in `stats.tags` and `/metrics`. Default: the keys named by `fairShare`,
   * `quotas` and `rateLimits`. Each must be a metric label name (`[A-Za-z_][A-Za-z0-9_]*`).
   */
  tagKeys?: string[];
  /** Values counted per key; the rest count under `"(other)"`. Default 100. */
  maxTagValues?: number;
  /** A class is promoted one step for every this many milliseconds its oldest waiter has waited. `0` disables. Default 1000. */
  priorityAgingMs?: number;
  /** Per tag key, the most connections held at once per value (`default` for values not listed). */
  quotas?: Record<string, Record<string, number>>;
  /** A tag key: freed connections go to the value of this key holding the fewest connections. */
  fairShare?: string;
  /** Per tag key, a token bucket per value (`default` for values not listed). */
  rateLimits?: Record<string, Record<string, RateLimit>>;
}

/** `admission` after validation, defaults filled in. */
export interface ResolvedAdmissionOptions {
  tagKeys: readonly string[];
  maxTagValues: number;
  priorityAgingMs: number;
  quotas: Readonly<Record<string, Readonly<Record<string, number>>>>;
  fairShare: string | undefined;
  rateLimits: Readonly<Record<string, Readonly<Record<string, Readonly<Required<RateLimit>>>>>>;
}

/** The bucket a value beyond `maxTagValues` is counted under. */
export const OTHER_VALUE = '(other)';
