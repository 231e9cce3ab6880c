/**
 * Validation of `admission.*` (docs/admission.md, docs/options.md): every key checked up front,
 * with `E_INVALID_CONFIG` naming the option and the fix.
 */
import type { RateLimit, ResolvedAdmissionOptions } from './admission/types';
import { invalidConfig } from './errors';
import { MAX_TIMER_MS } from './pool/clock';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys } from './options-rules';

const KEYS = ['tagKeys', 'maxTagValues', 'priorityAgingMs', 'quotas', 'fairShare', 'rateLimits'] as const;
/** A tag key counted in metrics becomes a label name: Prometheus's rule. */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Most tag keys counted in the stats. */
const MAX_TAG_KEYS = 16;

/** The defaults, documented in docs/options.md. */
export const DEFAULT_ADMISSION = Object.freeze({ maxTagValues: 100, priorityAgingMs: 1000 });

function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || !LABEL_NAME.test(key) || key === 'pool' || key.startsWith('__')) {
    throw invalidConfig(name, `expected a tag key made of letters, digits and _ (not starting with a digit or "__", at most 64, not "pool": it becomes a metric label), got ${describe(key)}`, 'Use a key such as "tenant".');
  }
  return key;
}

/** `{ key: { value: n, default?: n } }` with each `n` checked by `check`. */
function perValue<T>(name: string, value: unknown, check: (at: string, v: unknown) => T): Record<string, Record<string, T>> {
  if (!isPlainObject(value)) {
    throw invalidConfig(name, `expected an object of tag keys, got ${describe(value)}`, `Pass e.g. ${name}: { tenant: { default: ..., acme: ... } }.`);
  }
  const out: Record<string, Record<string, T>> = {};
  for (const [key, byValue] of Object.entries(value)) {
    checkKey(`${name}.${key}`, key);
    if (!isPlainObject(byValue)) {
      throw invalidConfig(`${name}.${key}`, `expected an object of tag values (and "default"), got ${describe(byValue)}`, `Pass e.g. { default: ..., acme: ... }.`);
    }
    const values: Record<string, T> = {};
    for (const [v, limit] of Object.entries(byValue)) values[v] = check(`${name}.${key}.${v}`, limit);
    out[key] = values;
  }
  return out;
}

function checkRate(at: string, value: unknown): Readonly<Required<RateLimit>> {
  if (!isPlainObject(value)) {
    throw invalidConfig(at, `expected { perSecond, burst? }, got ${describe(value)}`, 'Pass e.g. { perSecond: 100, burst: 200 }.');
  }
  rejectUnknownKeys(at, value, ['perSecond', 'burst']);
  const perSecond = checkNumber(`${at}.perSecond`, value.perSecond, { min: 0.001, integer: false, kind: 'count', max: 1e9, unit: 'acquires per second' });
  const burst = value.burst === undefined
    ? Math.max(1, Math.ceil(perSecond))
    : checkNumber(`${at}.burst`, value.burst, { min: 1, integer: true, kind: 'count', max: 1e9, unit: 'acquires' });
  return Object.freeze({ perSecond, burst });
}

/**
 * Validates `admission` and fills in the defaults.
 * @returns undefined when `admission` is left out (the pool then serves strictly FIFO).
 * @throws ConnectionManagerError `E_INVALID_CONFIG`.
 */
export function resolveAdmission(value: unknown): ResolvedAdmissionOptions | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw invalidConfig('admission', `expected an object, got ${describe(value)}`, `Pass { ${KEYS.join(', ')} } (each optional), or leave it out.`);
  }
  rejectUnknownKeys('admission', value, KEYS);
  const maxTagValues = value.maxTagValues === undefined
    ? DEFAULT_ADMISSION.maxTagValues
    : checkNumber('admission.maxTagValues', value.maxTagValues, { min: 1, integer: true, kind: 'count', max: 10_000, unit: 'values per tag key' });
  const priorityAgingMs = value.priorityAgingMs === undefined
    ? DEFAULT_ADMISSION.priorityAgingMs
    : checkNumber('admission.priorityAgingMs', value.priorityAgingMs, { min: 0, integer: true, kind: 'ms', zeroDisables: true, max: MAX_TIMER_MS, unit: 'ms' });
  const quotas = value.quotas === undefined ? {} : perValue('admission.quotas', value.quotas, (at, n) =>
    checkNumber(at, n, { min: 1, integer: true, kind: 'count', unit: 'connections held at once' }));
  const rateLimits = value.rateLimits === undefined ? {} : perValue('admission.rateLimits', value.rateLimits, checkRate);
  const fairShare = value.fairShare === undefined ? undefined : checkKey('admission.fairShare', value.fairShare);
  let tagKeys: string[];
  if (value.tagKeys === undefined) {
    tagKeys = [...new Set([...(fairShare === undefined ? [] : [fairShare]), ...Object.keys(quotas), ...Object.keys(rateLimits)])];
  } else {
    if (!Array.isArray(value.tagKeys) || value.tagKeys.length > MAX_TAG_KEYS) {
      throw invalidConfig('admission.tagKeys', `expected an array of at most ${MAX_TAG_KEYS} tag keys, got ${describe(value.tagKeys)}`, 'Pass e.g. tagKeys: ["tenant", "feature"].');
    }
    tagKeys = [...new Set(value.tagKeys.map((k: unknown, i: number) => checkKey(`admission.tagKeys[${i}]`, k)))];
  }
  return Object.freeze({ tagKeys: Object.freeze(tagKeys), maxTagValues, priorityAgingMs, quotas, fairShare, rateLimits });
}
