/**
 * Model-based property test of the pool (fast-check). Random sequences of commands — acquire
 * (random timeout, maybe with an AbortSignal), release (maybe inside a transaction, maybe twice),
 * time passing, aborts, connections dying, scripted open outcomes, gates opening, validation,
 * soft eviction and close — run against a pool on random `min`/`max` and timing options. A small model tracks who
 * holds which connection and how each caller ended. After every step:
 *
 * - the stats invariants hold, and never more than `max` fake connections are open or opening;
 * - every caller settled at most once (resolved xor rejected), and one that waits has not
 *   outlived its deadline;
 * - no connection is held by two callers, and every held connection is still checked out;
 * - callers are served first come, first served among those still waiting;
 * - `waiting` and `inUse` agree with the model.
 *
 * At the end the pool is closed and time runs out: every caller settled exactly once, and not one
 * fake connection is left open.
 */
import fc from 'fast-check';
import { isConnectionManagerError } from '../../lib/errors';
import { expireConnections, renewConnections, resetPool } from '../../lib/pool/eviction';
import type { PoolOptions } from '../../lib/options';
import type { Waiter, WaiterQueue } from '../../lib/pool/waiters';
import { createFakePool, type FakeConn, type FakeEntry, type OpenOutcome } from '../helpers/fake-connector';
import { checkInvariants, errorCode, observe, type Observed } from '../helpers/invariants';

/** No signal, an AbortController's, or a signal-like one whose removeEventListener throws (a broken polyfill). */
type SignalKind = 'none' | 'real' | 'broken';

/** Per-call values the pool must refuse with E_INVALID_CONFIG, changing nothing. */
const BAD_TIMEOUTS: readonly unknown[] = ['500', true, 1n, '1e1', Number.NaN, 0, -1, 2 ** 31, Number.POSITIVE_INFINITY, null];
const BAD_SIGNALS: readonly unknown[] = [{}, 'x', 1, { aborted: false }, null];

/** Look-alikes of a held record (or no record at all) that release() must refuse, changing nothing. */
const LOOK_ALIKES: ReadonlyArray<(entry: FakeEntry | undefined) => unknown> = [
  (e) => (e ? { ...e } : {}),
  (e) => (e ? Object.create(e) : undefined),
  (e) => (e ? new Proxy(e, {}) : null),
  () => null,
  () => undefined,
  () => 42,
];

/** A view of `signal` that aborts with it but whose clean-up throws. */
function brokenView(signal: AbortSignal): AbortSignal {
  return {
    get aborted() {
      return signal.aborted;
    },
    get reason() {
      return signal.reason as unknown;
    },
    addEventListener: (type: string, listener: () => void, options?: { once?: boolean }) => signal.addEventListener(type, listener, options),
    removeEventListener: () => {
      throw new TypeError('removeEventListener exploded');
    },
  } as unknown as AbortSignal;
}

type Cmd =
  | { kind: 'acquire'; timeoutMs: number; signal: SignalKind }
  | { kind: 'malformed'; what: 'timeoutMs' | 'signal' | 'release'; variant: number; pick: number }
  | { kind: 'release'; pick: number; tx: 'none' | 'ok' | 'fail' | 'noop'; twice: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'abort'; pick: number }
  | { kind: 'kill'; pick: number; hops: number }
  | { kind: 'script'; outcomes: OpenOutcome[] }
  | { kind: 'gate'; pick: number; fail: boolean; killAfterHops: number | null; acquireAfterHops: number | null }
  | { kind: 'validate'; pick: number; valid: boolean }
  | { kind: 'evict'; which: 'reset' | 'expire' | 'renew'; acquireAfterHops: number | null }
  | { kind: 'close' };

interface Scenario {
  pool: PoolOptions;
  attempts: number;
  /** Outcome of opens nobody scripted. */
  outcome: OpenOutcome;
  commands: Cmd[];
}

