/**
 * Functions and relations that the application declares (or the manager learns) to write, so that a
 * read that calls or reads one of them goes to the primary: a user-defined function that writes, or
 * a view that calls one, cannot be told from a plain read by its text (pgpool-II's
 * `write_function_list` in spirit).
 *
 * Names are matched by identifier token, as PostgreSQL resolves them: unquoted identifiers are
 * folded to lower case (ASCII letters only), quoted ones are taken as written. A name listed bare
 * (`make_table`) matches in any schema and unqualified; a name listed qualified (`audit.make_table`)
 * matches that schema and also an unqualified use (`make_table(…)`), because the server's
 * `search_path` may resolve it there and the router cannot know; it does not match another schema
 * (`public.make_table(…)`).
 *
 * Built once ({@link compileRoutingRules}) and consulted by `classifyStatement(sql, rules)`. The
 * learned store (`learned-writes.ts`) adds to the same sets, so a single pass serves both.
 */
import { invalidConfig } from '../errors';
import { DOT, isPunct, Lexer, quotedName, TokenKind, type Token } from './lexer';
import { answer, type StatementClass } from './statement-rules';

/** What `routing.primaryFunctions` and `routing.primaryRelations` hold. */
export interface RoutingRulesOptions {
  /** Functions whose call sends a statement to the primary: `name`, `schema.name`, quoted parts allowed. */
  readonly primaryFunctions?: readonly string[];
  /** Tables and views whose reading sends a statement to the primary; same forms as functions. */
  readonly primaryRelations?: readonly string[];
}

/** A name as PostgreSQL resolves it: unquoted parts folded to lower case, `schema` absent when bare. */
export interface QualifiedName {
  readonly schema: string | undefined;
  readonly name: string;
}

/** Joins schema and name in a map key; a PostgreSQL identifier cannot contain a NUL character. */
const SEPARATOR = '\u0000';

/** Bits of the pre-filter: a name of this first character and length may be a function, a relation. */
const FUNCTION_BIT = 1;
const RELATION_BIT = 2;

/** The answer for a name written with Unicode escapes (`U&"…"`), which is not decoded. */
const UNICODE_NAME = answer('primary', 'name written with Unicode escapes, with write functions or relations declared');

/**
 * Index in the pre-filter of a name by its first and last characters and its length (5, 5 and 6
 * bits), so that most words are dismissed with one array read and no string hashing. Collisions
 * only cost a map lookup.
 */
function filterIndex(first: number, last: number, length: number): number {
  return (first & 31) | ((last & 31) << 5) | ((length < 63 ? length : 63) << 10);
}

/** One kind of name (functions or relations), with the answer each sends to the primary with. */
export class NameSet {
  /** Names listed bare: they match in any schema and unqualified. */
  private readonly anySchema = new Map<string, StatementClass>();
  /** Names an unqualified use matches: the bare ones and the name part of qualified ones. */
  private readonly unqualified = new Map<string, StatementClass>();
  /** `schema NUL name` of the names listed qualified. */
  private readonly qualified = new Map<string, StatementClass>();
  private count = 0;

  constructor(
    private readonly filter: Uint8Array,
    private readonly bit: number,
  ) {}

  /** How many distinct names the set holds. */
  get size(): number {
    return this.count;
  }

  /** Adds a name with the answer it sends statements to the primary with; false if already there. */
  add(entry: QualifiedName, found: StatementClass): boolean {
    const { schema, name } = entry;
    if (schema === undefined) {
      if (this.anySchema.has(name)) return false;
      this.anySchema.set(name, found);
      this.unqualified.set(name, found);
    } else {
      const key = schema + SEPARATOR + name;
      if (this.qualified.has(key)) return false;
      this.qualified.set(key, found);
      if (!this.unqualified.has(name)) this.unqualified.set(name, found);
    }
    this.count++;
    // A quoted use is pre-filtered by its raw length, where each `"` of the name is written twice.
    const first = name.charCodeAt(0);
    const last = name.charCodeAt(name.length - 1);
    this.filter[filterIndex(first, last, name.length)] |= this.bit;
    this.filter[filterIndex(first, last, name.length + name.split('"').length - 1)] |= this.bit;
    return true;
  }

  /** The answer for a use of `name`, qualified by `schema` (undefined when unqualified), if listed. */
  match(schema: string | undefined, name: string): StatementClass | undefined {
    if (schema === undefined) return this.unqualified.get(name);
    return this.anySchema.get(name) ?? this.qualified.get(schema + SEPARATOR + name);
  }
}

/**
 * The compiled `routing.primaryFunctions` and `routing.primaryRelations`, plus whatever a
 * `LearnedWrites` store adds later. Build once with {@link compileRoutingRules}; pass to
 * `classifyStatement(sql, rules)`. With no names in it, classification takes the same path as
 * without rules.
 */
export class RoutingRules {
  /** @internal Pre-filter shared by both sets: 32 first × 32 last characters × 64 lengths. */
  readonly filter = new Uint8Array(32 * 32 * 64);
  readonly functions = new NameSet(this.filter, FUNCTION_BIT);
  readonly relations = new NameSet(this.filter, RELATION_BIT);

