/**
 * A `Connector` with gates, for scheduling tests without a database (deadpool's `GatedManager`).
 *
 * Every `open()` call consumes the next scripted outcome (default: `defaultOutcome`, 'ok'):
 * - 'ok' opens at once; 'fail' rejects with a retryable error; 'fail-permanent' with one that
 *   `isRetryable()` refuses (a bad password);
 * - 'slow' waits on a gate the test opens with `gate.release()` (or `gate.fail()`), or opens by
 *   itself after `ms` fake milliseconds when scripted as `{ slow: ms }`;
 * - 'hang' never answers; like every open it still rejects at `timeoutMs` on the fake clock, as the
 *   `Connector` contract requires.
 *
 * The connector counts attempts, opens and closes, and tracks which fake connections are
 * physically open, so tests can assert "never more than max" and "nothing leaked after close".
 */
import type { Connector } from '../../lib/pool/connector';
import type { BudgetSeam } from '../../lib/pool/types';
import { Pool } from '../../lib/pool/pool';
import { PoolEntry } from '../../lib/pool/entry';
import { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS, type CircuitBreakerOptions, type PoolOptions, type RetryOptions } from '../../lib/options';
import { DEFAULT_CIRCUIT_BREAKER } from '../../lib/resilience/options';
import type { Logger } from 'winston';
import { FakeClock } from './fake-clock';
import { silentLogger } from './silent-logger';

/** A fake physical connection. */
export interface FakeConn {
  /** 1, 2, 3… in the order the connector opened them. */
  readonly serial: number;
  /** True from open until `close()` is called on it. */
  open: boolean;
  /** The driver reported it dead (`killConnection`). */
  dead: boolean;
  /** Session inside a transaction; the test sets it before releasing. */
  inTransaction: boolean;
  /** What `rollback()` does: clear the transaction, reject, or resolve but leave it open. */
  rollback: 'ok' | 'fail' | 'noop';
  /** What `validate()` answers (a dead connection is always invalid). */
  valid: boolean;
  /** Times `close()` was called on it (more than 1 is a pool bug). */
  closeCalls: number;
}

export type OpenOutcome = 'ok' | 'fail' | 'fail-permanent' | 'slow' | 'hang' | { slow: number };

/** The error a failing fake open rejects with. */
export class FakeConnectError extends Error {
  constructor(
    readonly permanent: boolean,
    readonly attempt: number,
  ) {
    super(permanent ? `password authentication failed (attempt ${attempt})` : `connect ECONNREFUSED (attempt ${attempt})`);
    this.name = 'FakeConnectError';
  }
}

/** A pending 'slow' (or 'hang') open the test controls. */
export class Gate {
  /** 'waiting' until released, failed, or timed out by the connector. */
  state: 'waiting' | 'opened' | 'failed' | 'timedOut' = 'waiting';
  /** The connection it produced, once opened. */
  conn: FakeConn | undefined = undefined;

  constructor(
    /** 'hang' gates ignore `release()`: only the open's own timeout (or `fail()`) ends them. */
    readonly kind: 'slow' | 'hang',
    /** 1-based number of the `open()` call this gate belongs to. */
    readonly attempt: number,
    private readonly settleOk: () => void,
    private readonly settleFail: (error: Error) => void,
  ) {}

  /** Lets the open succeed (ignored once the gate has settled). */
  release(): void {
    if (this.state === 'waiting' && this.kind === 'slow') this.settleOk();
  }

  /** Makes the open fail (ignored once the gate has settled). */
  fail(error: Error = new FakeConnectError(false, this.attempt)): void {
    if (this.state === 'waiting') this.settleFail(error);
  }
}

