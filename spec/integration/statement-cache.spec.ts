/**
 * The per-connection statement cache against the real server: a text seen again runs as a named
 * prepared statement on every path (conn.query, manager.query, conn.db, manager.knex), stays right
 * under schema changes and DISCARD ALL, is bounded, and counts hits, misses and evictions per pool.
 */
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type PooledConnection } from '../../lib';
import { statementCacheOf } from '../../lib/statement-cache/client';
import { testConfig, testDatabaseUrl, withAdminClient } from '../helpers/database';

const url = testDatabaseUrl();
const TABLE = 'kcm_spec_stmt_cache';

afterEach(async () => {
  await closeConnectionInstance();
});

beforeAll(async () => {
  await withAdminClient(url, async (c) => {
    await c.query(`drop table if exists ${TABLE}`);
    await c.query(`create table ${TABLE} (id int primary key, name text not null)`);
    await c.query(`insert into ${TABLE} select g, 'n' || g from generate_series(1, 10) g`);
  });
});

afterAll(async () => {
  await withAdminClient(url, (c) => c.query(`drop table if exists ${TABLE}`));
});

/** The names of the statements prepared in `conn`'s session, as the server lists them. */
async function preparedOn(conn: PooledConnection): Promise<Array<{ name: string; statement: string }>> {
  const { rows } = await conn.query<{ name: string; statement: string }>('select name, statement from pg_prepared_statements order by prepare_time, name');
  return rows;
}

function oneConnection(name: string, overrides: Parameters<typeof testConfig>[2] = {}): ConnectionManager {
  return getConnectionInstance(testConfig(name, { min: 1, max: 1 }, overrides));
}

test('a text runs unnamed the first time and as a prepared statement from the second, on conn.query', async () => {
  const manager = oneConnection('kcm-spec-stmt-basic');
  await manager.withConnection(async (conn) => {
    const sql = `select name from ${TABLE} where id = $1`;
    expect((await conn.query(sql, [1])).rows).toEqual([{ name: 'n1' }]);
    expect((await preparedOn(conn)).map((p) => p.statement)).not.toContain(sql);
    expect((await conn.query(sql, [2])).rows).toEqual([{ name: 'n2' }]);
    expect((await conn.query(sql, [3])).rows).toEqual([{ name: 'n3' }]);
    const prepared = await preparedOn(conn);
    expect(prepared.filter((p) => p.statement === sql)).toHaveLength(1);
    expect(prepared.find((p) => p.statement === sql)?.name).toMatch(/^kcm_\d+$/);
  });
  const stats = manager.getPoolStats().statementCache;
  // Misses: each text's first and second sight; the third run of `sql` is a hit.
  expect(stats?.hits).toBeGreaterThanOrEqual(1);
  expect(stats?.misses).toBeGreaterThanOrEqual(2);
  expect(stats?.evictions).toBe(0);
});

test('manager.query, conn.db and manager.knex (builder and raw) all use the cache', async () => {
  const manager = oneConnection('kcm-spec-stmt-paths');
  const count = (): number => manager.getPoolStats().statementCache?.hits ?? 0;
  let before = count();
  for (let i = 1; i <= 3; i++) expect((await manager.query(`select name from ${TABLE} where id = $1`, [i])).rows).toEqual([{ name: `n${i}` }]);
  expect(count()).toBe(before + 1);

  before = count();
  for (let i = 1; i <= 3; i++) expect(await manager.knex(TABLE).select('name').where({ id: i })).toEqual([{ name: `n${i}` }]);
  expect(count()).toBe(before + 1);

  before = count();
  for (let i = 1; i <= 3; i++) expect((await manager.knex.raw(`select name as raw_name from ${TABLE} where id = ?`, [i])).rows).toEqual([{ raw_name: `n${i}` }]);
  expect(count()).toBe(before + 1);

  await manager.withConnection(async (conn) => {
    before = count();
    for (let i = 1; i <= 3; i++) expect(await conn.db(TABLE).select('name').where('id', '>', i).orderBy('id').limit(1)).toEqual([{ name: `n${i + 1}` }]);
    expect(count()).toBe(before + 1);
    const names = (await preparedOn(conn)).map((p) => p.statement);
    expect(names).toContain(`select "name" from "${TABLE}" where "id" > $1 order by "id" asc limit $2`);
  });
});

