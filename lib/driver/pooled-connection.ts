/**
 * The record users hold: a pool entry for a node-postgres client, with the two ways to use it —
 * `query()` straight to the driver (the fast path) and `db`, knex bound to this connection.
 */
import type { Knex } from 'knex';
import type { Client as PgClient, QueryResult } from 'pg';
import { PoolEntry, type EntryState } from '../pool/entry';
import type { StatementCacheSettings } from '../statement-cache/cache';
import { attachStatementCache } from '../statement-cache/client';
import type { TransactionModeGuard } from '../pgbouncer/transaction-mode';
import { backendPidOf, hooksOf, meterQueries, nameSession } from '../observability/session';

/** Rows as plain objects keyed by column name. */
export type Row = Record<string, unknown>;

/** One physical connection, as handed out by `getConnection()`. */
export interface PooledConnection {
  /** `conn_<N>_<unix time in nanoseconds>`; N counts from 1 and is never reused in the process. */
  readonly id: string;
  /** When the connection was opened. */
  readonly createdAt: Date;
  /** When it was last checked out or returned. */
  readonly lastUsed: Date;
  /** True while checked out (or busy with pool maintenance). */
  readonly inUse: boolean;
  /** The server process id of its session (`pg_stat_activity.pid`; see `manager.inspect()`). */
  readonly backendPid?: number;
  /**
   * Runs `sql` on this connection directly through the driver, with `$1`-style placeholders.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when called after the connection was released.
   */
  query<R extends Row = Row>(sql: string, bindings?: readonly unknown[]): Promise<QueryResult<R>>;
  /** knex bound to this connection: query builder, `raw` and `transaction` all run on it. */
  readonly db: Knex;
}

/** The socket under a pg client, whose reference keeps the process alive. */
interface Referable {
  ref(): unknown;
  unref(): unknown;
}

/** The client's socket (what pg's `Client.ref()` reaches through two calls), if it has one. */
function socketOf(raw: PgClient): Referable | undefined {
  const stream = (raw as unknown as { connection?: { stream?: Partial<Referable> } }).connection?.stream;
  return typeof stream?.ref === 'function' && typeof stream.unref === 'function' ? (stream as Referable) : undefined;
}

/** Where a driver client records the entry that owns it. */
export const ENTRY = Symbol('knex-connection-manager.entry');

/** A pg client tagged with its record, and the marks knex reads and writes on it. */
export type TaggedClient = PgClient & {
  [ENTRY]?: PgPooledConnection;
  /** knex's connection id, shown in its `query`, `query-response` and `query-error` events. */
  __knexUid?: string;
  /** Set by knex when it gives up on the session (see `markDisposal`). */
  __knex__disposed?: unknown;
};

/**
 * Makes knex's "disposed" mark on `raw` retire `entry`. knex sets `__knex__disposed` when a query
 * timed out without being cancelled (the statement may still be running, so the session is useless
 * until it ends) or when the driver saw the socket fail; its own pools then discard the connection.
 * An accessor turns that one assignment into the pool's retire mark, so release needs no extra check:
 * the record closes (reason `disposed`) the moment it is given back, instead of being lent again.
 * A dead socket is also reported through the connector's watch and closes as `broken` first.
 */
function markDisposal(raw: TaggedClient, entry: PgPooledConnection): void {
  let mark: unknown = raw.__knex__disposed;
  Object.defineProperty(raw, '__knex__disposed', {
    configurable: true,
    enumerable: false,
    get: () => mark,
    set: (value: unknown) => {
      mark = value;
      // A reason already given (renewal, expiry) stands: the record closes once either way.
      if (value !== undefined && !entry.retire) {
        entry.retire = true;
        entry.retireReason = 'disposed';
      }
    },
  });
}

export class PgPooledConnection extends PoolEntry<PgClient> implements PooledConnection {
  private boundDb: Knex | undefined = undefined;
  /** The socket referenced while the record is busy (see `transition`); undefined until attached. */
  private socket: Referable | undefined = undefined;
  /** Whether `socket` currently keeps the process alive (sockets start referenced). */
  private referenced = true;

  constructor(
    owner: object,
    private readonly bind: (entry: PgPooledConnection) => Knex,
    /** The pool's statement cache settings; undefined with the cache off. */
    private readonly statementCache?: StatementCacheSettings,
    /** Behind PgBouncer in transaction mode only: warns about session state outside a transaction. */
    private readonly sessionGuard?: TransactionModeGuard,
  ) {
    super(owner);
  }

  override attach(raw: PgClient): void {
    super.attach(raw);
    const tagged = raw as TaggedClient;
    tagged[ENTRY] = this;
    // As knex's own pools do, so its query events name the connection (here: the record's id).
    tagged.__knexUid = this.id;
    markDisposal(tagged, this);
    this.socket = socketOf(raw);
    // application_name `<prefix>:<N>` (lib/observability), sent before the PgBouncer guard watches
    // the session, so the rename is never taken for the application's own SET.
    nameSession(raw, this.seq);
    // Attached after the session set-up (pool.afterCreate ran unnamed): the cache is the record's from here on.
    if (this.statementCache !== undefined) attachStatementCache(raw, this.statementCache);
    if (this.sessionGuard !== undefined) this.sessionGuard.watch(raw);
    // The query metrics wrap last: they call the `query` found now, the guard's included.
    const meter = hooksOf(this.owner)?.query;
    if (meter !== undefined) meterQueries(raw, this, meter);
  }

  /** The server process id of the session (`pg_stat_activity.pid`), once connected. */
  get backendPid(): number | undefined {
    return backendPidOf(this.raw);
  }

  /**
   * An idle connection does not keep the process alive (as pg-pool's `allowExitOnIdle`): its socket
   * is unreferenced while idle and referenced in every other open state, so a script whose work is done
   * exits without closing the manager, while a query in flight, a check someone waits for, or a
   * close being awaited is never cut short.
   */
  override transition(next: EntryState): void {
    super.transition(next);
    // A record still opening (or whose open failed) has no socket yet; a closed one needs none.
    const socket = this.socket;
    if (socket === undefined || next === 'closed') return;
    const keepAlive = next !== 'idle';
    if (keepAlive !== this.referenced) {
      this.referenced = keepAlive;
      if (keepAlive) socket.ref();
      else socket.unref();
    }
  }

  query<R extends Row = Row>(sql: string, bindings?: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.state !== 'inUse') {
      try {
        this.assertLeased();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return (this.raw as PgClient).query<R>(sql, bindings as unknown[] | undefined);
  }

  get db(): Knex {
    return (this.boundDb ??= this.bind(this));
  }
}