/** One acquire() call and what became of it. */
interface Caller {
  readonly n: number;
  readonly timeoutMs: number;
  readonly startedAt: number;
  readonly controller: AbortController | undefined;
  /** Entered the waiting queue (otherwise served or refused at once). */
  queued: boolean;
  /** How many callers were queued when it called (a caller served at once must have found none). */
  readonly queueAhead: number;
  /** Kills done by the time the pool handed it a connection (or refused it). */
  killsAtHandOut: number;
  /** Calls the pool made to the waiter's resolve / reject, in order. */
  readonly calls: Array<'resolve' | 'reject'>;
  result: Observed<FakeEntry>;
  /** It received a connection and has not released it yet. */
  holding: boolean;
  aborted: boolean;
}

const ERROR_CODES = new Set(['E_ACQUIRE_TIMEOUT', 'E_ABORTED', 'E_POOL_CLOSED', 'E_CONNECT', 'E_QUEUE_FULL']);

const outcomeArb: fc.Arbitrary<OpenOutcome> = fc.oneof(
  { arbitrary: fc.constant<OpenOutcome>('ok'), weight: 4 },
  { arbitrary: fc.constant<OpenOutcome>('fail'), weight: 2 },
  { arbitrary: fc.constant<OpenOutcome>('fail-permanent'), weight: 1 },
  { arbitrary: fc.constant<OpenOutcome>('slow'), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 300 }).map((ms): OpenOutcome => ({ slow: ms })), weight: 1 },
  { arbitrary: fc.constant<OpenOutcome>('hang'), weight: 1 },
);

/** Mostly nothing; sometimes a number of promise continuations after which something happens. */
const sometimesHops: fc.Arbitrary<number | null> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 10 }), weight: 1 },
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      timeoutMs: fc.constantFrom(20, 50, 200, 1_000),
      signal: fc.constantFrom<SignalKind>('none', 'real', 'broken'),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      pick: fc.nat(),
      tx: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'ok' as const, 'fail' as const, 'noop' as const),
      twice: fc.boolean(),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 400 }) }), weight: 5 },
  {
    arbitrary: fc.record({ kind: fc.constant('malformed' as const), what: fc.constantFrom('timeoutMs' as const, 'signal' as const, 'release' as const), variant: fc.nat(), pick: fc.nat() }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('kill' as const), pick: fc.nat(), hops: fc.integer({ min: 0, max: 6 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('script' as const), outcomes: fc.array(outcomeArb, { minLength: 1, maxLength: 4 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant('gate' as const),
      pick: fc.nat(),
      fail: fc.boolean(),
      killAfterHops: sometimesHops,
      acquireAfterHops: sometimesHops,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('validate' as const), pick: fc.nat(), valid: fc.boolean() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('evict' as const),
      which: fc.constantFrom('reset' as const, 'expire' as const, 'renew' as const),
      acquireAfterHops: sometimesHops,
    }),
    weight: 1,
  },
);

function insertAt(commands: Cmd[], at: number, cmd: Cmd): Cmd[] {
  return [...commands.slice(0, at), cmd, ...commands.slice(at)];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    max: fc.integer({ min: 1, max: 6 }),
    minWanted: fc.integer({ min: 0, max: 4 }),
    attempts: fc.integer({ min: 1, max: 3 }),
    idleTimeoutMs: fc.constantFrom(0, 400),
    maxLifetimeMs: fc.constantFrom(0, 1_500),
    keepaliveIntervalMs: fc.constantFrom(0, 300),
    validationIdleThresholdMs: fc.constantFrom(0, 200),
    leakDetectionThresholdMs: fc.constantFrom(0, 500),
    maxWaiting: fc.constantFrom(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 0, 2, 5),
    outcome: fc.oneof(fc.constant<OpenOutcome>('ok'), fc.integer({ min: 1, max: 150 }).map((ms): OpenOutcome => ({ slow: ms }))),
    commands: fc.array(cmdArb, { minLength: 1, maxLength: 60, size: 'medium' }),
    /** Where to insert an early close() (after that, callers are refused and releases close). */
    closeAt: fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, { arbitrary: fc.nat(), weight: 1 }),
  })
  .map(({ max, minWanted, attempts, outcome, commands, closeAt, ...timing }) => ({
    pool: {
      ...timing,
      min: Math.min(minWanted, max),
      max,
      createTimeoutMs: 300,
      validationTimeoutMs: 100,
      closeTimeoutMs: 500,
      acquireTimeoutMs: 1_000,
    },
    attempts,
    outcome,
    commands: closeAt === null ? commands : insertAt(commands, closeAt % (commands.length + 1), { kind: 'close' }),
  }));

