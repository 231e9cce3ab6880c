/**
 * Declared write functions and relations (`routing.primaryFunctions`, `routing.primaryRelations`):
 * a read that calls or reads one goes to the primary, matched by identifier token as PostgreSQL
 * resolves names (case folding of unquoted names, quoted names as written, schemas). No database
 * needed.
 */
import fc from 'fast-check';
import { classifyStatement } from '../../lib/routing/classify';
import { isConnectionManagerError } from '../../lib/errors';
import { compileRoutingRules, parseQualifiedName, type RoutingRulesOptions } from '../../lib/routing/write-list';

const rules = compileRoutingRules({
  primaryFunctions: ['make_table', 'audit.log_event', '"My Func"', 'public."Grant Ok"', 'DoGrant_OK'],
  primaryRelations: ['my_locks', 'reports.daily', '"Odd ""View"""'],
});

type Row = [description: string, sql: string, target: 'replica' | 'primary', reason?: string];
const R = 'replica' as const;
const P = 'primary' as const;

const rows: Row[] = [
  ['bare function, unqualified call', 'SELECT make_table()', P, 'declared write function: make_table()'],
  ['bare function, any schema', 'select public.make_table(1)', P],
  ['bare function, quoted schema and name', 'select "public"."make_table"(1)', P],
  ['unquoted call folds to lower case', 'SELECT MAKE_TABLE()', P],
  ['quoted lower-case call is the same name', 'SELECT "make_table"()', P],
  ['quoted call in another case is another name', 'SELECT "Make_Table"()', R],
  ['call in FROM', 'SELECT * FROM make_table() AS m', P],
  ['call with a space and a comment before (', 'SELECT make_table /* c */ (1)', P],
  ['name without a call is a column', 'SELECT make_table FROM t', R],
  ['a longer name is another function', 'SELECT make_table2(), make_tabl()', R],
  ['name in a string is text', "SELECT 'make_table()'", R],
  ['name in a comment is a comment', 'SELECT 1 /* make_table() */', R],
  ['list entry folded like SQL', 'SELECT dogrant_ok()', P, 'declared write function: dogrant_ok()'],
  ['qualified function, same schema', 'SELECT audit.log_event(1)', P, 'declared write function: audit.log_event()'],
  ['qualified function, unqualified call (search_path may reach it)', 'SELECT log_event(1)', P],
  ['qualified function, other schema', 'SELECT public.log_event(1)', R],
  ['quoted function name with a space', 'SELECT "My Func"(1)', P, 'declared write function: "My Func"()'],
  ['quoted function name, other case', 'SELECT "my func"(1)', R],
  ['quoted schema and quoted name', 'SELECT "public"."Grant Ok"()', P, 'declared write function: public."Grant Ok"()'],
  ['quoted name, unqualified', 'SELECT "Grant Ok"()', P],
  ['quoted name, other schema', 'SELECT other."Grant Ok"()', R],
  ['bare relation in FROM', 'select * from my_locks', P, 'declared write relation: my_locks'],
  ['bare relation, schema-qualified', 'SELECT * FROM public.my_locks l', P],
  ['bare relation, quoted', 'SELECT * FROM "my_locks"', P],
  ['relation in a JOIN', 'SELECT * FROM t JOIN my_locks USING (id)', P],
  ['relation in a subquery', 'SELECT * FROM t WHERE id IN (SELECT id FROM my_locks)', P],
  ['relation in TABLE', 'TABLE my_locks', P],
  ['relation in a WITH query', 'WITH x AS (SELECT * FROM my_locks) SELECT * FROM x', P],
  ['relation used as a column qualifier', 'SELECT my_locks.id FROM t', P],
  ['qualified relation, same schema', 'SELECT * FROM reports.daily', P, 'declared write relation: reports.daily'],
  ['qualified relation, unqualified', 'SELECT * FROM daily', P],
  ['qualified relation, other schema', 'SELECT * FROM archive.daily', R],
  ['relation with a doubled quote', 'SELECT * FROM "Odd ""View"""', P, 'declared write relation: "Odd ""View"""'],
  ['relation with a quote, other spelling', 'SELECT * FROM "Odd View"', R],
  ['knex-style read of another table', 'select "users".* from "users" where "users"."id" = $1', R],
  ['second statement', 'SELECT 1; SELECT make_table()', P, 'statement 2: declared write function: make_table()'],
  ['EXPLAIN ANALYZE of a call', 'EXPLAIN ANALYZE SELECT make_table()', P],
  ['plain EXPLAIN runs nothing', 'EXPLAIN SELECT make_table()', R, 'read: EXPLAIN'],
  ['a write stays a write', 'INSERT INTO t VALUES (1)', P, 'write: INSERT'],
  ['Unicode-escaped names are not decoded', 'SELECT * FROM U&"my\\005flocks"', P],
];

const cases = rows.map(([description, sql, target, reason]) => ({ description, sql, shown: JSON.stringify(sql), target, reason: reason ?? null }));