  /** Names held, declared and learned. */
  get size(): number {
    return this.functions.size + this.relations.size;
  }
}

/**
 * Compiles the declared write functions and relations into the object `classifyStatement` reads.
 *
 * @throws ConnectionManagerError `E_INVALID_CONFIG` when a list is not an array of names, or an entry
 *   is not `name` or `schema.name` (each part an identifier, double-quoted when case-sensitive).
 */
export function compileRoutingRules(options: RoutingRulesOptions = {}): RoutingRules {
  const rules = new RoutingRules();
  addAll(rules.functions, 'routing.primaryFunctions', options.primaryFunctions, 'function', '()');
  addAll(rules.relations, 'routing.primaryRelations', options.primaryRelations, 'relation', '');
  return rules;
}

function addAll(set: NameSet, option: string, list: unknown, kind: string, suffix: string): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) {
    throw invalidConfig(option, `expected an array of ${kind} names, got ${typeof list}`, `Pass e.g. ["make_table", "audit.log_event"].`);
  }
  list.forEach((entry: unknown, i) => {
    const parsed = typeof entry === 'string' ? parseQualifiedName(entry) : undefined;
    if (parsed === undefined) {
      throw invalidConfig(
        `${option}[${i}]`,
        `${JSON.stringify(entry)} is not a ${kind} name`,
        'Write name or schema.name, without parentheses or arguments; double-quote a part that has upper-case letters or ' +
          'special characters, as in SQL: \'"MyFunc"\' or \'public."My View"\'.',
      );
    }
    set.add(parsed, answer('primary', `declared write ${kind}: ${displayName(parsed)}${suffix}`));
  });
}

/** `schema.name` for messages and stats, each part quoted when it has to be. */
export function displayName(entry: QualifiedName): string {
  return entry.schema === undefined ? sqlName(entry.name) : `${sqlName(entry.schema)}.${sqlName(entry.name)}`;
}

/** A normalised name as SQL would write it: double-quoted unless it reads the same unquoted. */
function sqlName(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * Reads `name` or `schema.name` as PostgreSQL would (unquoted parts folded, quoted parts as written);
 * undefined for anything else: more parts, other tokens, Unicode-escaped or empty quoted names.
 */
export function parseQualifiedName(text: string): QualifiedName | undefined {
  const lexer = new Lexer(text);
  const names: string[] = [];
  let expectName = true;
  for (let token = lexer.next(); token !== undefined; token = lexer.next()) {
    if (expectName) {
      const name = identifierName(text, token);
      if (name === undefined || name === '' || names.length === 2) return undefined;
      names.push(name);
    } else if (!isPunct(token, DOT)) {
      return undefined;
    }
    expectName = !expectName;
  }
  if (lexer.stopped !== undefined || expectName) return undefined;
  return names.length === 1 ? { schema: undefined, name: names[0] } : { schema: names[0], name: names[1] };
}

/** The name an identifier token stands for; undefined for other tokens and `U&"…"` names. */
export function identifierName(sql: string, token: Token): string | undefined {
  if (token.kind === TokenKind.Word) return token.text;
  if (token.kind === TokenKind.QuotedIdentifier && !token.unicode) return quotedName(sql, token);
  return undefined;
}

/** The schema written before the identifier at `j` (`schema.name`), if any. */
export function qualifierOf(sql: string, tokens: readonly Token[], j: number, from: number): string | undefined {
  if (j - 2 < from || !isPunct(tokens[j - 1], DOT)) return undefined;
  return identifierName(sql, tokens[j - 2]);
}

/**
 * Whether the token at `j` of a statement (which starts at `from`) is a call of a listed function
 * or a use of a listed relation. A relation counts wherever its name appears as an identifier (after
 * `FROM`, in `TABLE`, as a column qualifier, …): a column that happens to share a listed relation's
 * name sends the read to the primary, which is safe.
 *
 * @param callee Whether the token is followed by `(`.
 * @returns The primary answer when it is, or undefined.
 */
export function matchToken(
  sql: string,
  tokens: readonly Token[],
  j: number,
  from: number,
  callee: boolean,
  rules: RoutingRules,
): StatementClass | undefined {
  const token = tokens[j];
  let bits: number;
  if (token.kind === TokenKind.Word) {
    const text = token.text;
    bits = rules.filter[filterIndex(text.charCodeAt(0), text.charCodeAt(text.length - 1), text.length)];
  } else if (token.kind === TokenKind.QuotedIdentifier) {
    if (token.unicode) return UNICODE_NAME;
    bits = rules.filter[filterIndex(sql.charCodeAt(token.start + 1), sql.charCodeAt(token.end - 2), token.end - token.start - 2)];
  } else {
    return undefined;
  }
  if (bits === 0) return undefined;
  const name = token.kind === TokenKind.Word ? token.text : quotedName(sql, token);
  const schema = qualifierOf(sql, tokens, j, from);
  if ((bits & FUNCTION_BIT) !== 0 && callee) {
    const found = rules.functions.match(schema, name);
    if (found !== undefined) return found;
  }
  return (bits & RELATION_BIT) !== 0 ? rules.relations.match(schema, name) : undefined;
}
