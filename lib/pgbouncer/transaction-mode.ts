/**
 * Behind PgBouncer in transaction mode, a server session belongs to a client only for the length of
 * a transaction: a statement that leaves state in the session outside a transaction (a setting, a
 * temporary table, LISTEN, a named prepared statement, a session advisory lock, a held cursor)
 * leaves it on a server session the next statement of the same lease may not reach, and that
 * another client may. The guard watches the statements sent on each pooled connection and warns once
 * per kind. It exists only with `pgbouncer: 'transaction'`: otherwise no connection is watched and
 * the lease path is untouched. docs/fleet.md says what breaks and what to do instead.
 */
import type { Logger } from 'winston';
import type { Client as PgClient } from 'pg';
import { classifyStatement } from '../routing/classify';

/** The kinds of session state that transaction pooling loses. */
export type SessionPinnedKind = 'set' | 'temp-table' | 'listen' | 'prepare' | 'advisory-lock' | 'cursor';

/** What goes wrong with each kind behind PgBouncer in transaction mode, and what to do instead. */
export const TRANSACTION_MODE_ADVICE: Readonly<Record<SessionPinnedKind, string>> = Object.freeze({
  set:
    'SET outside a transaction changes whichever server session PgBouncer lent for that one statement; the next ' +
    'statement may run on another one, and another client may inherit the setting. Use SET LOCAL inside a ' +
    'transaction, or put the setting in the connection options.',
  'temp-table':
    'A temporary table created outside a transaction lives in a server session the next statement may not reach. ' +
    'Create and use it inside one transaction (ON COMMIT DROP).',
  listen:
    'LISTEN outside a transaction subscribes a server session that PgBouncer lends to other clients; the ' +
    'notifications are lost. Listen on a direct connection to PostgreSQL.',
  prepare:
    'A named prepared statement (PREPARE / EXECUTE / DEALLOCATE) lives in one server session; the next statement may ' +
    'run on another one. Use parameterised queries, or PREPARE and EXECUTE inside one transaction.',
  'advisory-lock':
    'A session advisory lock (pg_advisory_lock) is held by a server session that PgBouncer lends to other clients, ' +
    'and the unlock may reach another session. Use pg_advisory_xact_lock inside a transaction.',
  cursor:
    'A cursor used outside a transaction (DECLARE … WITH HOLD, FETCH) lives in one server session; the next FETCH ' +
    'may reach another one. Declare and fetch inside one transaction.',
});

const KIND_COUNT = Object.keys(TRANSACTION_MODE_ADVICE).length;
/** `SET LOCAL` and `SET TRANSACTION` last until the transaction ends: harmless, even outside one. */
const TRANSACTION_SCOPED_SET = /^\s*set\s+(?:local|transaction)\b/i;
/** The session-level advisory lock functions (the `_xact_` ones end with the transaction). */
const SESSION_ADVISORY = /\bpg_(?:try_)?advisory_(?:un)?lock(?:_shared|_all)?\s*\(/i;

/** Statements that start like most of an application's: they pin nothing unless MAY_PIN_INSIDE matches. */
const PLAIN_HEAD = /^\s*(?:select|insert|update|delete|with|values|table|merge)\b/i;
/** What a plain-looking statement needs to contain to pin anything: a lock, a setting, `INTO TEMP`. */
const MAY_PIN_INSIDE = /advisory|set_config|temp/i;

/** The session-pinned kind of `sql`, or undefined when it leaves nothing in the session. */
export function sessionPinnedKind(sql: string): SessionPinnedKind | undefined {
  // The full classification lexes the whole text (about 1.5 µs for a typical statement); two
  // anchored or short regex scans settle the common case first (docs/fleet.md has the figures).
  if (PLAIN_HEAD.test(sql) && !MAY_PIN_INSIDE.test(sql)) return undefined;
  const found = classifyStatement(sql);
  switch (found.sessionState) {
    case undefined:
      // Advisory lock calls are classified as primary-only functions, not as session state.
      return found.target === 'primary' && found.reason.includes('advisory') && SESSION_ADVISORY.test(sql) ? 'advisory-lock' : undefined;
    case 'transaction':
      // BEGIN … COMMIT is what transaction pooling is made for.
      return undefined;
    case 'set':
      return TRANSACTION_SCOPED_SET.test(sql) ? undefined : 'set';
    default:
      return found.sessionState;
  }
}

/** The text of what pg's `query()` was given: a string or a config object with `text`. */
function textOf(config: unknown): string | undefined {
  if (typeof config === 'string') return config;
  const text = (config as { text?: unknown } | null | undefined)?.text;
  return typeof text === 'string' ? text : undefined;
}

/** One per pool: the kinds already warned about, and the wrapper it puts on each connection. */
export class TransactionModeGuard {
  private readonly warned = new Set<SessionPinnedKind>();

  constructor(private readonly log: Logger) {}

  /** The kinds warned about so far. */
  get warnings(): readonly SessionPinnedKind[] {
    return [...this.warned];
  }

  /**
   * Checks `sql` about to be sent on a connection whose transaction status is `txStatus` (pg's last
   * ReadyForQuery: `I` idle, `T` in a transaction, `E` failed one). Only outside a transaction, and
   * only until every kind has been warned about.
   */
  check(sql: string, txStatus: string | null): void {
    if (this.warned.size === KIND_COUNT || txStatus === 'T' || txStatus === 'E') return;
    const kind = sessionPinnedKind(sql);
    if (kind === undefined || this.warned.has(kind)) return;
    this.warned.add(kind);
    this.log.warn(`PgBouncer transaction mode, session state (${kind}): ${TRANSACTION_MODE_ADVICE[kind]}`, { pgbouncer: 'transaction', sessionState: kind });
  }

  /** Per driver client prototype: a child of it whose `query` checks first (see `watch`). */
  private readonly guarded = new WeakMap<object, object>();

  /**
   * Makes every statement sent on `raw` (through a lease's `query()`, its `db`, or knex) pass
   * `check` first. The check sits in a prototype between `raw` and its class's (made once per
   * class), not on `raw` itself: the statement cache's `query` stays underneath, and a wrapper a test
   * installs on the client (`injectFaults`) and later deletes leaves the check in place.
   */
  watch(raw: PgClient): void {
    const proto = Object.getPrototypeOf(raw) as { query: (...args: unknown[]) => unknown };
    let child = this.guarded.get(proto);
    if (child === undefined) {
      const inner = proto.query;
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- the wrapper's `this` is the client
      const guard = this;
      child = Object.create(proto, {
        query: {
          configurable: true,
          writable: true,
          value: function query(this: PgClient & { getTransactionStatus?: () => string | null }, ...args: unknown[]): unknown {
            if (guard.warned.size < KIND_COUNT) {
              const sql = textOf(args[0]);
              if (sql !== undefined) guard.check(sql, this.getTransactionStatus?.() ?? null);
            }
            return inner.apply(this, args);
          },
        },
      }) as object;
      this.guarded.set(proto, child);
    }
    Object.setPrototypeOf(raw, child);
  }
}
