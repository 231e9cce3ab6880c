/**
 * The circuit breaker of one pool. The pool does not track outages itself: its opener asks the
 * breaker "may I open?" before each connection attempt and reports each outcome, and its acquire
 * reads one property (`blocking`). States (docs/resilience.md):
 *
 *   closed ──(failureThreshold failed attempts, none open)──▶ open ──(probe delay)──▶ halfOpen
 *   halfOpen ──(probe opened)──▶ closed          halfOpen ──(probe failed)──▶ open (longer delay)
 *
 * While open, opens are refused and acquires that no idle connection serves fail at once with
 * `E_DB_UNAVAILABLE`; one probe per delay tests the server.
 */
import type { Logger } from 'winston';
import { ConnectionManagerError } from '../errors';
import type { ResolvedCircuitBreakerOptions, ResolvedRetryOptions } from '../options-types';
import type { Clock, TimerHandle } from '../pool/clock';
import { errorMessage } from '../pool/messages';
import type { CircuitState, CircuitStats } from './types';

export type { CircuitState, CircuitStats } from './types';

/** What the breaker asks of its pool. */
export interface BreakerHost {
  readonly name: string;
  isOpen(): boolean;
  /** The circuit opened: fail the callers waiting now with `error`. */
  tripped(error: Error): void;
  /** Time for a probe: start one open (it will be admitted as the probe). */
  probe(): void;
}

/** The answer to "may I open?": a normal open, the one probe, or no. */
export type Admission = 'normal' | 'probe' | 'denied';

/** The breaker seam of the pool; `NO_BREAKER` when the option is `false`. */
export interface Breaker {
  /** True while acquires that need a new connection must fail at once (open, or a probe in flight). */
  readonly blocking: boolean;
  /** Asked before each open; `probe` is given once per half-open period. */
  admit(): Admission;
  /** Whether an open in its retry loop may try again (false once the circuit left `closed`). */
  allowsRetry(): boolean;
  /** A connection attempt succeeded. */
  succeeded(): void;
  /** A connection attempt failed with `error`, with `openConnections` open at that moment. */
  failed(error: unknown, openConnections: number): void;
  /** `E_DB_UNAVAILABLE` describing the outage now. */
  unavailableError(): ConnectionManagerError;
  stats(): CircuitStats;
  /** Cancels the probe timer (the pool is closing). */
  stop(): void;
}

const CLOSED_STATS: CircuitStats = Object.freeze({ state: 'closed', since: null, failures: 0 }) as CircuitStats;

/** The breaker of a pool configured with `circuitBreaker: false`: always closed. */
export const NO_BREAKER: Breaker = Object.freeze({
  blocking: false,
  admit: (): Admission => 'normal',
  allowsRetry: () => true,
  succeeded: () => undefined,
  failed: () => undefined,
  unavailableError: () => new ConnectionManagerError('E_DB_UNAVAILABLE', 'The circuit breaker is off.'),
  stats: () => ({ ...CLOSED_STATS }),
  stop: () => undefined,
});

/** Milliseconds before probe number `reopens + 1`: openMs doubled per failed probe, capped, up to 20% earlier at random. */
export function probeDelayMs(reopens: number, openMs: number, capMs: number, random: () => number): number {
  const base = Math.min(Math.max(openMs, capMs), openMs * 2 ** Math.min(reopens, 30));
  return base - random() * base * 0.2;
}

