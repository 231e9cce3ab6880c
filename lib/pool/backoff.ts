/**
 * Delay before the next connection attempt: exponential (initialDelayMs · 2^(n-1), capped at
 * maxDelayMs) with "equal jitter" — half the delay fixed, half random — so many pools retrying
 * after the same outage do not hit the server in lockstep, yet never retry immediately.
 */
import type { ResolvedRetryOptions } from '../options';

/** Milliseconds to wait before retry number `failures` (1 = after the first failure). */
export function connectBackoffMs(failures: number, retry: ResolvedRetryOptions, random: () => number): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** exponent);
  return base / 2 + (random() * base) / 2;
}
