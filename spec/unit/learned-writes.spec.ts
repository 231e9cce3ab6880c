/**
 * LearnedWrites: from a statement a replica refused with 25006, learn the application's functions it
 * calls (or, when it calls none, the relations it reads) so that the next statement naming them goes
 * to the primary. Bounded. No database needed.
 */
import fc from 'fast-check';
import { classifyStatement } from '../../lib/routing/classify';
import { LearnedWrites } from '../../lib/routing/learned-writes';
import { compileRoutingRules } from '../../lib/routing/write-list';

function store(capacity?: number, declared = {}) {
  const rules = compileRoutingRules(declared);
  return { rules, learned: new LearnedWrites(rules, capacity) };
}

describe('LearnedWrites.learnFrom', () => {
  it.each([
    ['a user-defined function', 'SELECT make_table()', [['function', 'make_table']]],
    ['a schema-qualified one, quoted', 'SELECT "App"."DoGrant"(1)', [['function', '"App"."DoGrant"']]],
    ['functions before relations', 'SELECT a.x, f(b) FROM v JOIN t ON v.id = t.id', [['function', 'f']]],
    [
      'built-ins, keywords, casts and system functions are not blamed',
      "SELECT count(*), lower(x), coalesce(a, b), now(), pg_sleep(0), pg_catalog.upper('x'), x::varchar(10), " +
        'cast(y AS numeric(5, 2)), row(1, 2), array(select 1), row_number() OVER (PARTITION BY a), count(*) FILTER (WHERE b) ' +
        'FROM t TABLESAMPLE BERNOULLI (10) WHERE a IN (1, 2) AND b = ANY (SELECT 1) AND EXISTS (SELECT 1) AND g(a) > 0',
      [['function', 'g']],
    ],
    ['each function once; an unqualified name covers its qualified uses', 'SELECT f(1), f(2), s.f(3)', [['function', 'f']]],
    ['a qualified call first, then the unqualified one', 'SELECT s.f(1), f(2)', [['function', 's.f']]],
    ['a view when no function is called', 'select * from my_locks', [['relation', 'my_locks']]],
    [
      'every relation of the FROM list and the JOINs, not WITH names nor aliases',
      'WITH w(a) AS (SELECT 1), z AS MATERIALIZED (SELECT 2) SELECT * FROM w, z, s.t1 AS x, "T2" y JOIN t3 ON true LEFT JOIN LATERAL (SELECT 1 FROM t4) q ON true',
      [['relation', 's.t1'], ['relation', '"T2"'], ['relation', 't3'], ['relation', 't4']],
    ],
    ['FROM inside a function call is not a FROM list', 'SELECT extract(year FROM d), substring(s FROM 2) FROM tab', [['relation', 'tab']]],
    ['TABLE', 'TABLE my_view', [['relation', 'my_view']]],
    ['system catalogs are not blamed', 'SELECT * FROM pg_stat_activity, information_schema.tables, pg_catalog.pg_class', []],
  ])('%s', (_description, sql, expected) => {
    const { learned } = store();
    expect(learned.learnFrom(sql).map(({ kind, name }) => [kind, name])).toEqual(expected);
  });

  it('the next statement naming what was learned goes to the primary, the others do not', () => {
    const { rules, learned } = store();
    expect(classifyStatement('SELECT make_table()', rules).target).toBe('replica');
    learned.learnFrom('SELECT make_table()');
    expect(classifyStatement('select public.make_table(2)', rules)).toEqual({
      target: 'primary',
      reason: 'learned write function: make_table()',
    });
    expect(classifyStatement('SELECT other_function()', rules).target).toBe('replica');
    learned.learnFrom('SELECT * FROM my_locks');
    expect(classifyStatement('SELECT count(*) FROM my_locks', rules).reason).toBe('learned write relation: my_locks');
  });

  it('learns nothing twice, and nothing the rules already send to the primary', () => {
    const { learned } = store(undefined, { primaryFunctions: ['audit.f'] });
    expect(learned.learnFrom('SELECT g()')).toHaveLength(1);
    expect(learned.learnFrom('SELECT g()')).toEqual([]);
    expect(learned.learnFrom('SELECT audit.f()')).toEqual([]);
    expect(learned.snapshot().functions).toEqual(['g']);
  });

  it('learns nothing from a statement the classifier sends to the primary anyway', () => {
    const { learned } = store();
    for (const sql of ['INSERT INTO t VALUES (f())', "SELECT nextval('s'), g()", 'SELECT g() FOR UPDATE', 'SELECT g() /* kcm:primary */', '']) {
      expect(learned.learnFrom(sql)).toEqual([]);
    }
    expect(learned.learnFrom(undefined as unknown as string)).toEqual([]);
    expect(learned.size).toBe(0);
  });

  it('stops learning at its capacity, keeps what it has and counts what it ignored', () => {
    const { rules, learned } = store(2);
    expect(learned.learnFrom('SELECT f1(), f2(), f3()').map((n) => n.name)).toEqual(['f1', 'f2']);
    expect(learned.learnFrom('SELECT * FROM v1')).toEqual([]);
    expect(learned.snapshot()).toEqual({ functions: ['f1', 'f2'], relations: [], capacity: 2, ignored: 2 });
    expect(classifyStatement('SELECT f2()', rules).target).toBe('primary');
    expect(classifyStatement('SELECT f3()', rules).target).toBe('replica');
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses a capacity of %p with E_INVALID_CONFIG', (capacity) => {
    expect(() => new LearnedWrites(compileRoutingRules(), capacity)).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }));
  });

  it('with a capacity of 0 learns nothing', () => {
    const { learned } = store(0);
    expect(learned.learnFrom('SELECT f()')).toEqual([]);
    expect(learned.snapshot().ignored).toBe(1);
  });

  it('snapshots are copies', () => {
    const { learned } = store();
    learned.learnFrom('SELECT f()');
    const before = learned.snapshot();
    learned.learnFrom('SELECT g()');
    expect(before.functions).toEqual(['f']);
    expect(learned.snapshot().functions).toEqual(['f', 'g']);
  });

  it('learns nothing from a zero-length quoted identifier (PostgreSQL refuses one)', () => {
    const { learned } = store(5);
    expect(learned.learnFrom('table ""')).toEqual([]);
    expect(learned.learnFrom('SELECT ""()')).toEqual([]);
    expect(learned.size).toBe(0);
  });

  it('never throws, whatever the text; what it learns sends that text to the primary; it stays within its bound', () => {
    const sqlish = fc.string({
      unit: fc.constantFrom(...'abfxyz_0 \n\'"();,.*'.split(''), 'select ', ' from ', ' join ', ' as ', 'f(', 'x.f(', 'with ', 'table ', '$$', '/*', '*/', '--'),
      maxLength: 60,
    });
    fc.assert(
      fc.property(fc.array(sqlish, { maxLength: 8 }), (texts) => {
        const { rules, learned } = store(5);
        for (const sql of texts) {
          const names = learned.learnFrom(sql);
          if (names.length > 0) expect(classifyStatement(sql, rules).target).toBe('primary');
          for (const { kind, name } of names) {
            expect(['function', 'relation']).toContain(kind);
            expect(name.length).toBeGreaterThan(0);
          }
        }
        expect(learned.size).toBeLessThanOrEqual(5);
      }),
      { numRuns: 1000 },
    );
  });

  it('after learning from a statement, that statement goes to the primary (or nothing could be blamed)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
    const statement = fc.oneof(
      name.map((n) => `SELECT ${n}_fn(1) FROM t`),
      fc.tuple(name, name).map(([a, b]) => `SELECT * FROM s.${a} JOIN ${b}_tab ON true`),
      name.map((n) => `SELECT x FROM "${n.toUpperCase()}"`),
    );
    fc.assert(
      fc.property(fc.array(statement, { maxLength: 5 }), (statements) => {
        const { rules, learned } = store();
        for (const sql of statements) {
          const names = learned.learnFrom(sql);
          if (names.length > 0) expect(classifyStatement(sql, rules).target).toBe('primary');
        }
        expect(learned.size).toBeLessThanOrEqual(learned.capacity);
      }),
      { numRuns: 300 },
    );
  });
});