/** Runs `fn` after `hops` promise continuations (at once for 0). */
function afterHops(hops: number, fn: () => void): void {
  if (hops <= 0) {
    fn();
    return;
  }
  let p = Promise.resolve();
  for (let i = 1; i < hops; i++) p = p.then(() => undefined);
  void p.then(fn);
}

async function runScenario(scenario: Scenario): Promise<void> {
  const { pool, connector, clock } = createFakePool({
    pool: scenario.pool,
    retry: { attempts: scenario.attempts, initialDelayMs: 10, maxDelayMs: 80 },
    outcome: scenario.outcome,
  });
  const max = scenario.pool.max as number;
  const callers: Caller[] = [];
  const violations: string[] = [];
  let closing: Observed<void> | undefined;
  const background: Array<Observed<unknown>> = [];

  // Watch the pool's own resolve/reject calls for every queued caller (a promise would hide a
  // second call), and check FIFO at the moment a caller is served.
  const queue = pool['waiters'] as WaiterQueue<FakeEntry>;
  const push = queue.push.bind(queue);
  let enqueuing: Caller | undefined;
  queue.push = (resolve, reject, timeoutMs, signal, waitMs): Waiter<FakeEntry> => {
    const caller = enqueuing;
    if (!caller) throw new Error('push() outside acquire()');
    caller.queued = true;
    return push(
      (entry) => {
        caller.calls.push('resolve');
        caller.killsAtHandOut = kills;
        checkHandOut(caller, entry);
        const skipped = callers.filter((c) => c.queued && c.n < caller.n && c.calls.length === 0);
        if (skipped.length > 0) violations.push(`caller #${caller.n} served before #${skipped.map((c) => c.n).join(', #')} queued ahead of it`);
        resolve(entry);
      },
      (error) => {
        caller.calls.push('reject');
        reject(error);
      },
      timeoutMs,
      signal,
      waitMs,
    );
  };

  const held = () => callers.filter((c) => c.holding);

  // Connections die between steps and in the middle of the pool's work; remember when.
  let kills = 0;
  const killedAt = new Map<FakeConn, number>();
  const kill = (conn: FakeConn): void => {
    if (conn.dead) return;
    killedAt.set(conn, ++kills);
    connector.killConnection(conn);
  };
  /** What must be true of a connection at the moment the pool hands it over. */
  const checkHandOut = (caller: Caller, entry: FakeEntry): void => {
    if (entry.state !== 'inUse') violations.push(`#${caller.n} got ${entry.id} in state ${entry.state}`);
    const died = killedAt.get(entry.raw as FakeConn);
    if (died !== undefined && died <= caller.killsAtHandOut) violations.push(`#${caller.n} got ${entry.id}, whose connection was dead`);
  };

  const acquire = (timeoutMs: number, signalKind: SignalKind): void => {
    const controller = signalKind !== 'none' ? new AbortController() : undefined;
    const signal = controller && (signalKind === 'broken' ? brokenView(controller.signal) : controller.signal);
    const caller: Caller = {
      n: callers.length + 1,
      timeoutMs,
      startedAt: clock.now(),
      controller,
      queued: false,
      queueAhead: pool.waiting,
      killsAtHandOut: 0,
      calls: [],
      result: undefined as unknown as Observed<FakeEntry>,
      holding: false,
      aborted: false,
    };
    callers.push(caller);
    enqueuing = caller;
    try {
      caller.result = observe(pool.acquire({ timeoutMs, signal }));
    } finally {
      enqueuing = undefined;
    }
    // Served at once (not queued): the hand-out happened inside acquire().
    if (!caller.queued) caller.killsAtHandOut = kills;
    void caller.result.promise.then(
      (entry) => {
        const other = callers.find((c) => c !== caller && c.holding && c.result.value === entry);
        if (other) violations.push(`${entry.id} handed to #${caller.n} while #${other.n} holds it`);
        if (!caller.queued) {
          if (caller.queueAhead > 0) violations.push(`#${caller.n} overtook ${caller.queueAhead} queued caller(s)`);
          checkHandOut(caller, entry);
        }
        caller.holding = true;
      },
      (error: unknown) => {
        if (!isConnectionManagerError(error) || !ERROR_CODES.has(error.code)) {
          violations.push(`#${caller.n} rejected with an unexpected error: ${String(error)}`);
        }
      },
    );
  };

  const check = (step: string): void => {
    if (violations.length > 0) throw new Error(`after ${step}: ${violations.join('; ')}`);
    const s = checkInvariants(pool, connector);
    const waiting = callers.filter((c) => c.queued && c.calls.length === 0);
    if (s.waiting !== waiting.length) throw new Error(`after ${step}: stats say ${s.waiting} waiting, model says ${waiting.length}`);
    for (const c of callers) {
      if (c.calls.length > 1) throw new Error(`after ${step}: caller #${c.n} settled ${c.calls.length} times (${c.calls.join(', ')})`);
      if (c.queued && c.calls.length === 1 && c.result.state === 'pending') throw new Error(`after ${step}: #${c.n} settled but its promise did not`);
      if (c.result.state === 'pending' && clock.now() - c.startedAt >= c.timeoutMs) {
        throw new Error(`after ${step}: #${c.n} still waiting ${clock.now() - c.startedAt} ms after calling with timeoutMs ${c.timeoutMs}`);
      }
      if (c.aborted && c.result.state === 'pending') throw new Error(`after ${step}: #${c.n} still waiting after its abort`);
    }
    const holders = held();
    let heldInUse = 0;
    for (const c of holders) {
      const entry = c.result.value as FakeEntry;
      if (entry.state === 'inUse') heldInUse++;
      else if (pool.isOpen) throw new Error(`after ${step}: #${c.n} holds ${entry.id}, which is ${entry.state}`);
    }
    const reserved = pool.openEntries().filter((e) => e.state === 'reserved').length;
    if (s.inUse !== heldInUse + reserved) {
      throw new Error(`after ${step}: stats say ${s.inUse} in use, model says ${heldInUse} held + ${reserved} reserved`);
    }
    if (connector.peakOccupied > max) throw new Error(`after ${step}: ${connector.peakOccupied} fake connections at once, max ${max}`);
  };

  /** Counts that a refused call must leave as they were. */
  const snapshot = (): string => {
    const { connections: _c, wait: _w, ...rest } = pool.stats();
    return JSON.stringify(rest);
  };
  /** A malformed call: refused with its code, synchronously, changing nothing. */
  const malformed = (cmd: Extract<Cmd, { kind: 'malformed' }>): void => {
    const before = snapshot();
    if (cmd.what === 'release') {
      const holders = held();
      const entry = holders[cmd.pick % Math.max(1, holders.length)]?.result.value;
      const state = entry?.state;
      const fake = (LOOK_ALIKES[cmd.variant % LOOK_ALIKES.length] as (e: FakeEntry | undefined) => unknown)(entry);
      let code: string | undefined = 'accepted';
      try {
        pool.release(fake as FakeEntry);
      } catch (error) {
        code = errorCode(error) ?? String(error);
      }
      if (code !== 'E_NOT_CHECKED_OUT') violations.push(`release of a look-alike (variant ${cmd.variant % LOOK_ALIKES.length}) gave ${code}`);
      if (pool.owns(fake)) violations.push('owns() accepted a look-alike');
      if (entry && entry.state !== state) violations.push(`a look-alike release moved ${entry.id} from ${state} to ${entry.state}`);
    } else {
      const bad = cmd.what === 'timeoutMs' ? BAD_TIMEOUTS[cmd.variant % BAD_TIMEOUTS.length] : BAD_SIGNALS[cmd.variant % BAD_SIGNALS.length];
      // Never queued: the wrapped push() would throw outside acquire(), failing the check below.
      const result = observe(pool.acquire({ [cmd.what]: bad } as never));
      void result.promise.then(
        () => violations.push(`acquire with ${cmd.what} ${String(bad)} resolved`),
        (error: unknown) => {
          if (errorCode(error) !== 'E_INVALID_CONFIG') violations.push(`acquire with ${cmd.what} ${String(bad)} gave ${errorCode(error) ?? String(error)}`);
        },
      );
    }
    const after = snapshot();
    if (after !== before) violations.push(`a malformed ${cmd.what} changed the pool: ${before} -> ${after}`);
  };

  const exec = (cmd: Cmd): void => {
    switch (cmd.kind) {
      case 'acquire':
        acquire(cmd.timeoutMs, cmd.signal);
        break;
      case 'release': {
        const holders = held();
        const caller = holders[cmd.pick % Math.max(1, holders.length)];
        if (!caller) break;
        const entry = caller.result.value as FakeEntry;
        const raw = entry.raw as FakeConn;
        if (cmd.tx !== 'none' && entry.state === 'inUse') {
          raw.inTransaction = true;
          raw.rollback = cmd.tx;
        }
        caller.holding = false;
        try {
          pool.release(entry);
        } catch (error) {
          violations.push(`release of ${entry.id} by #${caller.n} threw ${String(error)}`);
        }
        // Releasing again is refused, as long as nobody else has been given the connection since.
        if (cmd.twice && entry.state !== 'inUse' && pool.isOpen) {
          let code: string | undefined;
          try {
            pool.release(entry);
          } catch (error) {
            code = errorCode(error);
          }
          if (code !== 'E_NOT_CHECKED_OUT') violations.push(`second release of ${entry.id} gave ${code ?? 'no error'}`);
        }
        break;
      }
      case 'malformed':
        malformed(cmd);
        break;
      case 'advance':
        break; // done by the caller of exec, which awaits
      case 'abort': {
        const pending = callers.filter((c) => c.controller && c.result.state === 'pending');
        const caller = pending[cmd.pick % Math.max(1, pending.length)];
        if (!caller) break;
        caller.aborted = true;
        caller.controller?.abort();
        void caller.result.promise.then(
          () => violations.push(`#${caller.n} resolved after its abort`),
          (error: unknown) => {
            if (errorCode(error) !== 'E_ABORTED') violations.push(`#${caller.n} aborted but rejected with ${errorCode(error)}`);
          },
        );
        break;
      }
      case 'kill':
        // Now, or a few promise continuations later: in the middle of whatever the pool is doing.
        afterHops(cmd.hops, () => {
          const open = connector.openConnections();
          const conn = open[cmd.pick % Math.max(1, open.length)];
          if (conn) kill(conn);
        });
        break;
      case 'script':
        connector.enqueue(...cmd.outcomes);
        break;
      case 'gate': {
        const gates = connector.waitingGates();
        const gate = gates[cmd.pick % Math.max(1, gates.length)];
        if (gate && cmd.fail) gate.fail();
        else gate?.release();
        // The new connection dies while the pool is still taking it in.
        if (gate?.conn && cmd.killAfterHops !== null) {
          const conn = gate.conn;
          afterHops(cmd.killAfterHops, () => kill(conn));
        }
        // A caller arrives while the pool is still taking the new connection in.
        if (cmd.acquireAfterHops !== null) afterHops(cmd.acquireAfterHops, () => acquire(1_000, 'none'));
        break;
      }
      case 'validate': {
        // isConnectionValid() on any open connection, held or not; a failed check retires it.
        const open = pool.openEntries();
        const entry = open[cmd.pick % Math.max(1, open.length)];
        if (!entry) break;
        (entry.raw as FakeConn).valid = cmd.valid;
        background.push(observe(pool.validate(entry)));
        break;
      }
      case 'evict': {
        const run: Promise<unknown> = cmd.which === 'reset' ? resetPool(pool) : cmd.which === 'expire' ? expireConnections(pool, clock) : renewConnections(pool);
        background.push(observe(run));
        if (cmd.acquireAfterHops !== null) afterHops(cmd.acquireAfterHops, () => acquire(1_000, 'none'));
        break;
      }
      case 'close':
        closing ??= observe(pool.close());
        break;
    }
  };

  for (const [i, cmd] of scenario.commands.entries()) {
    exec(cmd);
    await clock.advanceAsync(cmd.kind === 'advance' ? cmd.ms : 0);
    check(`step ${i} ${JSON.stringify(cmd)}`);
  }

  // The end: give everything back, close, and let every timer run out.
  for (const c of held()) {
    c.holding = false;
    pool.release(c.result.value as FakeEntry);
  }
  closing ??= observe(pool.close());
  const o = pool.options;
  await clock.advanceAsync(o.closeTimeoutMs + o.createTimeoutMs + 2 * o.validationTimeoutMs + 1_000);
  for (const gate of connector.waitingGates()) gate.release(); // a late 'slow' open: closed on arrival
  await clock.advanceAsync(1_000);
  check('close');
  if (closing.state !== 'resolved') throw new Error('close() did not resolve');
  for (const c of callers) {
    if (c.result.state === 'pending') throw new Error(`caller #${c.n} never settled`);
    if (c.queued && c.calls.length !== 1) throw new Error(`caller #${c.n} settled ${c.calls.length} times`);
  }
  for (const b of background) if (b.state === 'rejected') throw new Error(`a soft eviction rejected: ${String(b.error)}`);
  if (connector.openCount !== 0) throw new Error(`${connector.openCount} fake connection(s) left open after close`);
  if (connector.inFlight !== 0) throw new Error(`${connector.inFlight} open(s) still in flight after close`);
  if (connector.doubleCloses !== 0) throw new Error(`${connector.doubleCloses} connection(s) closed twice`);
  if (pool.stats().total !== 0 || pool.stats().pending !== 0) throw new Error('the closed pool still counts connections');
}

