/**
 * Invariants that hold at every observable moment (docs: PoolStats), checked from `pool.stats()`
 * and, when given, from what the fake connector saw physically. Throws a plain Error naming the
 * broken invariant and the snapshot, so it works inside jest tests and fast-check properties alike.
 */
import type { PoolStats } from '../../lib/pool/stats';
import { createFakePool, type FakePoolParams, type FakePoolSetup } from './fake-connector';

const ID_PATTERN = /^conn_(\d+)_(\d+)$/;

/** What the checks need from a pool. */
export interface StatsSource {
  stats(): PoolStats;
}

/** What the checks need from a connector (the fake one provides it). */
export interface PhysicalCounts {
  /** Connections physically open now. */
  readonly openCount: number;
  /** Opens in progress now. */
  readonly inFlight: number;
}

/** The N of `conn_<N>_<ns>`; throws when `id` does not have that form. */
export function connectionNumber(id: string): number {
  const match = ID_PATTERN.exec(id);
  if (!match) throw new Error(`connection id ${JSON.stringify(id)} does not match conn_<N>_<ns>`);
  return Number(match[1]);
}

export function checkInvariants(pool: StatsSource, connector?: PhysicalCounts): PoolStats {
  const s = pool.stats();
  const fail = (what: string): never => {
    const { connections, counters: _counters, wait: _wait, ...counts } = s;
    throw new Error(`Pool invariant broken: ${what}\n  counts: ${JSON.stringify(counts)}\n  ids: ${connections.map((c) => c.id).join(', ')}`);
  };
  for (const key of ['total', 'idle', 'inUse', 'pending', 'waiting'] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) fail(`${key} is ${s[key]}`);
  }
  if (s.total !== s.idle + s.inUse) fail(`total (${s.total}) !== idle (${s.idle}) + inUse (${s.inUse})`);
  if (s.total + s.pending > s.max) fail(`total (${s.total}) + pending (${s.pending}) > max (${s.max})`);
  if (s.connections.length !== s.total) fail(`connections.length (${s.connections.length}) !== total (${s.total})`);
  if (s.connections.filter((c) => c.inUse).length !== s.inUse) fail('connections marked inUse do not add up to inUse');

  const seen = new Set<string>();
  let previous = 0;
  for (const c of s.connections) {
    if (seen.has(c.id)) fail(`id ${c.id} appears twice`);
    seen.add(c.id);
    if (!ID_PATTERN.test(c.id)) fail(`id ${JSON.stringify(c.id)} does not match conn_<N>_<ns>`);
    const n = connectionNumber(c.id);
    if (n <= previous) fail(`connections not in creation order: ${c.id} after conn_${previous}_…`);
    previous = n;
    if (c.ageMs < 0 || c.idleMs < 0) fail(`negative age or idle time for ${c.id}`);
  }

  if (connector) {
    if (connector.openCount > s.max) fail(`${connector.openCount} connections physically open, max is ${s.max}`);
    if (connector.openCount + connector.inFlight > s.max) {
      fail(`${connector.openCount} physically open + ${connector.inFlight} being opened > max ${s.max}`);
    }
    // Every connection the pool counts as open is physically open (closing ones may still be, too).
    if (connector.openCount < s.total) fail(`pool counts ${s.total} open but only ${connector.openCount} are physically open`);
  }
  return s;
}

/**
 * For a spec file: returns a factory of fake pools and registers an `afterEach` that, for every
 * pool the test made, checks the invariants, closes the pool (advancing fake time past every
 * timeout), and asserts that nothing is left: no open fake connection, no open in flight, no
 * connection closed twice.
 */
export function checkedFakePools(): (params?: FakePoolParams) => FakePoolSetup {
  const live: FakePoolSetup[] = [];
  afterEach(async () => {
    const setups = live.splice(0);
    for (const { pool, connector, clock } of setups) {
      checkInvariants(pool, connector);
      let closed = false;
      void pool.close().then(() => (closed = true));
      const o = pool.options;
      await clock.advanceAsync(o.closeTimeoutMs + o.createTimeoutMs + 2 * o.validationTimeoutMs + 1);
      if (!closed) throw new Error(`close() did not resolve: ${JSON.stringify({ ...pool.stats(), connections: undefined, counters: undefined })}`);
      checkInvariants(pool, connector);
      if (connector.openCount !== 0) throw new Error(`${connector.openCount} fake connection(s) left open after close()`);
      if (connector.inFlight !== 0) throw new Error(`${connector.inFlight} open(s) still in flight after close()`);
      if (connector.doubleCloses !== 0) throw new Error(`${connector.doubleCloses} connection(s) closed twice`);
    }
  });
  return (params) => {
    const setup = createFakePool(params);
    live.push(setup);
    return setup;
  };
}

/** The outcome of a promise, readable synchronously once continuations have run. */
export interface Observed<T> {
  state: 'pending' | 'resolved' | 'rejected';
  value: T | undefined;
  error: unknown;
  /** How many times it settled (a promise settles once; kept to catch misuse of raw callbacks). */
  settlements: number;
  /** The promise itself, for `await`. */
  promise: Promise<T>;
}

/** Watches `promise` without leaving a rejection unhandled. */
export function observe<T>(promise: Promise<T>): Observed<T> {
  const o: Observed<T> = { state: 'pending', value: undefined, error: undefined, settlements: 0, promise };
  promise.then(
    (value) => {
      o.settlements++;
      o.state = 'resolved';
      o.value = value;
    },
    (error: unknown) => {
      o.settlements++;
      o.state = 'rejected';
      o.error = error;
    },
  );
  return o;
}

/** The `code` of a rejection, or undefined. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
