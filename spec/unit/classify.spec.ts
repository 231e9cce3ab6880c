/**
 * Read/write splitting: classifyStatement sends plain reads to a replica and everything else
 * (writes, DDL, session and transaction state, row locks, side-effect functions, the hint,
 * unrecognised or malformed text) to the primary. Comments, string literals and quoted identifiers
 * must not be able to fool it. No database needed.
 */
import fc from 'fast-check';
import { classifyStatement, type SessionState } from '../../lib/routing/classify';
import { SESSION_STATE_ADVICE } from '../../lib/routing/session-state';

type Row = [description: string, sql: string, target: 'replica' | 'primary', reason?: string];

const R = 'replica' as const;
const P = 'primary' as const;

const reads: Row[] = [
  ['SELECT', 'SELECT 1', R, 'read: SELECT'],
  ['knex-style SELECT with parameters', 'select "users".* from "users" where "users"."id" = $1 limit $2', R],
  ['knex placeholders', 'select * from ?? where "id" = ? and "tags" ? \'x\'', R],
  ['leading whitespace', '  \n\t SELECT 1', R],
  ['leading parentheses', '(SELECT 1)', R],
  ['parenthesized UNION', '((SELECT 1) UNION (SELECT 2))', R],
  ['lower and mixed case', 'sElEcT 1', R],
  ['VALUES', 'VALUES (1), (2)', R, 'read: VALUES'],
  ['TABLE', 'TABLE users', R, 'read: TABLE'],
  ['SHOW', 'SHOW search_path', R, 'read: SHOW'],
  ['SHOW ALL', 'show all', R],
  ['EXPLAIN', 'EXPLAIN SELECT * FROM users', R, 'read: EXPLAIN'],
  ['EXPLAIN VERBOSE', 'EXPLAIN VERBOSE SELECT 1', R],
  ['EXPLAIN (FORMAT JSON)', 'EXPLAIN (FORMAT JSON) SELECT 1', R],
  ['EXPLAIN (ANALYZE false)', 'EXPLAIN (ANALYZE false) SELECT 1', R],
  ['EXPLAIN (ANALYZE off, COSTS false)', 'EXPLAIN (ANALYZE off, COSTS false) SELECT 1', R],
  ["EXPLAIN (ANALYZE 'off')", "EXPLAIN (ANALYZE 'off') SELECT 1", R],
  ['EXPLAIN (ANALYZE 0)', 'EXPLAIN (ANALYZE 0, SETTINGS) SELECT 1', R],
  ['EXPLAIN of a write plans it without running it', 'EXPLAIN DELETE FROM t', R, 'read: EXPLAIN'],
  ['EXPLAIN of a parenthesized query', 'EXPLAIN (SELECT 1)', R],
  ['EXPLAIN ANALYZE SELECT', 'EXPLAIN ANALYZE SELECT 1', R, 'read: EXPLAIN ANALYZE'],
  ['EXPLAIN ANALYSE VERBOSE', 'explain analyse verbose select 1', R, 'read: EXPLAIN ANALYZE'],
  ['EXPLAIN ANALYZE VERBOSE of a join', 'EXPLAIN ANALYZE VERBOSE SELECT * FROM a JOIN b ON a.id = b.a_id', R],
  ['EXPLAIN (ANALYZE, BUFFERS)', 'EXPLAIN (ANALYZE, BUFFERS) SELECT 1', R],
  ['EXPLAIN (ANALYZE)', 'EXPLAIN (ANALYZE) SELECT 1', R, 'read: EXPLAIN ANALYZE'],
  ['EXPLAIN (ANALYZE true)', 'EXPLAIN (ANALYZE true, TIMING false) SELECT 1', R],
  ['EXPLAIN (ANALYZE true, BUFFERS)', 'EXPLAIN (ANALYZE true, BUFFERS) SELECT * FROM t WHERE id = $1', R],
  ['EXPLAIN (…, ANALYZE on)', 'EXPLAIN (FORMAT JSON, ANALYZE on) SELECT 1', R],
  ['EXPLAIN (FORMAT JSON, ANALYZE)', 'EXPLAIN (FORMAT JSON, ANALYZE) SELECT * FROM t', R],
  ['EXPLAIN (ANALYZE 1)', 'EXPLAIN (ANALYZE 1) SELECT 1', R],
  ['EXPLAIN ("analyze")', 'EXPLAIN ("analyze") SELECT 1', R],
  ['EXPLAIN (ANALYZE false, ANALYZE)', 'EXPLAIN (ANALYZE false, ANALYZE) SELECT 1', R],
  ['EXPLAIN ANALYZE of a parenthesized query', 'EXPLAIN ANALYZE (SELECT 1)', R],
  ['EXPLAIN ANALYZE WITH … SELECT', 'EXPLAIN ANALYZE WITH a AS (SELECT 1) SELECT * FROM a', R],
  ['EXPLAIN ANALYZE VALUES', 'EXPLAIN ANALYZE VALUES (1)', R],
  ['EXPLAIN ANALYZE TABLE', 'EXPLAIN ANALYZE TABLE t', R],
  ['WITH … SELECT', 'WITH a AS (SELECT 1) SELECT * FROM a', R, 'read: WITH'],
  [
    'WITH RECURSIVE',
    'WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT sum(n) FROM t',
    R,
  ],
  ['WITH … NOT MATERIALIZED', 'WITH a AS NOT MATERIALIZED (SELECT 1) SELECT * FROM a', R],
  ['function name inside a string', "SELECT 'nextval(1)'", R],
  ['column named like a function', 'SELECT "nextval" FROM t', R],
  ['unquoted column named like a function', 'SELECT nextval FROM t', R],
  ['function merely starting like one', 'SELECT nextval_stats(), lo(1), pg_advisory(2)', R],
  ['FOR UPDATE in a line comment', 'SELECT 1 -- FOR UPDATE', R],
  ['INSERT in a block comment', '/* INSERT */ SELECT 1', R],
  ['nested block comment', 'SELECT /* outer /* inner */ still a comment; DELETE FROM t */ 1', R],
  ['quote doubling', "SELECT 'it''s; DELETE FROM t'", R],
  ['E-string with an escaped quote', "SELECT E'it\\'s; DELETE FROM t'", R],
  ['E-string ending with an escaped backslash', "SELECT E'\\\\', 'x'", R],
  ['e-string, lower case prefix', "SELECT e'\\'; nextval(1)'", R],
  ['dollar quote', "SELECT $$ DELETE FROM t; ' $$", R],
  ['tagged dollar quote containing $$', "SELECT $body$ $$ nextval('s') $$ $body$", R],
  ['quoted identifier with "" escape', 'SELECT "weird "" name; DROP TABLE t" FROM t', R],
  ['identifier containing $', 'SELECT a$b$c FROM t', R],
  ['hint inside a string is just text', "SELECT '/* kcm:primary */'", R],
  ['keywords inside strings', "SELECT count(*) FROM orders WHERE status IN ('insert', 'update', 'for update')", R],
  ['keywords after a dot are column names', 'SELECT t.update, t.into, t.for FROM t', R],
  ['keyword as an output label', 'SELECT 1 AS into', R],
  ['FOR READ ONLY takes no lock', 'SELECT * FROM t FOR READ ONLY', R],
  ['harmless function', 'SELECT pg_sleep(0.1), now(), coalesce(a, b) FROM t', R],
  ['backslash not before a quote', "SELECT * FROM users WHERE email LIKE 'a\\_b%'", R],
  ['even run of backslashes before a quote', "SELECT 'a\\\\'", R],
  ['numbers', 'SELECT 1.5e10, .5, 0x1F, 1_000, 2e-3', R],
  ['trailing semicolon', 'SELECT 1;', R, 'read: SELECT'],
  ['several reads', 'SELECT 1; SELECT 2;; VALUES (3)', R, 'read: several statements'],
  ['comment-only statement between reads', 'SELECT 1; /* nothing */ ; SELECT 2', R],
];