describe('pool model', () => {
  test('random command sequences keep every invariant and leave nothing open after close', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: 250 });
  });
});

// ── admission ────────────────────────────────────────────────────────────────────────────────
// Random tags, priorities and quotas (with fair share and aging on or off): after every step no
// quota is exceeded, no caller settled twice, and no caller that may be served is left waiting
// while a connection sits idle. At the end every caller settled exactly once.

type AdmCmd =
  | { kind: 'acquire'; tenant: number; feature: number; priority: 'high' | 'normal' | 'low'; timeoutMs: number; abortable: boolean }
  | { kind: 'release'; pick: number }
  | { kind: 'abort'; pick: number }
  | { kind: 'advance'; ms: number };

const TENANTS = ['a', 'b', 'c', 'd'];

const admScenarioArb: fc.Arbitrary<AdmScenario> = fc.record({
  max: fc.integer({ min: 1, max: 4 }),
  quotas: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
  featureQuota: fc.integer({ min: 1, max: 4 }),
  fairShare: fc.boolean(),
  agingMs: fc.constantFrom(0, 50),
  commands: fc.array(
    fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('acquire' as const), tenant: fc.integer({ min: 0, max: 3 }), feature: fc.integer({ min: 0, max: 1 }), priority: fc.constantFrom('high' as const, 'normal' as const, 'low' as const), timeoutMs: fc.integer({ min: 1, max: 400 }), abortable: fc.boolean() }), weight: 5 },
      { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 4 },
      { arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 200 }) }), weight: 2 },
    ),
    { maxLength: 60 },
  ),
});