test('statementCache: false runs everything unnamed and reports no cache figures', async () => {
  const manager = oneConnection('kcm-spec-stmt-off', { statementCache: false });
  await manager.withConnection(async (conn) => {
    for (let i = 0; i < 3; i++) await conn.query(`select name from ${TABLE} where id = $1`, [1]);
    expect(await preparedOn(conn)).toEqual([]);
  });
  expect(manager.getPoolStats().statementCache).toBeUndefined();
});

test('pgbouncer: transaction turns the cache off unless it is asked for', async () => {
  const off = oneConnection('kcm-spec-stmt-bouncer', { pgbouncer: 'transaction' });
  await off.withConnection(async (conn) => {
    for (let i = 0; i < 3; i++) await conn.query(`select name from ${TABLE} where id = $1`, [1]);
    expect(await preparedOn(conn)).toEqual([]);
  });
  expect(off.getPoolStats().statementCache).toBeUndefined();
  await closeConnectionInstance();
  const on = oneConnection('kcm-spec-stmt-bouncer-on', { pgbouncer: 'transaction', statementCache: { size: 10 } });
  await on.withConnection(async (conn) => {
    for (let i = 0; i < 3; i++) await conn.query(`select name from ${TABLE} where id = $1`, [1]);
    expect((await preparedOn(conn)).length).toBeGreaterThan(0);
  });
});

test('the least recently used statement is deallocated when the cache is full', async () => {
  const manager = oneConnection('kcm-spec-stmt-lru', { statementCache: { size: 2 } });
  await manager.withConnection(async (conn) => {
    const texts = [1, 2, 3].map((k) => `select ${k} as k, name from ${TABLE} where id = $1`);
    for (const text of texts) {
      await conn.query(text, [1]);
      await conn.query(text, [1]);
    }
    // Only texts[1] and texts[2] stay prepared (plus nothing else: the listing itself ran once, unnamed).
    const prepared = (await preparedOn(conn)).map((p) => p.statement);
    expect(prepared).toEqual([texts[1], texts[2]]);
    // The evicted text still runs (unnamed, then prepared again).
    expect((await conn.query(texts[0], [2])).rows).toEqual([{ k: 1, name: 'n2' }]);
  });
  expect(manager.getPoolStats().statementCache?.evictions).toBe(1);
});

test('statements queued on one connection stay right while the cache evicts under them', async () => {
  const manager = oneConnection('kcm-spec-stmt-queued', { statementCache: { size: 2 } });
  await manager.withConnection(async (conn) => {
    const texts = [1, 2, 3, 4, 5].map((k) => `select ${k} as k, name from ${TABLE} where id = $1`);
    // Not awaited one by one: pg queues them, so evictions happen while statements that use the
    // evicted names are still waiting to be sent.
    const runs = Array.from({ length: 60 }, (_, i) => ({ k: Math.floor(i / 3) % 5, id: (i % 10) + 1 }));
    const results = await Promise.all(runs.map((r) => conn.query<{ k: number; name: string }>(texts[r.k] as string, [r.id])));
    results.forEach((result, i) => expect(result.rows).toEqual([{ k: (runs[i]?.k ?? 0) + 1, name: `n${runs[i]?.id}` }]));
    // Quiet again: what was evicted has been deallocated; at most `size` remain (and the listing runs unnamed).
    await conn.query('select 1');
    expect((await preparedOn(conn)).length).toBeLessThanOrEqual(2);
  });
  expect(manager.getPoolStats().statementCache?.evictions).toBeGreaterThan(0);
});