const writes: Row[] = [
  ['INSERT', 'INSERT INTO t VALUES (1)', P, 'write: INSERT'],
  ['knex-style INSERT', 'insert into "users" ("email") values ($1) returning "id"', P],
  ['UPDATE', 'UPDATE t SET a = 1', P, 'write: UPDATE'],
  ['DELETE', 'delete from t where id = $1', P],
  ['MERGE', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', P],
  ['COPY … FROM', 'COPY t FROM STDIN', P, 'write: COPY'],
  ['COPY … TO', 'COPY (SELECT 1) TO STDOUT', P],
  ['TRUNCATE', 'TRUNCATE t', P],
  ['CREATE', 'CREATE TABLE t (id int)', P, 'DDL: CREATE'],
  ['CREATE TABLE AS', 'CREATE TABLE t2 AS SELECT * FROM t', P],
  ['ALTER', 'ALTER TABLE t ADD COLUMN c int', P],
  ['DROP', 'DROP TABLE t', P],
  ['COMMENT', "COMMENT ON TABLE t IS 'x'", P],
  ['GRANT', 'GRANT SELECT ON t TO r', P],
  ['REVOKE', 'REVOKE SELECT ON t FROM r', P],
  ['SECURITY LABEL', "SECURITY LABEL ON TABLE t IS 'x'", P],
  ['IMPORT FOREIGN SCHEMA', 'IMPORT FOREIGN SCHEMA s FROM SERVER f INTO l', P],
  ['REINDEX', 'REINDEX TABLE t', P],
  ['VACUUM', 'VACUUM (ANALYZE) t', P, 'maintenance: VACUUM'],
  ['ANALYZE', 'ANALYZE t', P],
  ['CLUSTER', 'CLUSTER t', P],
  ['REFRESH', 'REFRESH MATERIALIZED VIEW v', P],
  ['CHECKPOINT', 'CHECKPOINT', P],
];

const sessionAndTransaction: Row[] = [
  ['SET', 'SET x = 1', P, 'session state: SET'],
  ['SET LOCAL', 'set local statement_timeout = 0', P],
  ['RESET', 'RESET ALL', P],
  ['DISCARD', 'DISCARD ALL', P],
  ['LOAD', "LOAD 'auto_explain'", P],
  ['LISTEN', 'LISTEN ch', P, 'notification: LISTEN'],
  ['UNLISTEN', 'UNLISTEN *', P],
  ['NOTIFY', "NOTIFY ch, 'x'", P],
  ['BEGIN', 'BEGIN', P, 'transaction control: BEGIN'],
  ['START TRANSACTION', 'START TRANSACTION READ ONLY', P],
  ['COMMIT', 'COMMIT', P],
  ['END', 'END', P],
  ['ROLLBACK', 'ROLLBACK', P],
  ['ABORT', 'ABORT', P],
  ['SAVEPOINT', 'SAVEPOINT sp', P],
  ['RELEASE', 'RELEASE SAVEPOINT sp', P],
  ['LOCK', 'LOCK TABLE t IN SHARE MODE', P],
  ['PREPARE', 'PREPARE q AS SELECT 1', P, 'prepared statement or cursor: PREPARE'],
  ['EXECUTE', 'EXECUTE q', P],
  ['DEALLOCATE', 'DEALLOCATE q', P],
  ['DECLARE', 'DECLARE c CURSOR FOR SELECT 1', P],
  ['FETCH', 'FETCH NEXT FROM c', P],
  ['MOVE', 'MOVE c', P],
  ['CLOSE', 'CLOSE c', P],
  ['DO', 'DO $$ BEGIN PERFORM 1; END $$', P, 'procedural code: DO'],
  ['CALL', 'CALL p()', P],
];

const readsThatAreNot: Row[] = [
  ['FOR UPDATE', 'SELECT * FROM t FOR UPDATE', P, 'row-locking clause: FOR UPDATE'],
  ['FOR NO KEY UPDATE', 'SELECT * FROM t FOR NO KEY UPDATE', P, 'row-locking clause: FOR NO KEY UPDATE'],
  ['FOR SHARE', 'SELECT * FROM t FOR SHARE', P, 'row-locking clause: FOR SHARE'],
  ['FOR KEY SHARE', 'SELECT * FROM t FOR KEY SHARE', P, 'row-locking clause: FOR KEY SHARE'],
  ['FOR UPDATE OF … SKIP LOCKED', 'SELECT * FROM jobs FOR UPDATE OF jobs SKIP LOCKED LIMIT 1', P],
  ['FOR UPDATE in a subquery', 'SELECT * FROM (SELECT * FROM t FOR UPDATE) s', P],
  ['FOR and UPDATE split by a comment', 'select * from t for /* lock it */\n  update nowait', P],
  ['TABLE … FOR SHARE', 'TABLE t FOR SHARE', P],
  ['SELECT INTO', 'SELECT * INTO new_t FROM t', P, 'SELECT INTO creates a table'],
  ['SELECT INTO TEMP', 'SELECT a INTO TEMP t2 FROM t', P],
  ['writable CTE', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', P, 'data-modifying statement: DELETE'],
  [
    'writable CTE deep in the WITH list',
    'WITH a AS (SELECT 1), b AS (SELECT 2), c AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a, b, c',
    P,
    'data-modifying statement: UPDATE',
  ],
  ['WITH … INSERT', 'WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a', P],
  ['WITH RECURSIVE … DELETE', 'with recursive r(n) as (select 1) delete from t where id in (select n from r)', P],
  ['WITH … MERGE', 'WITH s AS MATERIALIZED (SELECT 1 AS id) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', P],
  ['parenthesized WITH … UPDATE', '(WITH a AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a)', P],
];

const sideEffects: Row[] = [
  ['nextval', "SELECT nextval('s')", P, 'side-effect function: nextval()'],
  ['schema-qualified setval', "select pg_catalog.setval('s', 10)", P, 'side-effect function: setval()'],
  ['upper case, space before (', "SELECT NEXTVAL ('s')", P],
  ['comment between name and (', "SELECT nextval /* next */ ('s')", P],
  ['quoted name called', 'SELECT "nextval"(\'s\')', P],
  ['quoted schema and name called', 'SELECT "pg_catalog"."setval"(\'s\', 1)', P],
  ['name spelled with Unicode escapes', 'SELECT U&"nextv\\0061l"(\'s\')', P],
  ['currval reads this session’s nextval', "SELECT currval('s')", P],
  ['lastval', 'SELECT lastval()', P],
  ['in a subquery', "SELECT * FROM t WHERE id = (SELECT nextval('s'))", P],
  ['in VALUES', "VALUES (nextval('s'))", P],
  ['in FROM', 'SELECT * FROM pg_advisory_lock(1)', P],
  ['pg_advisory_lock', 'SELECT pg_advisory_lock(42)', P],
  ['pg_advisory_xact_lock_shared', 'SELECT pg_advisory_xact_lock_shared(1, 2)', P],
  ['pg_try_advisory_lock', 'SELECT pg_try_advisory_lock(42)', P],
  ['pg_advisory_unlock_all', 'SELECT pg_advisory_unlock_all()', P],
  ['pg_notify', "SELECT pg_notify('ch', 'payload')", P],
  ['lo_create', 'SELECT lo_create(0)', P],
  ['lo_unlink', 'SELECT lo_unlink(16401)', P],
  ['lowrite', "SELECT lowrite(0, 'x')", P],
  ['pg_terminate_backend', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity', P],
  ['pg_cancel_backend', 'SELECT pg_cancel_backend(123)', P],
  ['set_config', "SELECT set_config('app.user', '42', false)", P],
  ['txid_current', 'SELECT txid_current()', P],
  ['pg_current_xact_id', 'SELECT pg_current_xact_id()', P],
  ['pg_current_wal_lsn', 'SELECT pg_current_wal_lsn()', P],
  ['pg_switch_wal', 'SELECT pg_switch_wal()', P],
  ['pg_reload_conf', 'SELECT pg_reload_conf()', P],
  ['pg_create_restore_point', "SELECT pg_create_restore_point('before')", P],
  ['pg_drop_replication_slot', "SELECT pg_drop_replication_slot('slot')", P],
  ['dblink_exec', "SELECT dblink_exec('conn', 'DELETE FROM t')", P],
  ['SQL text run by query_to_xml', "SELECT query_to_xml('select nextval(''s'')', true, true, '')", P],
];

const explainAnalyze: Row[] = [
  ['EXPLAIN ANALYZE DELETE', 'EXPLAIN ANALYZE DELETE FROM t', P, 'EXPLAIN ANALYZE runs the statement'],
  ['EXPLAIN ANALYZE INSERT', 'EXPLAIN ANALYZE INSERT INTO t VALUES (1)', P, 'EXPLAIN ANALYZE runs the statement'],
  ['EXPLAIN ANALYZE UPDATE', 'explain analyse verbose update t set a = 1', P],
  ['EXPLAIN (ANALYZE, BUFFERS) MERGE', 'EXPLAIN (ANALYZE, BUFFERS) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', P],
  ['EXPLAIN ANALYZE CREATE TABLE AS', 'EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1', P],
  ['EXPLAIN ANALYZE EXECUTE', 'EXPLAIN ANALYZE EXECUTE q(1)', P],
  ['EXPLAIN ANALYZE DECLARE', 'EXPLAIN ANALYZE DECLARE c CURSOR FOR SELECT 1', P],
  [
    'EXPLAIN ANALYZE of a write CTE',
    'EXPLAIN (ANALYZE) WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    P,
    'EXPLAIN ANALYZE runs the statement: data-modifying statement: DELETE',
  ],
  [
    'EXPLAIN ANALYZE of a read with a side effect',
    "EXPLAIN ANALYZE SELECT nextval('s')",
    P,
    'EXPLAIN ANALYZE runs the statement: side-effect function: nextval()',
  ],
  ['EXPLAIN ANALYZE of a locking read', 'EXPLAIN (ANALYZE true, BUFFERS) SELECT * FROM t FOR UPDATE', P],
  ['EXPLAIN ANALYZE of SELECT INTO', 'EXPLAIN ANALYZE SELECT * INTO t2 FROM t', P],
  ['EXPLAIN ANALYZE of a read with the hint', 'EXPLAIN ANALYZE SELECT 1 /* kcm:primary */', P],
  ['EXPLAIN EXECUTE', 'EXPLAIN EXECUTE q(1)', P, 'EXPLAIN EXECUTE needs the session that prepared the statement'],
  ['EXPLAIN with nothing to explain', 'EXPLAIN', P, 'unrecognised statement'],
  ['EXPLAIN with an unclosed option list', 'EXPLAIN (ANALYZE false', P],
];

const multiStatement: Row[] = [
  ['read then write', 'SELECT 1; DELETE FROM t', P, 'statement 2: write: DELETE'],
  ['read then side effect', "SELECT 1; SELECT nextval('s')", P, 'statement 2: side-effect function: nextval()'],
  ['write then read', 'DELETE FROM t; SELECT 1', P, 'write: DELETE'],
  ['read then BEGIN', 'select 1;begin', P],
  ['write hidden after a comment', 'SELECT 1 /* ; */; -- ;\nUPDATE t SET x = 1', P],
];

const hint: Row[] = [
  ['hint first', '/* kcm:primary */ SELECT 1', P, 'hint: kcm:primary'],
  ['hint last', 'SELECT 1 /* kcm:primary */', P, 'hint: kcm:primary'],
  ['hint in the middle, any case', 'SELECT /* KCM:Primary */ 1', P],
  ['hint with other words', "SELECT 1 /* kcm:primary: read-your-writes after signup */", P],
  ['hint in a line comment', 'SELECT 1 -- kcm:primary', P],
  ['hint in the second statement', 'SELECT 1; SELECT 2 /* kcm:primary */', P],
  ['no replica-forcing hint', '/* kcm:replica */ DELETE FROM t', P],
];

const unrecognised: Row[] = [
  ['empty string', '', P, 'unrecognised statement: empty or only comments'],
  ['only whitespace', '  \n ', P],
  ['only a line comment', '-- nothing to see', P, 'unrecognised statement: empty or only comments'],
  ['only a block comment', '/* SELECT 1 */', P],
  ['only semicolons', ';;', P],
  ['unknown keyword', 'FROBNICATE the database', P, 'unrecognised statement'],
  ['starts with a number', '42', P],
  ['parenthesized non-query', '(1)', P],
  ['empty parentheses', '()', P],
  ['no-break space is part of a PostgreSQL identifier', "SELECT\u00a0nextval('s')", P],
  ['read then unknown', 'SELECT 1; VALIDATE', P, 'statement 2: unrecognised statement'],
];

const malformed: Row[] = [
  ['unterminated string', "SELECT 'unterminated", P, 'malformed: unterminated string literal'],
  ['unterminated E-string ending in an escaped quote', "SELECT E'abc\\'", P, 'malformed: unterminated string literal'],
  ['unterminated quoted identifier', 'SELECT "unterminated', P, 'malformed: unterminated quoted identifier'],
  ['unterminated dollar quote', 'SELECT $$ unterminated', P, 'malformed: unterminated dollar-quoted string'],
  ['dollar-quote tags are case-sensitive', 'SELECT $a$ x $A$', P, 'malformed: unterminated dollar-quoted string'],
  ['unterminated block comment', 'SELECT 1 /* unterminated', P, 'malformed: unterminated block comment'],
  ['nested block comment closed only once', 'SELECT 1 /* outer /* inner */ still open', P],
  [
    'backslash before the closing quote (standard_conforming_strings)',
    "SELECT 'a\\' , nextval('s') --'",
    P,
    'ambiguous: backslash before a quote in a string literal (depends on standard_conforming_strings)',
  ],
  ['backslash before a doubled quote', "SELECT 'a\\'' || 'b'", P],
];

const table: Row[] = [
  ...reads,
  ...writes,
  ...sessionAndTransaction,
  ...readsThatAreNot,
  ...sideEffects,
  ...explainAnalyze,
  ...multiStatement,
  ...hint,
  ...unrecognised,
  ...malformed,
];

/** The rows as objects: with arrays, jest would pass `done` in place of a missing reason. */
const cases = table.map(([description, sql, target, reason]) => ({
  description,
  sql,
  shown: JSON.stringify(sql),
  target,
  reason: reason ?? null,
}));

describe('classifyStatement', () => {
  it.each(cases)('$description: $shown → $target', ({ sql, target, reason }) => {
    const result = classifyStatement(sql);
    expect(result.target).toBe(target);
    if (reason !== null) expect(result.reason).toBe(reason);
  });

  it.each(cases)('$description: unchanged by surrounding comments and whitespace', ({ sql, target }) => {
    expect(classifyStatement(`/* lead */ \n ${sql} \n-- trail`).target).toBe(target);
  });

  it('covers the table', () => {
    expect(table.length).toBeGreaterThanOrEqual(70);
    expect(new Set(table.map(([description]) => description)).size).toBe(table.length);
  });

  it('fails safe on anything that is not a string', () => {
    expect(classifyStatement(undefined as unknown as string).target).toBe('primary');
    expect(classifyStatement(42 as unknown as string).target).toBe('primary');
  });

  it('returns frozen answers', () => {
    expect(Object.isFrozen(classifyStatement('SELECT 1'))).toBe(true);
    expect(Object.isFrozen(classifyStatement("SELECT 1; SELECT nextval('s')"))).toBe(true);
  });

  it.each([
    ['SET search_path = app', 'set'],
    ['set local statement_timeout = 0', 'set'],
    ['RESET ALL', 'set'],
    ['CREATE TEMP TABLE x (a int)', 'temp-table'],
    ['create temporary table x as select 1', 'temp-table'],
    ['CREATE LOCAL TEMPORARY TABLE x (a int)', 'temp-table'],
    ['CREATE GLOBAL TEMP VIEW v AS SELECT 1', 'temp-table'],
    ['CREATE OR REPLACE TEMP VIEW v AS SELECT 1', 'temp-table'],
    ['create temp sequence s', 'temp-table'],
    ["SELECT set_config('search_path', 'app', false)", 'set'],
    ['SELECT * INTO TEMP t2 FROM t', 'temp-table'],
    ['SELECT * INTO LOCAL TEMPORARY t2 FROM t', 'temp-table'],
    ['PREPARE q AS SELECT 1', 'prepare'],
    ['EXECUTE q(1)', 'prepare'],
    ['DEALLOCATE ALL', 'prepare'],
    ['BEGIN', 'transaction'],
    ['START TRANSACTION', 'transaction'],
    ['COMMIT', 'transaction'],
    ['SAVEPOINT a', 'transaction'],
    ['LOCK TABLE t', 'transaction'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'cursor'],
    ['FETCH 10 FROM c', 'cursor'],
    ['LISTEN ch', 'listen'],
    ['SELECT 1; SET x = 1', 'set'],
    ['EXPLAIN ANALYZE SELECT * INTO TEMP t2 FROM t', 'temp-table'],
  ])('tells the session state %j needs: %s', (sql, kind) => {
    expect(classifyStatement(sql).sessionState).toBe(kind);
  });

  it.each([
    'SELECT 1',
    'CREATE TABLE temp (a int)',
    'CREATE UNLOGGED TABLE t (a int)',
    'SELECT * INTO t2 FROM t',
    'INSERT INTO temp VALUES (1)',
    'DISCARD ALL',
    'NOTIFY ch',
    'CREATE OR REPLACE VIEW temp AS SELECT 1',
    "SELECT nextval('s')",
  ])('has no session state for %j', (sql) => {
    expect(classifyStatement(sql).sessionState).toBeUndefined();
  });

  describe('properties', () => {
    const sqlish = fc.string({
      unit: fc.constantFrom(
        ...'abcdefnrstuxE$_0123456789 \n\'"\\();,.*/-'.split(''),
        'select ',
        'nextval(',
        ' for update ',
        '$$',
        '$a$',
        '/*',
        '*/',
        '--',
        "E'",
        'U&"',
      ),
      maxLength: 60,
    });

    it('never throws and always answers replica or primary', () => {
      fc.assert(
        fc.property(sqlish, (sql) => {
          const { target, reason } = classifyStatement(sql);
          expect(['replica', 'primary']).toContain(target);
          expect(typeof reason).toBe('string');
        }),
        { numRuns: 2000 },
      );
    });

    it('EXPLAIN ANALYZE of a statement goes to a replica only when the statement itself does', () => {
      fc.assert(
        fc.property(sqlish, fc.constantFrom('EXPLAIN ANALYZE ', 'EXPLAIN (ANALYZE) ', 'EXPLAIN (FORMAT JSON, ANALYZE true) '), (sql, prefix) => {
          if (classifyStatement(`${prefix}${sql}`).target === 'replica') expect(classifyStatement(sql).target).toBe('replica');
        }),
        { numRuns: 2000 },
      );
    });

    it('the hint appended to any text sends it to the primary', () => {
      fc.assert(
        fc.property(sqlish, (sql) => {
          // The space keeps a trailing `/*` or `*` of the text from pairing with the hint's own.
          expect(classifyStatement(`${sql} /* kcm:primary */`).target).toBe('primary');
        }),
        { numRuns: 2000 },
      );
    });

    it('a read stays a read whatever a string literal or comment contains', () => {
      const body = fc.string({
        unit: fc.constantFrom(...'abc$;\'"\\/*-\n()'.split(''), ' ', 'nextval(', ' for update ', 'delete '),
        maxLength: 40,
      });
      /** `text` with nothing left that could open or close a block comment around it. */
      const commentSafe = (text: string) => {
        let safe = text;
        for (let previous = ''; previous !== safe; ) {
          previous = safe;
          safe = safe.replace(/\/\*|\*\//g, '').replace(/\/+$/, '');
        }
        return safe;
      };
      fc.assert(
        fc.property(body, (text) => {
          const quoted = `'${text.replace(/\\/g, '').replace(/'/g, "''")}'`;
          const dollar = `$q$${text.replace(/\$q\$/g, '')}$q$`;
          const comment = `/*${commentSafe(text)}*/`;
          const identifier = `"${text.replace(/"/g, '""')}"`;
          for (const sql of [`SELECT ${quoted}`, `SELECT ${dollar}`, `SELECT 1 ${comment}`, `SELECT ${identifier} FROM t`]) {
            expect(classifyStatement(sql)).toEqual({ target: 'replica', reason: 'read: SELECT' });
          }
        }),
        { numRuns: 1000 },
      );
    });
  });
});

describe('SESSION_STATE_ADVICE', () => {
  it('says what to do for every kind the classifier reports', () => {
    const kinds = ['SET x = 1', 'CREATE TEMP TABLE t (a int)', 'PREPARE q AS SELECT 1', 'BEGIN', 'DECLARE c CURSOR FOR SELECT 1', 'LISTEN ch'].map(
      (sql) => classifyStatement(sql).sessionState,
    );
    expect(new Set(kinds).size).toBe(6);
    expect(Object.keys(SESSION_STATE_ADVICE).sort()).toEqual([...kinds].sort());
    for (const kind of kinds) expect(SESSION_STATE_ADVICE[kind as SessionState]).toMatch(/withConnection|getConnection/);
  });
});