interface AdmScenario {
  max: number;
  quotas: [number, number];
  /** Quota of each value of a second key, so one release can free two waiters. */
  featureQuota: number;
  fairShare: boolean;
  agingMs: number;
  commands: AdmCmd[];
}

async function runAdmissionScenario(s: AdmScenario): Promise<void> {
  const { TagAdmission } = await import('../../lib/admission/policy');
  const { resolveAdmission } = await import('../../lib/options-admission');
  // Tenant a has quotas[0], every other tenant the default quotas[1]; d has none (no tenant tag).
  const quota = (t: string): number => (t === 'a' ? s.quotas[0] : t === 'd' ? Infinity : s.quotas[1]);
  const { pool, clock, connector } = createFakePool({ pool: { min: 0, max: s.max, validationIdleThresholdMs: 0, keepaliveIntervalMs: 0 } });
  pool.useAdmission(new TagAdmission<FakeEntry>(resolveAdmission({
    quotas: { tenant: { default: s.quotas[1], a: s.quotas[0] }, feature: { default: s.featureQuota } },
    fairShare: s.fairShare ? 'tenant' : undefined,
    priorityAgingMs: s.agingMs,
  })!, clock));
  interface AdmCaller { tenant: string; feature: string; result: Observed<FakeEntry>; controller: AbortController | undefined; holding: boolean; settlements: number }
  const callers: AdmCaller[] = [];
  const check = (where: string): void => {
    checkInvariants(pool, connector);
    const held = new Map<string, number>();
    const byFeature = new Map<string, number>();
    for (const c of callers) {
      if (c.settlements > 1) throw new Error(`${where}: a caller settled ${c.settlements} times`);
      if (c.holding) held.set(c.tenant, (held.get(c.tenant) ?? 0) + 1);
      if (c.holding) byFeature.set(c.feature, (byFeature.get(c.feature) ?? 0) + 1);
    }
    for (const [t, n] of held) if (n > quota(t)) throw new Error(`${where}: tenant ${t} holds ${n}, over its quota ${quota(t)}`);
    for (const [f, n] of byFeature) if (n > s.featureQuota) throw new Error(`${where}: feature ${f} holds ${n}, over its quota ${s.featureQuota}`);
    const mayHold = (c: AdmCaller): boolean => (held.get(c.tenant) ?? 0) < quota(c.tenant) && (byFeature.get(c.feature) ?? 0) < s.featureQuota;
    const stats = pool.stats();
    for (const t of ['a', 'b', 'c']) {
      if ((stats.tags?.tenant?.[t]?.inUse ?? 0) !== (held.get(t) ?? 0)) throw new Error(`${where}: stats say ${t} holds ${stats.tags?.tenant?.[t]?.inUse}`);
    }
    if (stats.idle > 0) {
      const servable = callers.find((c) => c.result.state === 'pending' && mayHold(c));
      if (servable) throw new Error(`${where}: ${stats.idle} idle while a caller of tenant ${servable.tenant} that may be served waits`);
    }
  };
  for (const [i, cmd] of s.commands.entries()) {
    switch (cmd.kind) {
      case 'acquire': {
        const tenant = TENANTS[cmd.tenant];
        const feature = ['x', 'y'][cmd.feature];
        const controller = cmd.abortable ? new AbortController() : undefined;
        const caller: AdmCaller = { tenant, feature, controller, holding: false, settlements: 0, result: undefined as never };
        const p = pool.acquire({ tags: tenant === 'd' ? { feature } : { tenant, feature }, priority: cmd.priority, timeoutMs: cmd.timeoutMs, signal: controller?.signal });
        caller.result = observe(p);
        p.then(() => {
          caller.settlements++;
          caller.holding = true;
        }, () => caller.settlements++);
        callers.push(caller);
        break;
      }
      case 'release': {
        const holding = callers.filter((c) => c.holding);
        const c = holding[cmd.pick % Math.max(1, holding.length)];
        if (c) {
          c.holding = false;
          pool.release(c.result.value as FakeEntry);
        }
        break;
      }
      case 'abort': {
        const waiting = callers.filter((c) => c.result.state === 'pending' && c.controller);
        waiting[cmd.pick % Math.max(1, waiting.length)]?.controller?.abort();
        break;
      }
    }
    await clock.advanceAsync(cmd.kind === 'advance' ? cmd.ms : 0);
    check(`step ${i} ${JSON.stringify(cmd)}`);
  }
  for (const c of callers.filter((x) => x.holding)) {
    c.holding = false;
    pool.release(c.result.value as FakeEntry);
  }
  await clock.advanceAsync(1_000);
  check('end');
  for (const c of callers) if (c.settlements !== 1) throw new Error(`a caller settled ${c.settlements} times`);
  const closing = observe(pool.close());
  await clock.advanceAsync(pool.options.closeTimeoutMs + 1_000);
  if (closing.state !== 'resolved' || connector.openCount !== 0) throw new Error('close() left connections open');
}

describe('pool model with admission', () => {
  test('random tags, priorities and quotas: no quota exceeded, every caller ends once, no servable caller waits beside an idle connection', async () => {
    await fc.assert(fc.asyncProperty(admScenarioArb, runAdmissionScenario), { numRuns: 200 });
  });
});
