/**
 * The record users hold: a pool entry for a node-postgres client, with the two ways to use it —
 * `query()` straight to the driver (the fast path) and `db`, knex bound to this connection.
 */
import type { Knex } from 'knex';
import type { Client as PgClient, QueryResult } from 'pg';
import { PoolEntry } from '../pool/entry';

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
  /**
   * Runs `sql` on this connection directly through the driver, with `$1`-style placeholders.
   * @throws ConnectionManagerError `E_NOT_CHECKED_OUT` when called after the connection was released.
   */
  query<R extends Row = Row>(sql: string, bindings?: readonly unknown[]): Promise<QueryResult<R>>;
  /** knex bound to this connection: query builder, `raw` and `transaction` all run on it. */
  readonly db: Knex;
}

/** Where a driver client records the entry that owns it. */
export const ENTRY = Symbol('knex-connection-manager.entry');

/** A pg client tagged with its record. */
export type TaggedClient = PgClient & { [ENTRY]?: PgPooledConnection };

export class PgPooledConnection extends PoolEntry<PgClient> implements PooledConnection {
  private boundDb: Knex | undefined = undefined;

  constructor(
    owner: object,
    private readonly bind: (entry: PgPooledConnection) => Knex,
  ) {
    super(owner);
  }

  override attach(raw: PgClient): void {
    super.attach(raw);
    (raw as TaggedClient)[ENTRY] = this;
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
