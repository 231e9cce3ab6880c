/**
 * The rules of read/write splitting as data: the fixed answers, the first words that decide a
 * statement, the row-locking and data-modifying keywords, and the functions whose call sends a read
 * to the primary. `classifyStatement` in `classify.ts` applies them to the tokens that
 * `lexer.ts` reads.
 */

/** Where a statement must run, and why (for logs and debugging; the wording may change). */
export interface StatementClass {
  /** `replica` only for plain reads; anything else, or anything unrecognised, is `primary`. */
  readonly target: 'replica' | 'primary';
  /** Short human-readable explanation, e.g. `read: SELECT` or `side-effect function: nextval()`. */
  readonly reason: string;
  /**
   * Set when the statement creates or depends on state that lives in one server session, which a
   * call through a pool does not keep for the next call: a setting, a temporary table, a prepared
   * statement, a transaction, a cursor or a notification channel. Such statements belong on one
   * lease (`withConnection`, `transaction`), not on `manager.query`.
   */
  readonly sessionState?: SessionState;
}

/** The kinds of session state a statement may create or need (see {@link StatementClass.sessionState}). */
export type SessionState = 'set' | 'temp-table' | 'prepare' | 'transaction' | 'cursor' | 'listen';

// ---------------------------------------------------------------------------------------------
// Answers. Fixed answers are frozen singletons, so that classifying a read allocates no result.
// ---------------------------------------------------------------------------------------------

/** A frozen answer; `sessionState` only when the statement has one (no `undefined` key otherwise). */
export function answer(target: StatementClass['target'], reason: string, sessionState?: SessionState): StatementClass {
  return Object.freeze(sessionState === undefined ? { target, reason } : { target, reason, sessionState });
}

export const UNRECOGNISED = answer('primary', 'unrecognised statement');
export const EMPTY = answer('primary', 'unrecognised statement: empty or only comments');
export const HINT = answer('primary', 'hint: kcm:primary');
export const UNTERMINATED_STRING = answer('primary', 'malformed: unterminated string literal');
export const UNTERMINATED_DOLLAR = answer('primary', 'malformed: unterminated dollar-quoted string');
export const UNTERMINATED_IDENTIFIER = answer('primary', 'malformed: unterminated quoted identifier');
export const UNTERMINATED_COMMENT = answer('primary', 'malformed: unterminated block comment');
export const AMBIGUOUS_BACKSLASH = answer(
  'primary',
  'ambiguous: backslash before a quote in a string literal (depends on standard_conforming_strings)',
);
export const SELECT_INTO = answer('primary', 'SELECT INTO creates a table');
export const SELECT_INTO_TEMP = answer('primary', 'SELECT INTO creates a table', 'temp-table');
export const CREATE_TEMP = answer('primary', 'DDL: CREATE TEMPORARY', 'temp-table');
export const EXPLAIN_ANALYZE = answer('primary', 'EXPLAIN ANALYZE runs the statement');
export const EXPLAIN_ANALYZE_READ = answer('replica', 'read: EXPLAIN ANALYZE');
export const EXPLAIN_EXECUTE = answer('primary', 'EXPLAIN EXECUTE needs the session that prepared the statement');
export const UNICODE_CALL = answer('primary', 'call of a function named with Unicode escapes');
export const MULTIPLE_READS = answer('replica', 'read: several statements');

export const READ_HEADS = new Map<string, StatementClass>(
  ['select', 'values', 'table', 'show', 'with', 'explain'].map((w) => [w, answer('replica', `read: ${w.toUpperCase()}`)]),
);

