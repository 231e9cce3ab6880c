/**
 * What a driver connection carries for observability, installed once when its record is attached
 * (`PgPooledConnection.attach`): the session's `application_name` set to `<prefix>:<N>` (N of the
 * record id `conn_<N>_<ns>`), and the query and use-time hooks of the pool that owns it.
 *
 * The hooks are found by the owning pool object (a WeakMap the manager fills as it makes pools), so
 * the driver needs no new parameter and the generic pool knows nothing of metrics.
 */

/** PostgreSQL keeps the first 63 bytes of `application_name` (NAMEDATALEN - 1). */
const MAX_NAME_BYTES = 63;

/** Measures the statements of one pool's checked-out connections. */
export interface QueryMeter {
  /** A statement started on `record`; returns what to hand back to `finished` (its start, its series). */
  started(record: object): unknown;
  /** The statement `started` returned `token` for ended; `error` is its error when it failed. */
  finished(token: unknown, error: unknown): void;
}

/** The hooks of one pool's connections (the use time comes through the pool's observer). */
export interface ConnectionHooks {
  /** Counts and times every statement run while the connection is checked out; none when undefined. */
  query: QueryMeter | undefined;
  /** A connection was opened in `ms` milliseconds (`db.client.connection.create_time`). */
  created: ((ms: number) => void) | undefined;
}

const hooksByPool = new WeakMap<object, ConnectionHooks>();

/** Installs `hooks` for the connections `pool` opens from now on (before its first open completes). */
export function hookPool(pool: object, hooks: ConnectionHooks): void {
  hooksByPool.set(pool, hooks);
}

/** The hooks of `pool`'s connections, if any. */
export function hooksOf(pool: object): ConnectionHooks | undefined {
  return hooksByPool.get(pool);
}

/** The pg client fields read here, each guarded. */
interface PgSession {
  processID?: unknown;
  connectionParameters?: { application_name?: unknown };
  query: (...args: unknown[]) => unknown;
}

/** `<prefix>:<n>`, the prefix cut (at a character boundary) so the whole fits in 63 bytes. */
export function sessionName(prefix: string, n: number): string {
  const suffix = `:${n}`;
  let cut = prefix;
  while (Buffer.byteLength(cut) + suffix.length > MAX_NAME_BYTES) cut = cut.slice(0, -1);
  return cut + suffix;
}

/**
 * Renames the session to `<prefix>:<n>`, the prefix being the `application_name` it connected
 * with. Not awaited: pg runs a client's statements in order, so it ends before the first
 * statement of whoever gets the connection (the cost: one round trip queued ahead of that
 * statement; the open itself does not wait). A name set by `pool.afterCreate` is kept (the
 * statement changes only a session still named by its startup setting). A failure is ignored:
 * the session then keeps its startup name and is listed by `inspect()` without server fields.
 */
export function nameSession(raw: unknown, n: number): void {
  const session = raw as Partial<PgSession> | null;
  const prefix = session?.connectionParameters?.application_name;
  if (typeof prefix !== 'string' || prefix === '' || typeof session?.query !== 'function') return;
  try {
    const done = session.query(
      "SELECT set_config('application_name', $1, false) WHERE current_setting('application_name') = $2",
      [sessionName(prefix, n), prefix.slice(0, MAX_NAME_BYTES)],
    );
    if (done instanceof Promise) done.catch(() => undefined);
  } catch {
    // A client that cannot run it keeps its startup name.
  }
}

/** The server process id of a pg client's session, once connected. */
export function backendPidOf(raw: unknown): number | undefined {
  const pid = (raw as Partial<PgSession> | null)?.processID;
  return typeof pid === 'number' ? pid : undefined;
}

/** What the wrapper needs of the record: whether its holder is the one running the statement. */
export interface MeteredRecord {
  readonly state: string;
}

/**
 * Wraps the client's `query` so each statement run while `record` is checked out is measured
 * (the pool's own checks — validation, keepalive, rollback on release — are not). Every path ends
 * here: `conn.query`, `conn.db`, `manager.knex`, `readKnex`, `manager.query` and prepared
 * statements. A streaming query (an object with `submit`, as pg-query-stream) passes through unmeasured.
 *
 * Cost, measured with scripts/measure-query-metrics.ts: 0.13 µs of CPU per statement (two clock
 * reads, a few additions to plain numbers), 0.5% of the ~27 µs of client CPU a `SELECT 1` through
 * the manager takes; throughput on vs off 2.8-3.3% lower on a quiet machine, where the noise was
 * 1.3% (docs/benchmarks.md has the runs).
 */
export function meterQueries(raw: unknown, record: MeteredRecord, meter: QueryMeter): void {
  const session = raw as PgSession;
  const original = session.query;
  if (typeof original !== 'function') return;
  session.query = function meteredQuery(this: unknown, text?: unknown, values?: unknown, callback?: unknown): unknown {
    const n = arguments.length;
    // Pool checks, streams (a `submit`-able object) and a missing statement (pg throws at once) pass through.
    if (record.state !== 'inUse' || text === null || text === undefined || (typeof text === 'object' && typeof (text as { submit?: unknown }).submit === 'function')) {
      return original.apply(this, n === 1 ? [text] : n === 2 ? [text, values] : [text, values, callback]);
    }
    const startedAt = meter.started(record);
    try {
      // knex's dialect passes a callback (last argument): measured when it is called.
      if (typeof callback === 'function' || (n === 2 && typeof values === 'function')) {
        const done = (typeof callback === 'function' ? callback : values) as (error: unknown, result: unknown) => void;
        const measured = (error: unknown, result: unknown): void => {
          meter.finished(startedAt, error ?? undefined);
          done(error, result);
        };
        return typeof callback === 'function' ? original.call(this, text, values, measured) : original.call(this, text, measured);
      }
      // The promise form is run as the callback form under a promise of our own: pg then makes no
      // promise itself, so measuring adds no promise reaction to the statement. A pg-like client that
      // answers with a promise all the same (a test double) is followed through that promise.
      return new Promise((resolve, reject) => {
        let settled = false;
        const end = (failed: boolean, error: unknown, result: unknown): void => {
          if (settled) return;
          settled = true;
          meter.finished(startedAt, failed ? error : undefined);
          if (failed) reject(error as Error);
          else resolve(result);
        };
        const measured = (error: unknown, result: unknown): void => end(error !== null && error !== undefined, error, result);
        let returned: unknown;
        try {
          returned = n === 1 ? original.call(this, text, measured) : original.call(this, text, values, measured);
        } catch (error) {
          end(true, error, undefined);
          return;
        }
        if (typeof (returned as { then?: unknown } | undefined)?.then === 'function') {
          (returned as Promise<unknown>).then((result) => end(false, undefined, result), (error: unknown) => end(true, error, undefined));
        }
      });
    } catch (error) {
      meter.finished(startedAt, error);
      throw error;
    }
  };
}

/**
 * Times each open of `connector` (connect, session setup, `pool.afterCreate`) for the hooks of the
 * pool `owner()` returns; the pool is made after its connector, hence the function.
 */
export function timeOpens<C>(connector: { open(timeoutMs: number): Promise<C> }, owner: () => object | undefined): void {
  const open = connector.open.bind(connector);
  connector.open = (timeoutMs: number): Promise<C> => {
    const startedAt = performance.now();
    // The hooks are looked up at the end: a pool's first opens start before the manager installs them.
    return open(timeoutMs).then((raw) => {
      const pool = owner();
      const created = pool === undefined ? undefined : hooksByPool.get(pool)?.created;
      created?.(performance.now() - startedAt);
      return raw;
    });
  };
}
