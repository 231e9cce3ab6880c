/**
 * A `Clock` whose time only moves when a test says so. Timers are kept in a list and fired by
 * `advance()` / `advanceAsync()` in deadline order (ties in the order they were set); no real timer
 * is ever armed, so tests of timeouts, backoff and lifetimes never sleep.
 */
import type { Clock, TimerHandle } from '../../lib/pool/clock';

interface FakeTimer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/** Lets every queued promise continuation run (a macrotask turn drains the microtask queue). */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private mono: number;
  private readonly wallBase: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  /**
   * @param startMono monotonic time at creation (ms)
   * @param wallBase Unix time (ms) that corresponds to monotonic 0
   */
  constructor(startMono = 1_000, wallBase = Date.UTC(2024, 0, 1)) {
    this.mono = startMono;
    this.wallBase = wallBase;
  }

  now(): number {
    return this.mono;
  }

  wallNow(): number {
    return this.wallBase + this.mono;
  }

  wallNowNs(): bigint {
    return BigInt(Math.round((this.wallBase + this.mono) * 1_000)) * 1_000n;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const delay = Number.isFinite(ms) ? Math.max(0, ms) : Number.POSITIVE_INFINITY;
    const timer: FakeTimer = { id: this.nextId++, due: this.mono + delay, fn };
    this.timers.set(timer.id, timer);
    return timer.id;
  }

  /** Fake timers never keep a process alive; the flag is ignored. */
  setKeepAlive(_handle: TimerHandle, _keepAlive: boolean): void {}

  clearTimer(handle: TimerHandle): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** Timers set and not yet fired or cleared. */
  pendingTimers(): number {
    return this.timers.size;
  }

  /** Deadlines of the timers set, soonest first. */
  timerDeadlines(): number[] {
    return [...this.timers.values()].map((t) => t.due).sort((a, b) => a - b);
  }

  /** Deadline of the next timer, or undefined when none is set. */
  nextDue(): number | undefined {
    return this.earliest()?.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, in deadline order.
   * Timers set by a firing callback also fire if they fall due within the window.
   */
  advance(ms: number): void {
    const target = this.mono + Math.max(0, ms);
    for (let timer = this.dueBy(target); timer; timer = this.dueBy(target)) {
      this.fire(timer);
    }
    this.mono = target;
  }

  /**
   * Like {@link advance}, but lets promise continuations run before and after each timer, so that
   * work a timer starts (a rejected open, a retry's next sleep) happens at the right fake time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.mono + Math.max(0, ms);
    await this.settle();
    for (let timer = this.dueBy(target); timer; timer = this.dueBy(target)) {
      this.fire(timer);
      await this.settle();
    }
    this.mono = target;
    await this.settle();
  }

  /** Fires timers due now and lets continuations run, without moving time. */
  flush(): Promise<void> {
    return this.advanceAsync(0);
  }

  /** A few macrotask turns: enough for chains that hop through several async functions. */
  private async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await flushMicrotasks();
  }

  private fire(timer: FakeTimer): void {
    this.timers.delete(timer.id);
    if (timer.due > this.mono) this.mono = timer.due;
    timer.fn();
  }

  private dueBy(target: number): FakeTimer | undefined {
    const timer = this.earliest();
    return timer && timer.due <= target ? timer : undefined;
  }

  private earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const timer of this.timers.values()) {
      if (!best || timer.due < best.due || (timer.due === best.due && timer.id < best.id)) best = timer;
    }
    return best;
  }
}

/** Advances `clock` 1 ms at a time until `settled()` or `limit` ms; returns the ms advanced. */
export async function advanceUntil(clock: FakeClock, settled: () => boolean, limit: number): Promise<number> {
  let elapsed = 0;
  while (!settled() && elapsed < limit) {
    await clock.advanceAsync(1);
    elapsed++;
  }
  return elapsed;
}

/** Closes managers that run on fake clocks, advancing each clock far enough for its close to finish. */
export async function closeOnFakeClock(running: ReadonlyArray<{ manager: { close(): Promise<void> }; clock: FakeClock }>): Promise<void> {
  for (const { manager, clock } of running) {
    const closed = manager.close();
    await clock.advanceAsync(60_000);
    await closed;
  }
}
