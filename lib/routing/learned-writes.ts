/**
 * Learning write functions and relations from a replica's refusals: when a hot standby answers a
 * statement with SQLSTATE `25006` (read-only transaction), something in it writes although its text
 * reads like a read. The store guesses what from the statement and adds it to the routing rules, so
 * that the next statement naming it goes to the primary without a failed round trip first.
 *
 * The guess, in order of likelihood:
 * 1. the functions the statement calls, leaving out SQL keywords that take parentheses (`IN (…)`,
 *    `EXISTS (…)`, type modifiers), the functions and relations of `pg_catalog` and
 *    `information_schema` and any `pg_`-prefixed name, and a list of common built-in functions
 *    (`count`, `coalesce`, `lower`, `now`, `jsonb_build_object`, …) that never write;
 * 2. only when it calls none of those: the relations it reads (after `FROM`, `JOIN`, `TABLE`),
 *    leaving out its own `WITH` names: a view over a side-effect function is the other cause.
 * Learning a relation a statement merely joins would send every later read of it to the primary,
 * which is why functions come first and relations only when there is no function to blame.
 *
 * Bounded: past `capacity` names nothing more is learned (the names already learned stay, and
 * statements naming new ones keep taking the failed round trip); `snapshot().ignored` counts them.
 */
import { invalidConfig } from '../errors';
import { classifyStatement } from './classify';
import { DOT, isPunct, Lexer, OPEN, TokenKind, type Token } from './lexer';
import { answer } from './statement-rules';
import { displayName, identifierName, qualifierOf, type QualifiedName, type RoutingRules } from './write-list';
import { BUILTIN_FUNCTIONS, FROM_ENDS, NOT_CALLS, NOT_RELATIONS, SYSTEM_SCHEMAS } from './learned-words';

/** One name learned from a refused statement. */
export interface LearnedName {
  readonly kind: 'function' | 'relation';
  /** `name` or `schema.name`, as written in the statement (normalised, quoted where needed). */
  readonly name: string;
}

/** What the store holds, for `getPoolStats()`. */
export interface LearnedWritesSnapshot {
  /** Learned function names, oldest first. */
  readonly functions: readonly string[];
  /** Learned relation names, oldest first. */
  readonly relations: readonly string[];
  /** Most names the store keeps. */
  readonly capacity: number;
  /** Names not learned because the store was full. */
  readonly ignored: number;
}

/** Default bound of a {@link LearnedWrites} store. */
export const DEFAULT_LEARNED_CAPACITY = 1000;

/**
 * The names learned from `25006` refusals, added to a {@link RoutingRules} that `classifyStatement`
 * consults. One store per manager; not shared between processes and not kept across restarts.
 */
export class LearnedWrites {
  private readonly functions: string[] = [];
  private readonly relations: string[] = [];
  private ignored = 0;

  /**
   * @param rules The rules the learned names are added to (the ones passed to `classifyStatement`).
   * @param capacity Most names kept, functions and relations together (default 1000).
   * @throws ConnectionManagerError `E_INVALID_CONFIG` when `capacity` is not an integer ≥ 0.
   */
  constructor(
    private readonly rules: RoutingRules,
    readonly capacity: number = DEFAULT_LEARNED_CAPACITY,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw invalidConfig('capacity', `${String(capacity)} is not a whole number of names ≥ 0`, 'Pass e.g. 1000 (0 learns nothing).');
    }
  }

  /** Names learned so far. */
  get size(): number {
    return this.functions.length + this.relations.length;
  }

  /**
   * Learns from a statement a replica refused with `25006`. A statement the classifier already sends
   * to the primary teaches nothing (it reached the replica through an explicit read lease).
   *
   * @returns The names newly learned (empty when none), for a log line each.
   */
  learnFrom(sql: string): LearnedName[] {
    if (typeof sql !== 'string' || classifyStatement(sql, this.rules).target === 'primary') return [];
    const tokens = readTokens(sql);
    if (tokens === undefined) return [];
    const learned: LearnedName[] = [];
    const calls = candidateCalls(sql, tokens);
    if (calls.length > 0) {
      for (const call of calls) this.add('function', call, learned);
    } else {
      for (const relation of candidateRelations(sql, tokens)) this.add('relation', relation, learned);
    }
    return learned;
  }

  /** What has been learned, for stats. */
  snapshot(): LearnedWritesSnapshot {
    return { functions: [...this.functions], relations: [...this.relations], capacity: this.capacity, ignored: this.ignored };
  }

  private add(kind: LearnedName['kind'], entry: QualifiedName, learned: LearnedName[]): void {
    const set = kind === 'function' ? this.rules.functions : this.rules.relations;
    if (set.match(entry.schema, entry.name) !== undefined) return;
    if (this.size >= this.capacity) {
      this.ignored++;
      return;
    }
    const name = displayName(entry);
    set.add(entry, answer('primary', `learned write ${kind}: ${name}${kind === 'function' ? '()' : ''}`));
    (kind === 'function' ? this.functions : this.relations).push(name);
    learned.push({ kind, name });
  }
}

/** All tokens of the text, or undefined when it does not lex (then there is nothing to trust). */
function readTokens(sql: string): Token[] | undefined {
  const lexer = new Lexer(sql);
  const tokens: Token[] = [];
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) tokens.push(token);
  return lexer.stopped === undefined ? tokens : undefined;
}