describe('classifyStatement with declared write functions and relations', () => {
  it.each(cases)('$description: $shown → $target', ({ sql, target, reason }) => {
    const result = classifyStatement(sql, rules);
    expect(result.target).toBe(target);
    if (reason !== null) expect(result.reason).toBe(reason);
  });

  it('every row that goes to the primary with the rules goes to a replica without them, but for the writes', () => {
    for (const [, sql, target] of rows) {
      if (target === P && !/^(INSERT|SELECT \* FROM U&)/.test(sql)) expect(classifyStatement(sql).target).toBe(R);
    }
  });

  it('empty rules answer exactly as no rules', () => {
    const empty = compileRoutingRules({ primaryFunctions: [], primaryRelations: [] });
    expect(empty.size).toBe(0);
    for (const [, sql] of rows) expect(classifyStatement(sql, empty)).toBe(classifyStatement(sql));
  });

  it('counts distinct names', () => {
    expect(rules.functions.size).toBe(5);
    expect(rules.relations.size).toBe(3);
    expect(compileRoutingRules({ primaryFunctions: ['f', 'F', '"f"', 'public.f'] }).functions.size).toBe(2);
  });
});

describe('compileRoutingRules', () => {
  it.each([
    ['f', { schema: undefined, name: 'f' }],
    ['MyFunc', { schema: undefined, name: 'myfunc' }],
    ['"MyFunc"', { schema: undefined, name: 'MyFunc' }],
    ['Public.F', { schema: 'public', name: 'f' }],
    [' "public" . "f" ', { schema: 'public', name: 'f' }],
    ['"a""b"', { schema: undefined, name: 'a"b' }],
    ['"a.b"', { schema: undefined, name: 'a.b' }],
  ])('reads %j as PostgreSQL does', (text, expected) => {
    expect(parseQualifiedName(text)).toEqual(expected);
  });

  it.each(['', 'f()', 'a.b.c', 'a.', '.a', '""', "'f'", 'a b', 'U&"f"', '"unterminated', 'f; drop', '1f'])(
    'rejects %j with E_INVALID_CONFIG and a message that says how to write it',
    (entry) => {
      let thrown: unknown;
      try {
        compileRoutingRules({ primaryFunctions: [entry] });
      } catch (err) {
        thrown = err;
      }
      expect(isConnectionManagerError(thrown, 'E_INVALID_CONFIG')).toBe(true);
      expect((thrown as Error).message).toContain('routing.primaryFunctions[0]');
      expect((thrown as Error).message).toContain('schema.name');
    },
  );

  it('rejects a list that is not an array, and entries that are not strings', () => {
    expect(() => compileRoutingRules({ primaryRelations: 'my_locks' as unknown as string[] })).toThrow(/routing.primaryRelations.*array/);
    expect(() => compileRoutingRules({ primaryRelations: [42 as unknown as string] })).toThrow(/routing.primaryRelations\[0\]/);
  });
});

describe('properties of declared names', () => {
  const identifier = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/);
  const sqlish = fc.string({
    unit: fc.constantFrom(
      ...'abfxyz_0123 \n\'"();,.*'.split(''),
      'select ',
      'SELECT * FROM ',
      ' from ',
      ' join ',
      'f(',
      'x.f(',
      'nextval(',
      ' for update ',
      '$$',
      '/*',
      '*/',
      '--',
      'explain analyze ',
      'public.',
      '"F"',
    ),
    maxLength: 60,
  });
  const lists = fc.record({
    primaryFunctions: fc.array(fc.oneof(identifier, fc.constantFrom('f', 'x.f', '"F"', 'public.t')), { maxLength: 4 }),
    primaryRelations: fc.array(fc.oneof(identifier, fc.constantFrom('t', 'x.t', '"T"', 'f')), { maxLength: 4 }),
  });

  it('adding names never moves a statement from the primary to a replica', () => {
    fc.assert(
      fc.property(sqlish, lists, lists, (sql, small, extra) => {
        const smaller = compileRoutingRules(small);
        const larger = compileRoutingRules({
          primaryFunctions: [...small.primaryFunctions, ...extra.primaryFunctions],
          primaryRelations: [...small.primaryRelations, ...extra.primaryRelations],
        } satisfies RoutingRulesOptions);
        if (classifyStatement(sql).target === 'primary') expect(classifyStatement(sql, smaller).target).toBe('primary');
        if (classifyStatement(sql, smaller).target === 'primary') expect(classifyStatement(sql, larger).target).toBe('primary');
      }),
      { numRuns: 2000 },
    );
  });

  it('a call of any listed function goes to the primary, however its name is cased when unquoted', () => {
    fc.assert(
      fc.property(identifier, fc.constantFrom('', 'public.', '"public".'), (name, schema) => {
        const listed = compileRoutingRules({ primaryFunctions: [name] });
        expect(classifyStatement(`SELECT ${schema}${name.toUpperCase()}(1) FROM t`, listed).target).toBe('primary');
        expect(classifyStatement(`SELECT ${schema}"${name.toLowerCase()}"(1)`, listed).target).toBe('primary');
        expect(classifyStatement(`SELECT * FROM t WHERE a = '${name}(1)'`, listed).target).toBe('replica');
      }),
      { numRuns: 500 },
    );
  });

  it('a read of any listed relation goes to the primary', () => {
    fc.assert(
      fc.property(identifier, (name) => {
        const listed = compileRoutingRules({ primaryRelations: [`s.${name}`] });
        expect(classifyStatement(`SELECT * FROM s.${name} JOIN u ON true`, listed).target).toBe('primary');
        expect(classifyStatement(`SELECT * FROM other.${name}`, listed).target).toBe(
          // "other" itself is not listed; only a name equal to "other" or "s" could match elsewhere.
          name.toLowerCase() === 'other' ? 'primary' : 'replica',
        );
      }),
      { numRuns: 500 },
    );
  });
});