test('ALTER TABLE under a cached select * re-prepares and returns the new column', async () => {
  const table = `${TABLE}_alter`;
  const manager = oneConnection('kcm-spec-stmt-alter');
  await manager.withConnection(async (conn) => {
    await conn.query(`drop table if exists ${table}`);
    await conn.query(`create table ${table} (id int)`);
    await conn.query(`insert into ${table} values (1)`);
    const sql = `select * from ${table} where id = $1`;
    await conn.query(sql, [1]);
    expect((await conn.query(sql, [1])).rows).toEqual([{ id: 1 }]);
    await conn.query(`alter table ${table} add column extra text default 'x'`);
    // The cached plan's result type changed (0A000): prepared again and run once more.
    expect((await conn.query(sql, [1])).rows).toEqual([{ id: 1, extra: 'x' }]);
    expect((await conn.query(sql, [1])).rows).toEqual([{ id: 1, extra: 'x' }]);
    // The old statement was deallocated: one prepared statement for the text.
    expect((await preparedOn(conn)).filter((p) => p.statement === sql)).toHaveLength(1);
    await conn.query(`drop table ${table}`);
  });
});

test('inside a transaction a stale plan fails the statement (the transaction is aborted) and is re-prepared after', async () => {
  const table = `${TABLE}_alter_tx`;
  const manager = oneConnection('kcm-spec-stmt-alter-tx');
  await manager.withConnection(async (conn) => {
    await conn.query(`drop table if exists ${table}`);
    await conn.query(`create table ${table} (id int)`);
    await conn.query(`insert into ${table} values (1)`);
    const sql = `select * from ${table}`;
    await conn.query(sql);
    await conn.query(sql);
    await conn.query('begin');
    await conn.query(`alter table ${table} add column extra int default 7`);
    await expect(conn.query(sql)).rejects.toMatchObject({ code: '0A000' });
    await conn.query('rollback');
    // Rolled back: the column is gone again, and the text runs (prepared anew) with the old shape.
    expect((await conn.query(sql)).rows).toEqual([{ id: 1 }]);
    expect((await conn.query(sql)).rows).toEqual([{ id: 1 }]);
    await conn.query(`drop table ${table}`);
  });
});

test('ALTER TABLE under a cached knex select re-prepares through manager.knex too', async () => {
  const table = `${TABLE}_alter_knex`;
  const manager = oneConnection('kcm-spec-stmt-alter-knex');
  const knex = manager.knex;
  await knex.schema.dropTableIfExists(table);
  await knex.schema.createTable(table, (t) => t.integer('id'));
  await knex(table).insert({ id: 1 });
  for (let i = 0; i < 2; i++) expect(await knex(table).select('*').where('id', 1)).toEqual([{ id: 1 }]);
  await knex.schema.alterTable(table, (t) => t.text('extra').defaultTo('y'));
  expect(await knex(table).select('*').where('id', 1)).toEqual([{ id: 1, extra: 'y' }]);
  await knex.schema.dropTable(table);
});

test("the user's DEALLOCATE of one cached statement forgets that one only", async () => {
  const manager = oneConnection('kcm-spec-stmt-deallocate');
  await manager.withConnection(async (conn) => {
    const a = `select name from ${TABLE} where id = $1`;
    const b = `select id from ${TABLE} where name = $1`;
    for (const text of [a, a, b, b]) await conn.query(text, [text === a ? 1 : 'n1']);
    const [{ name }] = (await preparedOn(conn)).filter((p) => p.statement === a);
    await conn.query(`DEALLOCATE ${name}`);
    expect(statementCacheOf(rawOf(conn))?.prepared).toBe(1);
    expect((await conn.query(a, [8])).rows).toEqual([{ name: 'n8' }]);
    expect((await conn.query(b, ['n9'])).rows).toEqual([{ id: 9 }]);
  });
});

test("the user's DISCARD ALL empties the cache and later statements prepare again", async () => {
  const manager = oneConnection('kcm-spec-stmt-discard');
  await manager.withConnection(async (conn) => {
    const sql = `select name from ${TABLE} where id = $1`;
    await conn.query(sql, [1]);
    await conn.query(sql, [1]);
    expect(statementCacheOf(rawOf(conn))?.prepared).toBeGreaterThan(0);
    await conn.query('DISCARD ALL');
    expect(statementCacheOf(rawOf(conn))?.prepared).toBe(0);
    expect(await preparedOn(conn)).toEqual([]);
    expect((await conn.query(sql, [4])).rows).toEqual([{ name: 'n4' }]);
    expect((await conn.query(sql, [5])).rows).toEqual([{ name: 'n5' }]);
    expect((await preparedOn(conn)).map((p) => p.statement)).toContain(sql);
  });
});