/** First words that send a statement to the primary whatever follows. */
const PRIMARY_HEADS = new Map<string, StatementClass>();
function primaryHeads(category: string, words: string, sessionState?: SessionState): void {
  for (const word of words.split(' ')) {
    PRIMARY_HEADS.set(word, answer('primary', `${category}: ${word.toUpperCase()}`, sessionState));
  }
}
primaryHeads('write', 'insert update delete merge copy truncate');
primaryHeads('DDL', 'create alter drop comment grant revoke security import reassign');
primaryHeads('maintenance', 'reindex vacuum analyze analyse cluster refresh checkpoint');
primaryHeads('transaction control', 'begin start commit end rollback abort savepoint release lock', 'transaction');
primaryHeads('session state', 'set reset', 'set');
primaryHeads('session state', 'discard load');
primaryHeads('notification', 'listen', 'listen');
primaryHeads('notification', 'unlisten notify');
primaryHeads('prepared statement or cursor', 'prepare execute deallocate', 'prepare');
primaryHeads('prepared statement or cursor', 'declare fetch move close', 'cursor');
primaryHeads('procedural code', 'do call');

/** The answer for `CREATE`, which {@link createAnswer} refines by the words after it. */
export const CREATE = PRIMARY_HEADS.get('create') as StatementClass;

/**
 * `CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP | TEMPORARY …` creates a session-local table, view or
 * sequence; other CREATEs do not. `nextWord` reads the words after `CREATE` (undefined at the end).
 */
export function createAnswer(nextWord: () => string | undefined): StatementClass {
  for (let i = 0; i < 4; i++) {
    const word = nextWord();
    if (word === 'temp' || word === 'temporary') return CREATE_TEMP;
    if (word !== 'or' && word !== 'replace' && word !== 'global' && word !== 'local') break;
  }
  return CREATE;
}

/** The answer fixed by a statement's first word, or undefined when it starts a read to look into. */
export function decidedByHead(word: string): StatementClass | undefined {
  switch (word) {
    case 'select':
    case 'values':
    case 'table':
    case 'show':
    case 'with':
    case 'explain':
      return undefined;
  }
  return PRIMARY_HEADS.get(word) ?? UNRECOGNISED;
}

export const DATA_MODIFYING = new Map<string, StatementClass>(
  ['insert', 'update', 'delete', 'merge'].map((w) => [w, answer('primary', `data-modifying statement: ${w.toUpperCase()}`)]),
);

/** Row-locking clauses, by the word that follows `FOR`. */
export const ROW_LOCKS = new Map<string, StatementClass>([
  ['update', answer('primary', 'row-locking clause: FOR UPDATE')],
  ['no', answer('primary', 'row-locking clause: FOR NO KEY UPDATE')],
  ['share', answer('primary', 'row-locking clause: FOR SHARE')],
  ['key', answer('primary', 'row-locking clause: FOR KEY SHARE')],
]);

/** Adds the statement's position to a primary answer when earlier statements were reads. */
export function numbered(result: StatementClass, earlierStatements: number): StatementClass {
  if (earlierStatements === 0) return result;
  return answer(result.target, `statement ${earlierStatements + 1}: ${result.reason}`, result.sessionState);
}

// ---------------------------------------------------------------------------------------------
// Functions whose call sends a read to the primary.
// ---------------------------------------------------------------------------------------------

/**
 * Built-in and common extension functions, by exact (lower-case) name, that write, change session or
 * server state, or only mean something on the primary:
 * - sequences: `nextval`, `setval`, and `currval`/`lastval` (they read what this session's `nextval`
 *   did, which happened on the primary);
 * - session state: `set_config`, `setseed`;
 * - transaction ids: `txid_current[_if_assigned]`, `pg_current_xact_id[_if_assigned]`;
 * - notifications and other backends: `pg_notify`, `pg_cancel_backend`, `pg_terminate_backend`,
 *   `pg_log_backend_memory_contexts`;
 * - server administration: `pg_reload_conf`, `pg_rotate_logfile`, `pg_switch_wal` (`pg_switch_xlog`),
 *   `pg_walfile_name[_offset]`, `pg_start_backup`, `pg_stop_backup`, `pg_backup_start`,
 *   `pg_backup_stop`, `pg_replication_slot_advance`, `pg_import_system_collations`,
 *   `pg_stat_statements_reset`;
 * - index maintenance: `brin_summarize_new_values`, `brin_summarize_range`, `brin_desummarize_range`,
 *   `gin_clean_pending_list`;
 * - large objects by descriptor: `loread`, `lowrite` (descriptors belong to the opening transaction);
 * - functions that run SQL text they are given, which could hide any of the above: `ts_stat`,
 *   `ts_rewrite`, `connectby`.
 */
