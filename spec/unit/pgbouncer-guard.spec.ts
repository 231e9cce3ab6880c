/** The session-state check for PgBouncer's transaction mode, without a server. */
import { sessionPinnedKind, TransactionModeGuard } from '../../lib/pgbouncer/transaction-mode';
import { capturingLogger } from '../helpers/silent-logger';

test.each([
  ['SET search_path TO app', 'set'],
  ["SELECT set_config('app.user', '1', false)", 'set'],
  ['RESET ALL', 'set'],
  ['CREATE TEMP TABLE t (a int)', 'temp-table'],
  ['create temporary table t as select 1', 'temp-table'],
  ['LISTEN jobs', 'listen'],
  ['PREPARE p AS SELECT 1', 'prepare'],
  ['EXECUTE p', 'prepare'],
  ['SELECT pg_advisory_lock(1)', 'advisory-lock'],
  ['select pg_try_advisory_lock_shared(1, 2)', 'advisory-lock'],
  ['SELECT pg_advisory_unlock_all()', 'advisory-lock'],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'cursor'],
  ['FETCH 10 FROM c', 'cursor'],
])('%s pins state to a server session (%s)', (sql, kind) => {
  expect(sessionPinnedKind(sql)).toBe(kind);
});

test.each([
  'SELECT 1',
  'INSERT INTO t VALUES (1)',
  'SET LOCAL statement_timeout = 1000',
  'set transaction isolation level serializable',
  'SELECT pg_advisory_xact_lock(1)',
  'select pg_try_advisory_xact_lock_shared(1)',
  'BEGIN',
  'COMMIT',
  'NOTIFY jobs',
  "SELECT 'pg_advisory_lock(1)'",
])('%s leaves nothing in the session', (sql) => {
  expect(sessionPinnedKind(sql)).toBeUndefined();
});

test('warns once per kind, and only outside a transaction (status I), never in one (T) or a failed one (E)', () => {
  const { logger, lines } = capturingLogger('warn');
  const guard = new TransactionModeGuard(logger);
  guard.check('SET search_path TO app', 'T');
  guard.check('SET search_path TO app', 'E');
  expect(lines).toHaveLength(0);
  guard.check('SET search_path TO app', 'I');
  guard.check('SET work_mem = 1024', 'I');
  guard.check('LISTEN jobs', null);
  expect(lines.map((l) => l.meta.sessionState)).toEqual(['set', 'listen']);
  expect(lines[0].message).toMatch(/SET LOCAL/);
  expect(guard.warnings).toEqual(['set', 'listen']);
});

test.each([
  ['SELECT * INTO TEMP t FROM users', 'temp-table'],
  ["select set_config('app.user', $1, false), id from users", 'set'],
  ['WITH x AS (SELECT pg_advisory_lock(1)) SELECT * FROM x', 'advisory-lock'],
  ['/* comment */ SET search_path TO app', 'set'],
])('a plain-looking %s is still found (%s)', (sql, kind) => {
  expect(sessionPinnedKind(sql)).toBe(kind);
});
