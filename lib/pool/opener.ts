/**
 * Opening one connection with retry and backoff, and the state that carries from one open to the
 * next: the failure streak (consecutive failed opens delay the next one, so there is no tight loop
 * while the database is down), the last connection error (the `cause` of acquire timeouts), and
 * the backoff sleeps that `close()` wakes early. The pool decides when to open and what to do with
 * the result; this file only opens.
 */
import type { Logger } from 'winston';
import type { ResolvedRetryOptions } from '../options';
import { connectBackoffMs } from './backoff';
import type { Clock, TimerHandle } from './clock';
import type { Connector } from './connector';
import { errorMessage } from './messages';
import type { PoolCounters } from './stats';
import type { Breaker } from '../resilience/breaker';

/** What the opener reads from its pool while it opens. */
export interface OpenerHost {
  readonly name: string;
  isOpen(): boolean;
  /** Someone awaits a connection or `ready()`: backoff sleeps then keep the process alive. */
  awaited(): boolean;
  readonly counters: PoolCounters;
  /** The error an open abandoned because the pool closed rejects with. */
  closedError(): Error;
  /** Connections open now (the breaker opens only when none is). */
  openCount(): number;
}

export class Opener<C> {
  /** Consecutive failed opens. */
  private failureStreak = 0;
  /** The most recent failure to open a connection; cleared by the next success. */
  lastError: unknown = undefined;
  /** Backoff sleeps in progress, woken early by `wakeAll()`. */
  private readonly sleepers = new Set<{ timer: TimerHandle; wake: () => void }>();

  constructor(
    private readonly host: OpenerHost,
    private readonly connector: Connector<C>,
    private readonly retry: ResolvedRetryOptions,
    private readonly createTimeoutMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly random: () => number,
    /** Asked before each attempt and told each outcome (lib/resilience/breaker.ts). */
    readonly breaker: Breaker,
  ) {}

  /** Opens one connection: up to `retry.attempts` tries with exponential backoff and jitter. */
  async open(): Promise<C> {
    const admission = this.breaker.admit();
    if (admission === 'denied') throw this.breaker.unavailableError();
    // A probe is one attempt, at once: the breaker already waited out its delay.
    const probe = admission === 'probe';
    let delayMs = this.failureStreak > 0 && !probe ? connectBackoffMs(this.failureStreak, this.retry, this.random) : 0;
    for (let attempt = 1; ; attempt++) {
      if (delayMs > 0) await this.sleep(delayMs);
      if (!this.host.isOpen()) throw this.host.closedError();
      // The circuit opened during the backoff: give up with the real connection error.
      if (!probe && !this.breaker.allowsRetry()) throw this.lastError ?? this.breaker.unavailableError();
      try {
        const raw = await this.connector.open(this.createTimeoutMs);
        this.breaker.succeeded();
        return raw;
      } catch (error) {
        this.host.counters.createErrors++;
        this.lastError = error;
        if (this.host.isOpen()) this.breaker.failed(error, this.host.openCount());
        const retryable = this.connector.isRetryable(error);
        const last = probe || !retryable || attempt >= this.retry.attempts || !this.host.isOpen() || !this.breaker.allowsRetry();
        this.log.warn(
          `Connection attempt ${attempt}/${this.retry.attempts} failed: ${errorMessage(error)}${last ? '' : '; retrying'}`,
          { pool: this.host.name, retryable },
        );
        if (last) throw error;
        // Consecutive failures of earlier opens count too: during an outage every retry waits
        // the grown delay, instead of starting over from initialDelayMs with each new open.
        delayMs = connectBackoffMs(this.failureStreak + attempt, this.retry, this.random);
      }
    }
  }

  /** An open succeeded: the streak and the last error are over. */
  succeeded(): void {
    this.failureStreak = 0;
    this.lastError = undefined;
  }

  /** An open gave up: the next one waits out a longer delay first. */
  failed(): void {
    this.failureStreak++;
  }

  /** Ends every backoff sleep now (the pool is closing: the opens then give up). */
  wakeAll(): void {
    for (const sleeper of this.sleepers) {
      this.clock.clearTimer(sleeper.timer);
      sleeper.wake();
    }
    this.sleepers.clear();
  }

  /** Waits `ms` on the pool's clock; `wakeAll()` ends it early. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: undefined as TimerHandle,
        wake: (): void => {
          this.sleepers.delete(sleeper);
          resolve();
        },
      };
      // Someone awaiting ready() or a connection keeps the process alive through the backoff.
      sleeper.timer = this.clock.setTimer(sleeper.wake, ms, this.host.awaited());
      this.sleepers.add(sleeper);
    });
  }
}
