/**
 * Which statement texts the statement cache takes, and the config it hands pg (cache.ts has the
 * rules in full).
 */

/** Longest statement text cached, in characters; longer ones always run unnamed. */
export const MAX_CACHED_TEXT = 4_096;

/** A query config the cache may name (anything else goes to pg untouched). */
export interface PlainConfig {
  text: string;
  values?: unknown;
  name?: unknown;
  rows?: unknown;
  queryMode?: unknown;
  submit?: unknown;
}

/** Longest text scanned for `DISCARD ALL` / `DEALLOCATE` when it runs unnamed. */
export const RESET_SCAN_LIMIT = 65_536;

/** `DISCARD ALL`, `DEALLOCATE ALL`, or `DEALLOCATE [PREPARE] <name>` (the name captured). */
export const SESSION_RESET = /\b(?:discard\s+all|deallocate\s+(?:prepare\s+)?(?:all\b|"?([A-Za-z_][\w$]*)"?))/i;

/** True when a text without bindings holds more than one statement (a `;` with more text after it). */
export function severalStatements(text: string): boolean {
  const at = text.indexOf(';');
  return at !== -1 && text.slice(at + 1).trim() !== '';
}

/** True when the caller's config has keys beyond `text` and `values` (knex's `options()`, `rowMode`, `types`). */
export function extraKeys(plain: PlainConfig | undefined): boolean {
  if (plain === undefined) return false;
  for (const key in plain) {
    if (key !== 'text' && key !== 'values') return true;
  }
  return false;
}

/**
 * The config sent to pg: `text`, `values`, `name`, and any other keys of the caller's config (knex
 * passes its `options()` this way). Built as a fresh literal rather than with a spread: a spread
 * that then overwrites a key leaves V8 a slow-mode object, which cost about 0.8 µs per statement
 * here and again in pg's own copy of the config.
 */
export function withName(text: string, values: unknown, name: string | undefined, plain: PlainConfig | undefined): PlainConfig {
  const config: PlainConfig = { text, values, name };
  if (plain !== undefined) {
    for (const key in plain) {
      if (key !== 'text' && key !== 'values' && key !== 'name') (config as unknown as Record<string, unknown>)[key] = (plain as unknown as Record<string, unknown>)[key];
    }
  }
  return config;
}

/** The SQLSTATE of a driver error, if it has one. */
export function sqlState(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
