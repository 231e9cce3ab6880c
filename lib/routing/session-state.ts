/**
 * What to tell a caller who sends a statement with session state through `manager.query`, where the
 * next call may run on another connection or another server. One line per kind, for a warning
 * logged once per kind; docs/routing.md ("Session state") says the same at length.
 */
import type { SessionState } from './statement-rules';

/** The warning for each kind of {@link SessionState}, saying what goes wrong and what to do instead. */
export const SESSION_STATE_ADVICE: Readonly<Record<SessionState, string>> = Object.freeze({
  set:
    'SET (or set_config) through manager.query changes one pooled session only; later calls may run on another ' +
    'connection or a replica. Put settings in the connection options, or run the statements on one lease ' +
    '(withConnection, transaction).',
  'temp-table':
    'A temporary table created through manager.query exists in one pooled session only; later calls may run on ' +
    'another connection or a replica. Create and use it on one lease (withConnection, transaction).',
  prepare:
    'A prepared statement created through manager.query exists in one pooled session only; later calls may run on ' +
    'another connection or a replica. Use parameterised queries, or PREPARE and EXECUTE on one lease (withConnection).',
  transaction:
    'Transaction control through manager.query does not hold a transaction open across calls: each call may run on ' +
    'another connection. Use manager.knex.transaction() or one lease (withConnection).',
  cursor:
    'A cursor declared through manager.query exists in one pooled session only; later FETCH calls may run on another ' +
    'connection. Declare and fetch on one lease (withConnection, transaction).',
  listen:
    'LISTEN through manager.query subscribes one pooled session, whose notifications nobody reads. Listen on a ' +
    'connection of your own, held for as long as you listen (getConnection).',
});
