/**
 * The pool's sense of time. Everything timed (deadlines, idle and lifetime checks, backoff) reads
 * and schedules through a `Clock`, so tests can replace it with a fake one and step time forward
 * instead of sleeping (the idea of Go's `nowFunc`).
 */
import { performance } from 'node:perf_hooks';

/**
 * The longest delay Node's timers support (2^31-1 ms, about 24.8 days); a longer one fires at
 * once. The one copy in the code base: option checks and the pool import it from here.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** An opaque handle for a scheduled callback. */
export type TimerHandle = unknown;

/** Source of time and timers for the pool. */
export interface Clock {
  /** Milliseconds on a monotonic scale (never goes backwards; unrelated to the wall clock). */
  now(): number;
  /** Milliseconds since the Unix epoch (for `createdAt` / `lastUsed` dates shown to users). */
  wallNow(): number;
  /** Nanoseconds since the Unix epoch, as a bigint (for connection ids). */
  wallNowNs(): bigint;
  /**
   * Runs `fn` after `ms`. The timer keeps the process alive only with `keepAlive` (used while a
   * caller is waiting on the pool, so a script awaiting a connection does not silently exit).
   */
  setTimer(fn: () => void, ms: number, keepAlive?: boolean): TimerHandle;
  /** Changes whether a timer keeps the process alive; unknown handles are ignored. */
  setKeepAlive(handle: TimerHandle, keepAlive: boolean): void;
  /** Cancels a timer set by {@link Clock.setTimer}; unknown handles are ignored. */
  clearTimer(handle: TimerHandle): void;
}

/**
 * `performance.now` bound once: the global `performance` getter in Node 20 validates its receiver
 * on every call (~120 ns against ~60 ns bound), and the pool reads the clock on every hand-out.
 */
const monotonicNow: () => number = performance.now.bind(performance);

/** The real clock: `performance.now()`, `Date.now()` and unref'd Node timers. */
export class SystemClock implements Clock {
  /** Offset from the monotonic high-resolution clock to Unix nanoseconds, fixed once. */
  private readonly epochOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

  now(): number {
    return monotonicNow();
  }

  wallNow(): number {
    return Date.now();
  }

  wallNowNs(): bigint {
    return this.epochOffsetNs + process.hrtime.bigint();
  }

  setTimer(fn: () => void, ms: number, keepAlive = false): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, ms));
    if (!keepAlive) timer.unref();
    return timer;
  }

  setKeepAlive(handle: TimerHandle, keepAlive: boolean): void {
    const timer = handle as NodeJS.Timeout | undefined;
    if (keepAlive) timer?.ref();
    else timer?.unref();
  }

  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  }
}

/** The process-wide real clock. */
export const systemClock: Clock = new SystemClock();

/**
 * Rejects with a plain Error (`<what> timed out after <ms> ms`) when `promise` has not settled
 * within `ms` on `clock`. A value that arrives after that is passed to `onLate` (to close a
 * connection nobody waits for any more); a late rejection is ignored.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock, what: string, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = clock.setTimer(() => {
      late = true;
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        if (late) {
          onLate?.(value);
          return;
        }
        clock.clearTimer(timer);
        resolve(value);
      },
      (error: unknown) => {
        clock.clearTimer(timer);
        reject(error);
      },
    );
  });
}