export class FakeConnector implements Connector<FakeConn> {
  /** Outcome of opens once the script is used up. */
  defaultOutcome: OpenOutcome = 'ok';
  /** `open()` calls so far (each retry counts). */
  openAttempts = 0;
  /** Fake time of every `open()` call. */
  readonly attemptTimes: number[] = [];
  /** Opens that produced a connection. */
  opens = 0;
  /** `close()` calls on distinct connections. */
  closes = 0;
  /** `open()` calls that have not settled yet. */
  inFlight = 0;
  /** Highest `open + inFlight` ever seen: what the server could have seen at once. */
  peakOccupied = 0;
  /** Highest number of physically open connections ever seen. */
  peakOpen = 0;
  /** `close()` calls on a connection that was already closed (a pool bug). */
  doubleCloses = 0;
  /** Gates of 'slow' and 'hang' opens, in call order. */
  readonly gates: Gate[] = [];
  /** Every connection ever opened, in order. */
  readonly connections: FakeConn[] = [];
  /** Runs on every `close()` call, before the connection is marked closed. */
  onClose: ((conn: FakeConn) => void) | undefined = undefined;

  private readonly script: OpenOutcome[] = [];
  private readonly watchers = new Map<FakeConn, (error: unknown) => void>();
  private readonly openSet = new Set<FakeConn>();

  constructor(private readonly clock: FakeClock) {}

  /** Queues outcomes for the next `open()` calls. */
  enqueue(...outcomes: OpenOutcome[]): this {
    this.script.push(...outcomes);
    return this;
  }

  /** Outcomes still scripted. */
  get scripted(): number {
    return this.script.length;
  }

  /** Connections physically open now (opened and not yet closed). */
  get openCount(): number {
    return this.openSet.size;
  }

  /** The connections open now, in opening order. */
  openConnections(): FakeConn[] {
    return [...this.openSet];
  }

  /** Gates still waiting, oldest first. */
  waitingGates(): Gate[] {
    return this.gates.filter((g) => g.state === 'waiting');
  }

  /** The driver says `conn` is dead: marks it and calls the pool's watch callback (once). */
  killConnection(conn: FakeConn, error: Error = new Error('terminating connection due to administrator command')): void {
    if (conn.dead) return;
    conn.dead = true;
    const watcher = this.watchers.get(conn);
    this.watchers.delete(conn);
    watcher?.(error);
  }

  open(timeoutMs: number): Promise<FakeConn> {
    const attempt = ++this.openAttempts;
    this.attemptTimes.push(this.clock.now());
    const outcome = this.script.length > 0 ? (this.script.shift() as OpenOutcome) : this.defaultOutcome;
    if (outcome === 'ok') return Promise.resolve(this.createConn());
    if (outcome === 'fail' || outcome === 'fail-permanent') {
      return Promise.reject(new FakeConnectError(outcome === 'fail-permanent', attempt));
    }
    this.inFlight++;
    this.notePeaks();
    return new Promise<FakeConn>((resolve, reject) => {
      let timer: unknown = undefined;
      let selfTimer: unknown = undefined;
      const finish = (): void => {
        this.inFlight--;
        this.clock.clearTimer(timer);
        if (selfTimer !== undefined) this.clock.clearTimer(selfTimer);
      };
      const gate = new Gate(
        outcome === 'hang' ? 'hang' : 'slow',
        attempt,
        () => {
          finish();
          gate.state = 'opened';
          gate.conn = this.createConn();
          resolve(gate.conn);
        },
        (error) => {
          finish();
          gate.state = 'failed';
          reject(error);
        },
      );
      this.gates.push(gate);
      // The contract: open settles within timeoutMs. A late connection is never created.
      timer = this.clock.setTimer(() => {
        if (gate.state !== 'waiting') return;
        finish();
        gate.state = 'timedOut';
        reject(new Error(`timeout expired: no answer from the server within ${timeoutMs} ms`));
      }, timeoutMs);
      if (typeof outcome === 'object') selfTimer = this.clock.setTimer(() => gate.release(), outcome.slow);
    });
  }