test('a statement prepared behind the cache\'s back vanishing (26000) is prepared again and retried', async () => {
  const manager = oneConnection('kcm-spec-stmt-vanished');
  await manager.withConnection(async (conn) => {
    const sql = `select name from ${TABLE} where id = $1`;
    await conn.query(sql, [1]);
    await conn.query(sql, [1]);
    const [{ name }] = (await preparedOn(conn)).filter((p) => p.statement === sql);
    // Deallocated inside a function, spelled so the cache cannot recognise it.
    await conn.query(`do $$ begin execute 'deal' || 'locate ${name}'; end $$`);
    expect((await conn.query(sql, [6])).rows).toEqual([{ name: 'n6' }]);
    expect((await conn.query(sql, [7])).rows).toEqual([{ name: 'n7' }]);
  });
});

test('a statement that fails to prepare does not poison the cache', async () => {
  const manager = oneConnection('kcm-spec-stmt-syntax');
  await manager.withConnection(async (conn) => {
    const bad = `selec name from ${TABLE} where id = $1`;
    for (let i = 0; i < 3; i++) await expect(conn.query(bad, [1])).rejects.toMatchObject({ code: '42601' });
    expect(statementCacheOf(rawOf(conn))?.prepared).toBe(0);
    // A statement that prepares but fails at run time stays cached.
    const failing = `select 1 / $1::int as x`;
    await conn.query(failing, [1]);
    await conn.query(failing, [1]);
    await expect(conn.query(failing, [0])).rejects.toMatchObject({ code: '22012' });
    expect((await conn.query(failing, [1])).rows).toEqual([{ x: 1 }]);
    expect((await preparedOn(conn)).map((p) => p.statement)).toContain(failing);
  });
});

test('texts with several statements, very long texts and DISCARD are never prepared', async () => {
  const manager = oneConnection('kcm-spec-stmt-skip');
  await manager.withConnection(async (conn) => {
    const multi = 'select 1; select 2';
    const long = `select '${'x'.repeat(5_000)}' as x`;
    for (let i = 0; i < 3; i++) {
      await conn.query(multi);
      await conn.query(long);
    }
    const statements = (await preparedOn(conn)).map((p) => p.statement);
    expect(statements).not.toContain(multi);
    expect(statements).not.toContain(long);
  });
});

test('resetPool gives every connection an empty cache', async () => {
  const manager = oneConnection('kcm-spec-stmt-reset');
  const sql = `select name from ${TABLE} where id = $1`;
  await manager.withConnection(async (conn) => {
    await conn.query(sql, [1]);
    await conn.query(sql, [1]);
  });
  await manager.resetPool();
  await manager.withConnection(async (conn) => {
    expect(statementCacheOf(rawOf(conn))?.prepared).toBe(0);
    expect(await preparedOn(conn)).toEqual([]);
    expect((await conn.query(sql, [2])).rows).toEqual([{ name: 'n2' }]);
  });
});

test('knex transactions run their statements through the cache and commit', async () => {
  const table = `${TABLE}_trx`;
  const manager = oneConnection('kcm-spec-stmt-trx');
  await manager.knex.schema.dropTableIfExists(table);
  await manager.knex.schema.createTable(table, (t) => {
    t.integer('id').primary();
    t.integer('n').notNullable();
  });
  await manager.knex(table).insert({ id: 1, n: 0 });
  for (let i = 0; i < 5; i++) {
    await manager.knex.transaction(async (trx) => {
      await trx(table).where({ id: 1 }).increment('n', 1);
      await trx(table).where({ id: 1 }).first();
    });
  }
  expect(await manager.knex(table).where({ id: 1 }).first()).toEqual({ id: 1, n: 5 });
  expect(manager.getPoolStats().statementCache?.hits).toBeGreaterThanOrEqual(6);
  await manager.knex.schema.dropTable(table);
});

/** The driver client under a leased connection. */
function rawOf(conn: PooledConnection): unknown {
  return (conn as unknown as { raw: unknown }).raw;
}
