/**
 * The classifier's new answers, checked against a real hot standby (spec/helpers/replica-cluster.ts)
 * with plain pg clients, no manager: what it sends to a replica runs there, what it keeps on the
 * primary because of EXPLAIN ANALYZE is refused there, and the writes no text shows (a function that
 * creates a table, a view over a function that inserts) are refused with 25006, then sent to the
 * primary once declared or learned from that very refusal.
 */
import type { Client } from 'pg';
import { classifyStatement } from '../../lib/routing/classify';
import { LearnedWrites } from '../../lib/routing/learned-writes';
import { compileRoutingRules } from '../../lib/routing/write-list';
import { withAdminClient } from '../helpers/database';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';

let cluster: ReplicaCluster;

useReplicaCluster((c) => (cluster = c), {
  statements: [
    'CREATE TABLE cs_items (id int PRIMARY KEY, note text)',
    "INSERT INTO cs_items VALUES (1, 'one'), (2, 'two')",
    'CREATE TABLE cs_log (at timestamptz DEFAULT now())',
    'CREATE FUNCTION make_table() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE TABLE IF NOT EXISTS cs_made (x int); END $$',
    'CREATE FUNCTION log_read() RETURNS int LANGUAGE sql AS $$ INSERT INTO cs_log DEFAULT VALUES RETURNING 1 $$',
    'CREATE VIEW cs_logged_items AS SELECT i.*, log_read() AS logged FROM cs_items i',
    'CREATE SCHEMA "Audit"',
    'CREATE FUNCTION "Audit"."DoGrant"() RETURNS int LANGUAGE sql AS $$ INSERT INTO cs_log DEFAULT VALUES RETURNING 1 $$',
  ],
  replayedSql: "SELECT 1 FROM pg_proc WHERE proname = 'DoGrant'",
});

/** The SQLSTATE the standby answers `sql` with, or 'ok'. */
async function onStandby(sql: string): Promise<string> {
  return withAdminClient(cluster.replicaUrl, async (client: Client) => {
    try {
      await client.query(sql);
      return 'ok';
    } catch (err) {
      return String((err as { code?: unknown }).code);
    }
  });
}

describe('classifier answers on a real hot standby', () => {
  it.each([
    'EXPLAIN ANALYZE SELECT * FROM cs_items WHERE id = 1',
    'EXPLAIN (ANALYZE) SELECT count(*) FROM cs_items',
    'EXPLAIN (ANALYZE true, BUFFERS) SELECT * FROM cs_items',
    'EXPLAIN (FORMAT JSON, ANALYZE) SELECT note FROM cs_items ORDER BY id',
    'EXPLAIN ANALYZE VERBOSE WITH a AS (SELECT id FROM cs_items) SELECT * FROM a',
  ])('sends %j to a replica, and the standby runs it', async (sql) => {
    expect(classifyStatement(sql).target).toBe('replica');
    expect(await onStandby(sql)).toBe('ok');
  });

  it.each([
    "EXPLAIN ANALYZE INSERT INTO cs_items VALUES (3, 'three')",
    "EXPLAIN (ANALYZE, COSTS off) UPDATE cs_items SET note = 'x'",
    'EXPLAIN ANALYZE WITH d AS (DELETE FROM cs_items WHERE id = 0 RETURNING *) SELECT * FROM d',
    'EXPLAIN ANALYZE CREATE TABLE cs_copy AS SELECT * FROM cs_items',
    'EXPLAIN ANALYZE SELECT * FROM cs_items FOR UPDATE',
  ])('keeps %j on the primary, and the standby refuses it', async (sql) => {
    expect(classifyStatement(sql).target).toBe('primary');
    // 25006 for most; CREATE TABLE AS fails with XX000 (no transaction id can be assigned in recovery).
    expect(await onStandby(sql)).not.toBe('ok');
  });

  it('a write hidden in a function or a view is refused, then learned from the refusal', async () => {
    const rules = compileRoutingRules();
    const learned = new LearnedWrites(rules);
    const hidden = ['SELECT make_table()', 'SELECT note, logged FROM cs_logged_items WHERE id = 1', 'SELECT "Audit"."DoGrant"()'];
    for (const sql of hidden) {
      expect(classifyStatement(sql, rules).target).toBe('replica');
      expect(await onStandby(sql)).toBe('25006');
      expect(learned.learnFrom(sql)).not.toEqual([]);
      expect(classifyStatement(sql, rules).target).toBe('primary');
    }
    expect(learned.snapshot()).toMatchObject({ functions: ['make_table', '"Audit"."DoGrant"'], relations: ['cs_logged_items'] });
    // What was not learned still reads from the replica, and runs there.
    const plain = 'SELECT note FROM cs_items WHERE id = 2';
    expect(classifyStatement(plain, rules).target).toBe('replica');
    expect(await onStandby(plain)).toBe('ok');
  });

  it('declared names resolve like the server resolves them', async () => {
    const rules = compileRoutingRules({ primaryFunctions: ['"Audit"."DoGrant"'], primaryRelations: ['cs_logged_items'] });
    expect(classifyStatement('SELECT "Audit"."DoGrant"()', rules).target).toBe('primary');
    expect(classifyStatement('SELECT * FROM CS_LOGGED_ITEMS', rules).target).toBe('primary');
    // Unquoted, the name folds to "audit"."dogrant": another function, which the server does not know.
    expect(classifyStatement('SELECT Audit.DoGrant()', rules).target).toBe('replica');
    expect(await onStandby('SELECT Audit.DoGrant()')).toBe('3F000');
    expect(await onStandby('SELECT * FROM CS_LOGGED_ITEMS')).toBe('25006');
  });
});
