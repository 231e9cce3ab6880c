/**
 * Bounded polling for tests: wait for a condition that has no event to await, instead of sleeping
 * for a guessed amount of time.
 */

export interface UntilOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Pause between checks (default 5 ms). */
  intervalMs?: number;
  /** Shown in the error when the condition never held. */
  description?: string;
}

/**
 * Resolves as soon as `condition()` returns (or resolves to) true; rejects when it has not within
 * `timeoutMs`, or when `condition()` throws.
 */
export async function until(condition: () => boolean | Promise<boolean>, options: UntilOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const intervalMs = options.intervalMs ?? 5;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() >= deadline) {
      throw new Error(`Condition not met within ${timeoutMs} ms${options.description ? `: ${options.description}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Settles-state of a promise, readable synchronously (for "has not resolved yet" assertions). */
export interface Tracked<T> {
  promise: Promise<T>;
  readonly settled: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
}

/** Wraps `promise` so a test can ask whether it has settled without awaiting it. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  const tracked = promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
      return value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
      throw error;
    },
  );
  // The test awaits `promise` itself; do not report the rejection twice as unhandled.
  tracked.catch(() => undefined);
  return {
    promise: tracked,
    get settled() {
      return state.settled;
    },
    get value() {
      return state.value;
    },
    get error() {
      return state.error;
    },
  };
}