export const SIDE_EFFECT_FUNCTIONS: ReadonlySet<string> = new Set([
  'nextval',
  'setval',
  'currval',
  'lastval',
  'set_config',
  'setseed',
  'txid_current',
  'txid_current_if_assigned',
  'pg_current_xact_id',
  'pg_current_xact_id_if_assigned',
  'pg_notify',
  'pg_cancel_backend',
  'pg_terminate_backend',
  'pg_log_backend_memory_contexts',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_switch_wal',
  'pg_switch_xlog',
  'pg_walfile_name',
  'pg_walfile_name_offset',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_replication_slot_advance',
  'pg_import_system_collations',
  'pg_stat_statements_reset',
  'brin_summarize_new_values',
  'brin_summarize_range',
  'brin_desummarize_range',
  'gin_clean_pending_list',
  'loread',
  'lowrite',
  'ts_stat',
  'ts_rewrite',
  'connectby',
]);

/**
 * Name prefixes of function families that send a read to the primary:
 * `pg_advisory_` and `pg_try_advisory_` (advisory locks live in the session and server that took
 * them), `lo_` (large objects: create, import, export, write, unlink, …), `pg_create_` and `pg_drop_`
 * (replication slots, restore points), `pg_copy_` (replication slots), `pg_logical_` (slot changes,
 * WAL messages), `pg_replication_origin_`, `pg_current_wal_` and `pg_current_xlog_` (primary-only WAL
 * positions), `pg_stat_reset`, `pg_file_` (adminpack file writes), and functions that run SQL text
 * they are given: `dblink` (all dblink functions), `query_to_xml`, `cursor_to_xml`, `crosstab`.
 */
export const SIDE_EFFECT_PREFIXES: readonly string[] = Object.freeze([
  'pg_advisory_',
  'pg_try_advisory_',
  'lo_',
  'pg_create_',
  'pg_drop_',
  'pg_copy_',
  'pg_logical_',
  'pg_replication_origin_',
  'pg_current_wal_',
  'pg_current_xlog_',
  'pg_stat_reset',
  'pg_file_',
  'dblink',
  'query_to_xml',
  'cursor_to_xml',
  'crosstab',
]);

/** The primary answer for a call of `name` (lower-case), or undefined when it is harmless. */
export function sideEffectCall(name: string): StatementClass | undefined {
  if (name === 'set_config') return SET_CONFIG;
  if (SIDE_EFFECT_FUNCTIONS.has(name) || hasSideEffectPrefix(name)) {
    return answer('primary', `side-effect function: ${name}()`);
  }
  return undefined;
}

/** `set_config()` changes a setting of the session, like `SET`. */
const SET_CONFIG = answer('primary', 'side-effect function: set_config()', 'set');

/** {@link SIDE_EFFECT_PREFIXES} by the code of their first character, to try only a few per name. */
const PREFIXES_BY_INITIAL: ReadonlyMap<number, readonly string[]> = (() => {
  const byInitial = new Map<number, string[]>();
  for (const prefix of SIDE_EFFECT_PREFIXES) {
    const initial = prefix.charCodeAt(0);
    byInitial.set(initial, [...(byInitial.get(initial) ?? []), prefix]);
  }
  return byInitial;
})();

function hasSideEffectPrefix(name: string): boolean {
  const prefixes = PREFIXES_BY_INITIAL.get(name.charCodeAt(0));
  if (prefixes === undefined) return false;
  for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
  return false;
}
