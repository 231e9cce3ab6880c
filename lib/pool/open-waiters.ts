/**
 * Callers waiting for the pool to have a number of connections open: `ready()` (until `min` are
 * open; an open that gives up rejects it) and the admin operations' refill (until their target is
 * open, bounded in time; open failures do not end it, since the pool keeps retrying).
 */
import type { Clock, TimerHandle } from './clock';

interface OpenWaiter {
  readonly target: number;
  /** `ready()` waiters are rejected by a failed open; refill waiters are not. */
  readonly failOnError: boolean;
  resolve(opened: boolean): void;
  reject(error: Error): void;
  timer: TimerHandle | undefined;
}

export class OpenWaiters {
  private waiters: OpenWaiter[] = [];

  constructor(private readonly clock: Clock) {}

  /** Anyone waiting (their backoff sleeps keep the process alive). */
  get size(): number {
    return this.waiters.length;
  }

  /** Resolves once `target` are open; rejects with the error of the first open that gives up. */
  ready(target: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, failOnError: true, resolve: () => resolve(), reject, timer: undefined });
    });
  }

  /** Resolves true once `target` are open, false after `timeoutMs` or at `closeAll()`. */
  refilled(target: number, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: OpenWaiter = { target, failOnError: false, resolve, reject: () => resolve(false), timer: undefined };
      waiter.timer = this.clock.setTimer(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs, true);
      this.waiters.push(waiter);
    });
  }

  /** `open` connections are open now: resolves every waiter whose target that reaches. */
  settle(open: number): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (w.target > open) return true;
      this.end(w);
      w.resolve(true);
      return false;
    });
  }

  /** An open gave up: rejects the `ready()` waiters with `error`. */
  failed(error: Error): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (!w.failOnError) return true;
      w.reject(error);
      return false;
    });
  }

  /** The pool is closing: `ready()` waiters are rejected with `error`, refill waiters resolve false. */
  closeAll(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      this.end(w);
      if (w.failOnError) w.reject(error);
      else w.resolve(false);
    }
  }

  private end(w: OpenWaiter): void {
    if (w.timer !== undefined) this.clock.clearTimer(w.timer);
  }
}
