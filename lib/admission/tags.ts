/**
 * Tags: their validation, and the scope (AsyncLocalStorage) that `manager.withTags()` opens so
 * every acquire inside it (knex's included, which passes no options) carries them. The scope is
 * read by the admission policy only, so without `admission` no acquire pays for the read.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { invalidConfig } from '../errors';
import { describe, isPlainObject } from '../options-rules';
import type { Priority, Tags } from './types';

/** Most keys one caller's tags may have. */
export const MAX_TAG_KEYS = 16;
/** Longest tag key, in characters. */
export const MAX_TAG_KEY_LENGTH = 64;
/** Longest tag value, in characters. */
export const MAX_TAG_VALUE_LENGTH = 128;

const scope = new AsyncLocalStorage<Tags>();

/**
 * Checks `value` as tags: a plain object of at most `MAX_TAG_KEYS` string keys (1 to 64
 * characters) to string values (at most 128 characters).
 * @returns a frozen copy, so a caller changing its object later cannot change a held record's tags.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` naming the tag and the fix.
 */
export function checkTags(value: unknown, where: string): Tags {
  if (!isPlainObject(value)) {
    throw invalidConfig(where, `expected an object of string tags, got ${describe(value)}`, 'Pass tags such as { tenant: "acme" }, or leave it out.');
  }
  const keys = Object.keys(value);
  if (keys.length > MAX_TAG_KEYS) {
    throw invalidConfig(where, `${keys.length} tags, more than ${MAX_TAG_KEYS}`, `Pass at most ${MAX_TAG_KEYS} tags; put fine detail in your logs, not in tags.`);
  }
  const copy: Record<string, string> = {};
  for (const key of keys) {
    const tag = value[key];
    if (key.length === 0 || key.length > MAX_TAG_KEY_LENGTH) {
      throw invalidConfig(`${where}.${key}`, `a tag key must have 1 to ${MAX_TAG_KEY_LENGTH} characters`, 'Use a short key such as "tenant".');
    }
    if (typeof tag !== 'string' || tag.length > MAX_TAG_VALUE_LENGTH) {
      throw invalidConfig(`${where}.${key}`, `expected a string of at most ${MAX_TAG_VALUE_LENGTH} characters, got ${describe(tag)}`, 'Pass the value as a short string, e.g. String(tenantId).');
    }
    copy[key] = tag;
  }
  return Object.freeze(copy);
}

/**
 * Checks a per-call `priority`.
 * @throws ConnectionManagerError `E_INVALID_CONFIG`.
 */
export function checkPriority(value: unknown): Priority {
  if (value !== 'high' && value !== 'normal' && value !== 'low') {
    throw invalidConfig('priority', `expected "high", "normal" or "low", got ${describe(value)}`, 'Pass priority: "high" for latency-critical work, "low" for batch work, or leave it out.');
  }
  return value;
}

/** The tags of the innermost `withTags()` scope around the current call, if any. */
export function scopedTags(): Tags | undefined {
  return scope.getStore();
}

/** Runs `fn` in a scope whose tags are the enclosing scope's with `tags` merged over them. */
export function runWithTags<T>(tags: Tags, fn: () => T): T {
  const outer = scope.getStore();
  return scope.run(outer === undefined ? tags : Object.freeze({ ...outer, ...tags }), fn);
}

/** A caller's tags: the scope's with the explicit ones merged over them (no copy when only one is there). */
export function effectiveTags(explicit: Tags | undefined): Tags | undefined {
  const scoped = scope.getStore();
  if (explicit === undefined) return scoped;
  return scoped === undefined ? explicit : { ...scoped, ...explicit };
}

/** `tenant=acme, feature=checkout`. */
export function formatTags(tags: Tags): string {
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(', ');
}
