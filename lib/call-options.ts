/**
 * The one check of per-call options (`getConnection`, `withConnection`, `query`, and the pool's
 * own `acquire`). It runs first, before the pool's state or the signal is looked at, so a bad
 * argument is always reported as such (`E_INVALID_CONFIG`), whatever else is going on. A value
 * that passes cannot make the waiter queue or its timers throw later.
 */
import { ConnectionManagerError, invalidConfig } from './errors';
import { MAX_TIMER_MS } from './pool/clock';
import { describe } from './options-rules';
import { checkPriority, checkTags } from './admission/tags';
import type { Priority, Tags } from './admission/types';

/** Per-call options after the check: every field is of its documented type. */
export interface CheckedCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  intent?: 'read' | 'write';
  /** Tags of the caller (admission); merged over the `withTags()` scope's. */
  tags?: Tags;
  /** Priority class (admission). */
  priority?: Priority;
}

/** The public entries that take per-call options, and the keys each accepts. */
const KEYS = {
  getConnection: ['timeoutMs', 'signal', 'intent', 'tags', 'priority'],
  withConnection: ['timeoutMs', 'signal', 'intent', 'tags', 'priority'],
  query: ['timeoutMs', 'signal', 'tags', 'priority'],
  acquire: ['timeoutMs', 'signal', 'tags', 'priority'],
} as const;

/** A public entry point that takes per-call options. */
export type CallEntry = keyof typeof KEYS;

/**
 * Options that passed the check. Their class marks them, so a layer below (the pool's `acquire`)
 * that is handed them again knows them at the cost of one `instanceof`, without checking twice.
 */
class CheckedOptions implements CheckedCallOptions {
  constructor(
    readonly timeoutMs: number | undefined,
    readonly signal: AbortSignal | undefined,
    readonly intent: 'read' | 'write' | undefined,
    readonly tags: Tags | undefined = undefined,
    readonly priority: Priority | undefined = undefined,
  ) {}
}

const NONE: CheckedCallOptions = Object.freeze(new CheckedOptions(undefined, undefined, undefined));

/**
 * True for an AbortSignal, or an object that behaves as one (a polyfill's): the queue relies on
 * `aborted`, `reason`, `addEventListener` and `removeEventListener`.
 */
export function isAbortSignalLike(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true;
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<AbortSignal>;
  return typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function' && typeof s.removeEventListener === 'function';
}

/**
 * Checks the options of one call to `entry`. Unknown keys are refused (a misspelt `timeoutMs`
 * would otherwise silently wait the pool's default).
 * @returns the options themselves (no copy), typed.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` naming the option, the value and the fix.
 */
export function validateCallOptions(value: unknown, entry: CallEntry): CheckedCallOptions {
  if (value === undefined) return NONE;
  if (value instanceof CheckedOptions) return value;
  const allowed: readonly string[] = KEYS[entry];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidConfig(`${entry}() options`, `expected an object, got ${describe(value)}`, `Pass { ${allowed.join(', ')} } or leave it out.`);
  }
  const takesIntent = entry === 'getConnection' || entry === 'withConnection';
  for (const key in value) {
    // Compared one by one rather than with allowed.includes(): this runs on every acquire.
    if (key !== 'timeoutMs' && key !== 'signal' && key !== 'tags' && key !== 'priority' && !(takesIntent && key === 'intent')) {
      const hint = key === 'intent' ? ' query() routes each statement by what it does; use getConnection({ intent }) to choose.' : '';
      throw invalidConfig(key, `${entry}() takes no such option`, `Remove it; ${entry}() takes: ${allowed.join(', ')}.${hint}`);
    }
  }
  const { timeoutMs, signal, intent, tags, priority } = value as Record<string, unknown>;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw invalidConfig(
      'timeoutMs',
      `expected a number of milliseconds greater than 0 and at most ${MAX_TIMER_MS}, got ${describe(timeoutMs)}`,
      'Pass a number such as timeoutMs: 500 (not a string), or leave it out to use pool.acquireTimeoutMs.',
    );
  }
  if (signal !== undefined && !isAbortSignalLike(signal)) {
    throw invalidConfig('signal', `expected an AbortSignal, got ${describe(signal)}`, 'Pass controller.signal of an AbortController (or AbortSignal.timeout(ms)), or leave it out.');
  }
  if (intent !== undefined && intent !== 'read' && intent !== 'write') {
    throw invalidConfig('intent', `expected "read" or "write", got ${describe(intent)}`, 'Pass intent: "read" to lease from a replica, "write" (or nothing) for the primary.');
  }
  // A fresh object of the values checked: a getter on the caller's object cannot answer differently later.
  return new CheckedOptions(
    timeoutMs as number | undefined,
    signal as AbortSignal | undefined,
    intent as 'read' | 'write' | undefined,
    tags === undefined ? undefined : checkTags(tags, 'tags'),
    priority === undefined ? undefined : checkPriority(priority),
  );
}

/**
 * Checks `query(sql, bindings)`'s statement arguments: a non-blank string and, when given, an
 * array of bindings. Without it, a number or null reaches the classifier and then the driver.
 * @throws ConnectionManagerError `E_INVALID_CONFIG`.
 */
export function validateQueryArguments(sql: unknown, bindings: unknown): void {
  if (typeof sql !== 'string' || sql.trim() === '') {
    throw badArgument('sql', `expected the statement as a non-blank string, got ${describe(sql)}`, 'Pass the SQL text, e.g. query("SELECT * FROM t WHERE id = $1", [id]).');
  }
  if (bindings !== undefined && bindings !== null && !Array.isArray(bindings)) {
    throw badArgument('bindings', `expected an array, got ${describe(bindings)}`, 'Pass the values of $1, $2, ... as an array, e.g. [id], or leave it out.');
  }
}

function badArgument(name: string, problem: string, fix: string, entry = 'query'): ConnectionManagerError {
  return new ConnectionManagerError('E_INVALID_CONFIG', `Invalid argument "${name}" of ${entry}(): ${problem}. ${fix}`);
}

/**
 * Checks the callback of `withConnection(fn)`, `withReadYourWrites(fn)` and `withTags(tags, fn)`: without it, a
 * non-function throws a raw TypeError from deep inside the call.
 * @throws ConnectionManagerError `E_INVALID_CONFIG`.
 */
export function validateCallback(fn: unknown, entry: 'withConnection' | 'withReadYourWrites' | 'withTags'): void {
  if (typeof fn !== 'function') {
    throw badArgument('fn', `expected a function, got ${describe(fn)}`, `Pass a function, e.g. ${entry}(${entry === 'withConnection' ? 'async (connection) => ...' : entry === 'withTags' ? '{ tenant }, async () => ...' : 'async () => ...'}).`, entry);
  }
}