export class CircuitBreaker implements Breaker {
  blocking = false;
  private state: CircuitState = 'closed';
  private sinceWall: number | undefined;
  private failures = 0;
  private lastError: unknown = undefined;
  /** Probes that failed in this outage (the delay doubles with each). */
  private reopens = 0;
  private probeInFlight = false;
  private nextProbeWall = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly host: BreakerHost,
    private readonly options: ResolvedCircuitBreakerOptions,
    /** Longest probe delay: `retry.maxDelayMs` × 10 (never below `openMs`). */
    private readonly capMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly random: () => number,
  ) {}

  admit(): Admission {
    if (this.state === 'closed') return 'normal';
    if (this.state === 'halfOpen' && !this.probeInFlight) {
      this.probeInFlight = true;
      this.blocking = true;
      return 'probe';
    }
    return 'denied';
  }

  allowsRetry(): boolean {
    return this.state === 'closed';
  }

  succeeded(): void {
    this.failures = 0;
    if (this.state === 'closed') return;
    this.lastError = undefined;
    this.reopens = 0;
    this.probeInFlight = false;
    this.blocking = false;
    this.enter('closed');
    // The pool refills as after any open: its pump runs once the probe's connection is placed.
    this.log.info('Circuit closed: a probe connection opened; the pool serves and refills again', { pool: this.host.name, circuit: 'closed' });
  }

  failed(error: unknown, openConnections: number): void {
    this.failures++;
    this.lastError = error;
    if (this.state === 'halfOpen') {
      this.probeInFlight = false;
      this.reopens++;
      this.trip();
    } else if (this.state === 'closed' && this.failures >= this.options.failureThreshold && openConnections === 0) {
      this.trip();
    }
  }

  unavailableError(): ConnectionManagerError {
    const now = this.clock.wallNow();
    const since = new Date(this.sinceWall ?? now).toISOString();
    const next = this.probeInFlight
      ? 'a probe is running now'
      : `the next probe runs at ${new Date(this.nextProbeWall).toISOString()} (in ${Math.max(0, Math.round(this.nextProbeWall - now))} ms)`;
    return new ConnectionManagerError(
      'E_DB_UNAVAILABLE',
      `Database unavailable (pool "${this.host.name}"): the circuit has been open since ${since} after ${this.failures} consecutive failed connection attempts (last: ${errorMessage(this.lastError)}); ${next}. Calls that need a new connection fail at once until a probe connects; retry later, or set circuitBreaker: false to wait out acquireTimeoutMs instead.`,
      { cause: this.lastError },
    );
  }

  stats(): CircuitStats {
    if (this.state === 'closed' && this.sinceWall === undefined && this.failures === 0) return { ...CLOSED_STATS };
    const out: CircuitStats = { state: this.state, since: this.sinceWall === undefined ? null : new Date(this.sinceWall), failures: this.failures };
    if (this.lastError !== undefined && this.state !== 'closed') out.lastError = errorMessage(this.lastError);
    return out;
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Opens the circuit, schedules the next probe and tells the waiting callers. */
  private trip(): void {
    const delayMs = probeDelayMs(this.reopens, this.options.openMs, this.capMs, this.random);
    const first = this.state === 'closed';
    this.enter('open');
    this.blocking = true;
    this.nextProbeWall = this.clock.wallNow() + delayMs;
    this.stop();
    // Not keeping the process alive: a probe matters only to a process that still has work.
    this.timer = this.clock.setTimer(() => this.halfOpen(), delayMs, false);
    this.log.warn(
      `Circuit ${first ? 'opened' : 'stays open (probe failed)'} after ${this.failures} consecutive failed connection attempts (${errorMessage(this.lastError)}); next probe in ${Math.round(delayMs)} ms`,
      { pool: this.host.name, circuit: 'open', failures: this.failures },
    );
    if (first) this.host.tripped(this.unavailableError());
  }

  private halfOpen(): void {
    this.timer = undefined;
    if (!this.host.isOpen() || this.state !== 'open') return;
    this.enter('halfOpen');
    this.blocking = false;
    this.log.info('Circuit half-open: probing the database with one connection', { pool: this.host.name, circuit: 'halfOpen' });
    this.host.probe();
  }

  private enter(state: CircuitState): void {
    this.state = state;
    this.sinceWall = this.clock.wallNow();
  }
}

/** A pool's breaker: `NO_BREAKER` when the option is off (`false`, or left out of a bare pool's config). */
export function createBreaker(
  options: ResolvedCircuitBreakerOptions | false | undefined,
  host: BreakerHost,
  retry: ResolvedRetryOptions,
  clock: Clock,
  log: Logger,
  random: () => number,
): Breaker {
  return options ? new CircuitBreaker(host, options, retry.maxDelayMs * 10, clock, log, random) : NO_BREAKER;
}