/** The name at `j` with its schema, or undefined when the token is not an identifier. */
function nameAt(sql: string, tokens: readonly Token[], j: number): QualifiedName | undefined {
  const name = identifierName(sql, tokens[j]);
  // `""` is no identifier (PostgreSQL refuses a zero-length one): nothing to learn from it.
  return name === undefined || name === '' ? undefined : { schema: qualifierOf(sql, tokens, j, 0), name };
}

/** A name that is the system's, not the application's: never learned. */
function isSystemName(entry: QualifiedName): boolean {
  if (entry.schema !== undefined) return SYSTEM_SCHEMAS.has(entry.schema);
  return entry.name.startsWith('pg_');
}

/** Index of the `)` that closes the `(` at `open`, or -1. */
function closingParen(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    if (tokens[k].kind !== TokenKind.Punct) continue;
    if (tokens[k].text === '(') depth++;
    else if (tokens[k].text === ')' && --depth === 0) return k;
  }
  return -1;
}

/** True when the identifier at `j` names a `WITH` query or an alias: `x AS (`, `x(a, b) AS (`, `AS x(a, b)`. */
function isDefinedName(tokens: readonly Token[], j: number): boolean {
  const previous = tokens[j - 1];
  if (previous !== undefined && previous.kind === TokenKind.Word && previous.text === 'as') return true;
  let k = j + 1;
  if (k < tokens.length && isPunct(tokens[k], OPEN)) k = closingParen(tokens, k) + 1;
  if (k <= 0 || k >= tokens.length) return false;
  const next = tokens[k];
  return next.kind === TokenKind.Word && next.text === 'as' && k + 1 < tokens.length && isWithBody(tokens[k + 1]);
}

/** What follows `name AS` in a `WITH` list: `(`, `MATERIALIZED` or `NOT MATERIALIZED`. */
function isWithBody(token: Token): boolean {
  return isPunct(token, OPEN) || (token.kind === TokenKind.Word && (token.text === 'materialized' || token.text === 'not'));
}

/** The application's functions the statement calls, each once, in order. */
function candidateCalls(sql: string, tokens: readonly Token[]): QualifiedName[] {
  const found: QualifiedName[] = [];
  const seen = new Set<string>();
  for (let j = 0; j + 1 < tokens.length; j++) {
    if (!isPunct(tokens[j + 1], OPEN)) continue;
    const entry = nameAt(sql, tokens, j);
    if (entry === undefined || isSystemName(entry) || isDefinedName(tokens, j)) continue;
    if (tokens[j].kind === TokenKind.Word && entry.schema === undefined) {
      if (NOT_CALLS.has(entry.name) || BUILTIN_FUNCTIONS.has(entry.name)) continue;
    }
    const key = displayName(entry);
    if (seen.has(key)) continue;
    seen.add(key);
    found.push(entry);
  }
  return found;
}

const enum Context {
  Other,
  Call,
  From,
}

/**
 * The relations the statement reads: the items of each `FROM` list and each `JOIN`, and the
 * relation of `TABLE name`, without the statement's own `WITH` names. A `FROM` inside a function's
 * parentheses (`extract(year FROM d)`, `substring(s FROM 2)`) is not a `FROM` list.
 */
function candidateRelations(sql: string, tokens: readonly Token[]): QualifiedName[] {
  const defined = new Set<string>();
  for (let j = 0; j < tokens.length; j++) {
    if (tokens[j].kind === TokenKind.Word && isDefinedName(tokens, j)) defined.add(tokens[j].text);
  }
  const found: QualifiedName[] = [];
  const seen = new Set<string>();
  // What each open parenthesis level is in: a function call's arguments, a FROM list, or other.
  const context: Context[] = [Context.Other];
  let expectItem = false;
  for (let j = 0; j < tokens.length; j++) {
    const token = tokens[j];
    const depth = context.length - 1;
    if (token.kind === TokenKind.Punct) {
      if (token.text === '(') {
        const call = j > 0 && identifierName(sql, tokens[j - 1]) !== undefined && !NOT_CALLS.has(tokens[j - 1].text);
        context.push(call ? Context.Call : Context.Other);
      } else if (token.text === ')') {
        if (context.length > 1) context.pop();
        expectItem = false;
      } else if (token.text === ',') {
        expectItem = context[depth] === Context.From;
      }
      continue;
    }
    if (token.kind === TokenKind.Word) {
      const word = token.text;
      if ((word === 'from' && context[depth] !== Context.Call) || word === 'join' || (word === 'table' && j === 0)) {
        context[depth] = Context.From;
        expectItem = true;
        continue;
      }
      if (FROM_ENDS.has(word) && context[depth] === Context.From) context[depth] = Context.Other;
      if (expectItem && (word === 'lateral' || word === 'only')) continue;
    }
    if (!expectItem) continue;
    expectItem = false;
    // The item: a name, possibly qualified; a name followed by `(` is a function, not a relation.
    let k = j;
    while (k + 2 < tokens.length && isPunct(tokens[k + 1], DOT) && identifierName(sql, tokens[k + 2]) !== undefined) k += 2;
    j = k;
    if (k + 1 < tokens.length && isPunct(tokens[k + 1], OPEN)) continue;
    const entry = nameAt(sql, tokens, k);
    if (entry === undefined || isSystemName(entry)) continue;
    if (tokens[k].kind === TokenKind.Word && NOT_RELATIONS.has(entry.name)) continue;
    if (entry.schema === undefined && defined.has(entry.name)) continue;
    const key = displayName(entry);
    if (seen.has(key)) continue;
    seen.add(key);
    found.push(entry);
  }
  return found;
}
