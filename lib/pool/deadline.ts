/**
 * One deadline per call (sqlx's way): fixed once, on the monotonic clock, where the call enters,
 * and handed down every path it takes (a replica first, then the primary; a read retried on the
 * primary), so each step waits only for what is left, never a fresh full timeout.
 */
import { validateCallOptions, type CheckedCallOptions } from '../call-options';
import type { Clock } from './clock';

/** A call's deadline: what the pool's `acquire` takes from internal callers instead of `timeoutMs`. */
export class AcquireDeadline {
  constructor(
    /** The caller's whole timeout (shown in the timeout message). */
    readonly timeoutMs: number,
    /** Monotonic time the call gives up. */
    readonly atMono: number,
    readonly signal: AbortSignal | undefined,
    /** The call's tags and priority, for admission (ignored without it). */
    readonly tags?: Readonly<Record<string, string>>,
    readonly priority?: 'high' | 'normal' | 'low',
  ) {}

  /** Starts the deadline of a call whose options were checked, at `clock.now()`. */
  static start(options: CheckedCallOptions, defaultTimeoutMs: number, clock: Clock): AcquireDeadline {
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    return new AcquireDeadline(timeoutMs, clock.now() + timeoutMs, options.signal, options.tags, options.priority);
  }

  /** Milliseconds left (0 or less when passed). */
  remainingMs(clock: Clock): number {
    return this.atMono - clock.now();
  }

  /** The same call with at most `ms` from now (for a step that must leave time for the next). */
  capped(ms: number, clock: Clock): AcquireDeadline {
    return new AcquireDeadline(this.timeoutMs, Math.min(this.atMono, clock.now() + ms), this.signal, this.tags, this.priority);
  }
}

/** What `Pool.acquire` works from: the reported timeout, the wait, and the signal. */
export interface AcquireRequest {
  /** The caller's whole timeout, for the timeout message. */
  timeoutMs: number;
  /** Longest this acquire may wait from now: <= 0 when the deadline has passed. */
  waitMs: number;
  signal: AbortSignal | undefined;
  /** The call's tags and priority, for admission. */
  tags?: Readonly<Record<string, string>>;
  priority?: 'high' | 'normal' | 'low';
}

/**
 * Turns what `Pool.acquire` was given into a request: public options are checked (the one check
 * of per-call options); an internal deadline becomes the time it has left.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` for bad public options.
 */
export function acquireRequest(options: unknown, defaultTimeoutMs: number, clock: Clock): AcquireRequest {
  if (options instanceof AcquireDeadline) {
    return { timeoutMs: options.timeoutMs, waitMs: Math.ceil(options.remainingMs(clock)), signal: options.signal, tags: options.tags, priority: options.priority };
  }
  const checked = validateCallOptions(options, 'acquire');
  const timeoutMs = checked.timeoutMs ?? defaultTimeoutMs;
  return { timeoutMs, waitMs: timeoutMs, signal: checked.signal, tags: checked.tags, priority: checked.priority };
}