  close(raw: FakeConn): Promise<void> {
    this.onClose?.(raw);
    raw.closeCalls++;
    if (!raw.open) {
      this.doubleCloses++;
      return Promise.resolve();
    }
    raw.open = false;
    this.closes++;
    this.openSet.delete(raw);
    this.watchers.delete(raw);
    return Promise.resolve();
  }

  watch(raw: FakeConn, onBroken: (error: unknown) => void): void {
    if (raw.dead) onBroken(new Error('connection already dead'));
    else this.watchers.set(raw, onBroken);
  }

  inTransaction(raw: FakeConn): boolean {
    return raw.inTransaction;
  }

  rollback(raw: FakeConn): Promise<void> {
    if (raw.dead || raw.rollback === 'fail') return Promise.reject(new Error('rollback failed: connection is broken'));
    if (raw.rollback === 'ok') raw.inTransaction = false;
    return Promise.resolve();
  }

  validate(raw: FakeConn, _timeoutMs: number): Promise<boolean> {
    return Promise.resolve(raw.open && !raw.dead && raw.valid);
  }

  isRetryable(error: unknown): boolean {
    return !(error instanceof FakeConnectError && error.permanent);
  }

  private createConn(): FakeConn {
    const conn: FakeConn = {
      serial: this.connections.length + 1,
      open: true,
      dead: false,
      inTransaction: false,
      rollback: 'ok',
      valid: true,
      closeCalls: 0,
    };
    this.connections.push(conn);
    this.openSet.add(conn);
    this.opens++;
    this.notePeaks();
    return conn;
  }

  private notePeaks(): void {
    this.peakOpen = Math.max(this.peakOpen, this.openSet.size);
    this.peakOccupied = Math.max(this.peakOccupied, this.openSet.size + this.inFlight);
  }
}

export type FakeEntry = PoolEntry<FakeConn>;
export type FakePool = Pool<FakeConn, FakeEntry>;

/** A pool wired to a fake connector and a fake clock, with a silent logger. */
export interface FakePoolSetup {
  pool: FakePool;
  connector: FakeConnector;
  clock: FakeClock;
}

export interface FakePoolParams {
  pool?: PoolOptions;
  retry?: RetryOptions;
  /** Outcomes of the first opens (including the ones the constructor starts to reach `min`). */
  script?: OpenOutcome[];
  /** Outcome of the opens after the script (`connector.defaultOutcome`), set before the pool starts. */
  outcome?: OpenOutcome;
  clock?: FakeClock;
  connector?: FakeConnector;
  logger?: Logger;
  name?: string;
  /** Random numbers for backoff and lifetime jitter; defaults to a constant 0.5 (deterministic). */
  random?: () => number;
  /** The circuit breaker (defaults filled in); off when left out. */
  circuitBreaker?: CircuitBreakerOptions;
  /** A connection budget shared with other pools. */
  budget?: BudgetSeam;
}

/**
 * Builds a pool the way the manager does, but on the fakes. Pool options default to
 * `min: 0, max: 3` so tests start from an empty pool unless they ask otherwise.
 */
export function createFakePool(params: FakePoolParams = {}): FakePoolSetup {
  const clock = params.clock ?? new FakeClock();
  const connector = params.connector ?? new FakeConnector(clock);
  if (params.script) connector.enqueue(...params.script);
  if (params.outcome) connector.defaultOutcome = params.outcome;
  const pool: FakePool = new Pool<FakeConn, FakeEntry>({
    name: params.name ?? 'test',
    options: { ...DEFAULT_POOL_OPTIONS, min: 0, max: 3, ...params.pool },
    retry: { ...DEFAULT_RETRY_OPTIONS, ...params.retry },
    connector,
    clock,
    logger: params.logger ?? silentLogger(),
    createEntry: (owner) => new PoolEntry<FakeConn>(owner),
    random: params.random ?? (() => 0.5),
    circuitBreaker: params.circuitBreaker ? { ...DEFAULT_CIRCUIT_BREAKER, ...params.circuitBreaker } : undefined,
    budget: params.budget,
  });
  return { pool, connector, clock };
}
