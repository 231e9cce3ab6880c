/**
 * Validation of the `circuitBreaker` option (kept here so options.ts stays about the core).
 * Bad values are refused with `E_INVALID_CONFIG` naming the option and the fix.
 */
import { invalidConfig } from '../errors';
import type { CircuitBreakerOptions, ResolvedCircuitBreakerOptions } from '../options-types';
import { checkNumber, describe, isPlainObject, rejectUnknownKeys, type NumberRule } from '../options-rules';

/** The defaults, documented in docs/options.md and docs/resilience.md. */
export const DEFAULT_CIRCUIT_BREAKER: Readonly<ResolvedCircuitBreakerOptions> = Object.freeze({
  failureThreshold: 5,
  openMs: 1_000,
});

const RULES: Record<keyof CircuitBreakerOptions, NumberRule> = {
  failureThreshold: { min: 1, integer: true, kind: 'count', unit: 'failed attempts' },
  openMs: { min: 1, integer: false, kind: 'ms', zeroDisables: false, unit: 'milliseconds' },
};

/** `circuitBreaker` with the defaults filled in; `false` when turned off. */
export function resolveCircuitBreaker(input: unknown): ResolvedCircuitBreakerOptions | false {
  if (input === false) return false;
  if (input === undefined || input === true) return { ...DEFAULT_CIRCUIT_BREAKER };
  if (!isPlainObject(input)) {
    throw invalidConfig('circuitBreaker', `expected an object or false, got ${describe(input)}`, 'Pass { failureThreshold, openMs }, false to turn the breaker off, or leave it out.');
  }
  rejectUnknownKeys('circuitBreaker', input, Object.keys(RULES));
  const out: ResolvedCircuitBreakerOptions = { ...DEFAULT_CIRCUIT_BREAKER };
  for (const key of Object.keys(RULES) as Array<keyof CircuitBreakerOptions>) {
    if (input[key] !== undefined) out[key] = checkNumber(`circuitBreaker.${key}`, input[key], RULES[key]);
  }
  return out;
}
