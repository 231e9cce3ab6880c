/**
 * The checks shared by every option: numbers with a unit, plain objects, unknown keys, and how a
 * bad value is shown in a message. Each rule's message speaks the option's unit (a count, a time,
 * a time where 0 disables), so the fix it suggests is one the option accepts.
 */
import { invalidConfig } from './errors';
import { MAX_TIMER_MS } from './pool/clock';

/** How a numeric option is checked. */
export interface NumberRule {
  /** Smallest allowed value. */
  min: number;
  /** Must be a whole number. */
  integer: boolean;
  /** `Infinity` is allowed (meaning "no limit"). */
  infinite?: boolean;
  /** What the value counts: `'ms'` is a time (bounded by Node's timers), anything else a count. */
  kind: 'ms' | 'count';
  /** For times: `0` turns the feature off. */
  zeroDisables?: boolean;
  /** Largest allowed value (defaults: the longest timer for times, the largest safe integer otherwise). */
  max?: number;
  /** What the value means, for the error message ("connections", "TCP port"). */
  unit: string;
}

/** True for `{ ... }` (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A bad value as a message shows it: strings quoted, objects by their type (never their contents). */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Refuses keys outside `allowed`, naming the known ones. */
export function rejectUnknownKeys(section: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const name = section ? `${section}.${key}` : key;
    throw invalidConfig(name, 'unknown option', `Remove it; the known ${section || 'top-level'} options are: ${allowed.join(', ')}.`);
  }
}

/** What the option accepts, in words: "a whole number from 1 to 100 (connections)". */
function accepted(rule: NumberRule, max: number): string {
  const kind = rule.integer ? 'a whole number' : 'a number';
  const range = rule.kind === 'ms' ? `${kind} of milliseconds from ${rule.min} to ${max}` : `${kind} from ${rule.min} to ${max}`;
  const extras = [rule.zeroDisables ? '0 disables it' : '', rule.infinite ? 'or Infinity for no limit' : ''].filter(Boolean).join(', ');
  return `${range}${rule.kind === 'ms' ? '' : ` (${rule.unit})`}${extras ? `; ${extras}` : ''}`;
}

/** Checks a numeric option against its rule and returns it. */
export function checkNumber(name: string, value: unknown, rule: NumberRule): number {
  const max = rule.max ?? (rule.kind === 'ms' ? MAX_TIMER_MS : Number.MAX_SAFE_INTEGER);
  if (typeof value === 'number' && value === Number.POSITIVE_INFINITY && rule.infinite) return value;
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= rule.min && value <= max && (!rule.integer || Number.isInteger(value));
  if (ok) return value;
  let problem = `expected ${accepted(rule, max)}, got ${describe(value)}`;
  if (typeof value === 'number' && value > max && rule.kind === 'ms' && max === MAX_TIMER_MS) {
    problem += ' (longer than the longest timer Node supports, about 24.8 days)';
  }
  return fail(name, problem, `Set "${name}" to ${accepted(rule, max)}.`);
}

function fail(name: string, problem: string, fix: string): never {
  throw invalidConfig(name, problem, fix);
}
