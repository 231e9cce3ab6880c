/**
 * Cost per statement of `classifyStatement`, without rules, with empty rules and with 20 declared
 * write functions + 20 declared write relations, over a corpus generated deterministically from
 * templates (knex-style and hand-written selects, joins, CTEs, function calls, DML, DDL, comments,
 * quoted identifiers, long IN-lists, EXPLAIN). With `--baseline <git revision>` the classifier of
 * that revision (lib/routing/{classify,lexer,statement-rules}.ts, copied to .tmp/) is measured too,
 * interleaved with the others, so that before and after see the same machine load.
 *
 *   npx ts-node --transpile-only scripts/measure-classify.ts [--baseline <rev>] [--statements 12000] [--rounds 15]
 *
 * Each round times every setup once (in a rotating order) over the whole corpus, several passes
 * each; the table gives the median over rounds. No database, no network.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { classifyStatement, type StatementClass } from '../lib/routing/classify';
import { compileRoutingRules, type RoutingRules } from '../lib/routing/write-list';

function option(name: string, fallback: string | undefined): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const STATEMENTS = Number(option('--statements', '12000'));
const ROUNDS = Number(option('--rounds', '15'));
const BASELINE = option('--baseline', undefined);

// ---------------------------------------------------------------------------------------------
// The corpus.
// ---------------------------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so that every run measures the same corpus. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = generator(20240612);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const int = (n: number) => Math.floor(random() * n);

const TABLES = Array.from({ length: 60 }, (_, i) => pick(['users', 'orders', 'items', 'events', 'accounts', 'invoices']) + `_${i}`);
const COLUMNS = ['id', 'name', 'email', 'created_at', 'status', 'total', 'owner_id', 'payload', 'kind', 'updated_at'];
const FUNCTIONS = Array.from({ length: 40 }, (_, i) => pick(['calc', 'refresh', 'audit', 'score', 'resolve']) + `_fn_${i}`);
const BUILTINS = ['count(*)', 'lower(name)', 'coalesce(total, 0)', 'now()', 'date_trunc(\'day\', created_at)', 'jsonb_build_object(\'a\', id)'];

const col = () => pick(COLUMNS);
const table = () => pick(TABLES);
const quoted = (name: string) => `"${name}"`;

const TEMPLATES: ReadonlyArray<() => string> = [
  // knex-style: quoted identifiers, positional parameters.
  () => {
    const t = table();
    return `select ${quoted(t)}.* from ${quoted(t)} where ${quoted(t)}.${quoted(col())} = $1 limit $2`;
  },
  () => `select ${quoted(col())}, ${quoted(col())} from ${quoted(table())} where ${quoted(col())} in ($1, $2, $3) order by ${quoted(col())} desc`,
  // Hand-written, upper case, joins.
  () => {
    const [a, b] = [table(), table()];
    return `SELECT A.${col().toUpperCase()}, B.${col().toUpperCase()} FROM ${a.toUpperCase()} A JOIN ${b} B ON B.OWNER_ID = A.ID WHERE A.STATUS = 'open' ORDER BY A.CREATED_AT DESC LIMIT 50`;
  },
  () => `select t.${col()}, count(*) from ${table()} t left join ${table()} u on u.id = t.owner_id group by 1 having count(*) > 1`,
  // CTEs.
  () => `WITH recent AS (SELECT ${col()}, ${col()} FROM ${table()} WHERE created_at > now() - interval '1 day') SELECT * FROM recent r JOIN ${table()} x ON x.id = r.id`,
  () => `with a as (select id from ${table()}), b as materialized (select id from ${table()}) select count(*) from a join b using (id)`,
  // Function calls: built-ins and the application's own.
  () => `SELECT ${pick(BUILTINS)}, ${pick(BUILTINS)} FROM ${table()} WHERE ${col()} IS NOT NULL`,
  () => `select ${pick(FUNCTIONS)}($1, ${col()}) from ${table()} where id = $2`,
  () => `SELECT public.${pick(FUNCTIONS)}(${int(1000)})`,
  // Comments.
  () => `/* report ${int(100)} */ SELECT ${col()} FROM ${table()} -- trailing note\n WHERE ${col()} = 'x'`,
  // Long IN-lists.
  () => `select * from ${quoted(table())} where ${quoted('id')} in (${Array.from({ length: 20 + int(180) }, (_, i) => `$${i + 1}`).join(', ')})`,
  () => `SELECT * FROM ${table()} WHERE id IN (${Array.from({ length: 20 + int(100) }, () => int(1e6)).join(', ')})`,
  // EXPLAIN.
  () => `EXPLAIN SELECT * FROM ${table()} WHERE ${col()} = $1`,
  () => `EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM ${table()} WHERE ${col()} = $1`,
  // DML and DDL: decided by their first word.
  () => `insert into ${quoted(table())} (${quoted(col())}, ${quoted(col())}) values ($1, $2) returning ${quoted('id')}`,
  () => `update ${quoted(table())} set ${quoted(col())} = $1 where ${quoted('id')} = $2`,
  () => `DELETE FROM ${table()} WHERE id = $1`,
  () => `CREATE INDEX CONCURRENTLY idx_${int(1000)} ON ${table()} (${col()})`,
  () => `ALTER TABLE ${table()} ADD COLUMN c_${int(100)} text`,
];

function corpus(size: number): string[] {
  return Array.from({ length: size }, () => pick(TEMPLATES)());
}

// ---------------------------------------------------------------------------------------------
// The setups and the timing.
// ---------------------------------------------------------------------------------------------

type Classify = (sql: string) => StatementClass;

/** The classifier of a git revision, copied out of the repository so that both can be loaded. */
function baselineClassifier(revision: string): Classify {
  const dir = path.join(__dirname, '..', '.tmp', `classify-${revision.replace(/[^\w.-]/g, '_')}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['classify.ts', 'lexer.ts', 'statement-rules.ts']) {
    const text = execFileSync('git', ['show', `${revision}:lib/routing/${file}`], { encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return (require(path.join(dir, 'classify.ts')) as { classifyStatement: Classify }).classifyStatement;
}

/** 20 functions and 20 relations; half of each appear in the corpus, half do not. */
function listedRules(): RoutingRules {
  return compileRoutingRules({
    primaryFunctions: [...FUNCTIONS.slice(0, 10), ...Array.from({ length: 10 }, (_, i) => `app.unused_fn_${i}`)],
    primaryRelations: [...TABLES.slice(0, 10), ...Array.from({ length: 10 }, (_, i) => `reports."Unused View ${i}"`)],
  });
}

interface Setup {
  readonly name: string;
  readonly classify: Classify;
  readonly samples: number[];
  primary: number;
}

function timeOnce(setup: Setup, statements: readonly string[], passes: number): void {
  let primary = 0;
  const started = performance.now();
  for (let p = 0; p < passes; p++) {
    for (const sql of statements) if (setup.classify(sql).target === 'primary') primary++;
  }
  const elapsed = performance.now() - started;
  setup.samples.push((elapsed * 1e6) / (passes * statements.length));
  setup.primary = primary / passes;
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function main(): void {
  const statements = corpus(STATEMENTS);
  const characters = statements.reduce((sum, sql) => sum + sql.length, 0);
  const empty = compileRoutingRules({ primaryFunctions: [], primaryRelations: [] });
  const listed = listedRules();
  const setups: Setup[] = [];
  const add = (name: string, classify: Classify) => setups.push({ name, classify, samples: [], primary: 0 });
  if (BASELINE !== undefined) add(`before (${BASELINE}), no rules`, baselineClassifier(BASELINE));
  add('after, no rules', (sql) => classifyStatement(sql));
  add('after, empty lists', (sql) => classifyStatement(sql, empty));
  add('after, 20 functions + 20 relations', (sql) => classifyStatement(sql, listed));

  // Warm-up: let the JIT settle on every setup before timing any.
  for (const setup of setups) timeOnce(setup, statements, 3);
  for (const setup of setups) setup.samples.length = 0;
  const passes = 5;
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < setups.length; k++) timeOnce(setups[(round + k) % setups.length], statements, passes);
  }

  console.log(`corpus: ${statements.length} statements, ${characters} characters (mean ${(characters / statements.length).toFixed(0)})`);
  console.log(`Node ${process.version}, ${ROUNDS} rounds × ${passes} passes, setups interleaved\n`);
  const reference = median(setups[0].samples);
  console.log(`| setup | ns/statement (median) | vs ${setups[0].name} | min | max | sent to the primary |`);
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const s of setups) {
    const ratio = `${(median(s.samples) / reference).toFixed(3)}×`;
    const row = [s.name, median(s.samples).toFixed(0), ratio, Math.min(...s.samples).toFixed(0), Math.max(...s.samples).toFixed(0), String(s.primary)];
    console.log(`| ${row.join(' | ')} |`);
  }
}

main();
