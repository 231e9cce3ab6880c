/**
 * The SQL tokenizer of read/write splitting: a single pass that follows PostgreSQL's own lexical
 * rules (comments that nest, `'…'`, `E'…'`, `$tag$…$tag$`, quoted identifiers, `U&` forms), so that
 * nothing inside a comment, a string literal or a quoted identifier is mistaken for a keyword or a
 * call. It stops early, with the answer that sends the text to the primary, at the `kcm:primary`
 * hint or on malformed input.
 */
import {
  AMBIGUOUS_BACKSLASH,
  HINT,
  UNTERMINATED_COMMENT,
  UNTERMINATED_DOLLAR,
  UNTERMINATED_IDENTIFIER,
  UNTERMINATED_STRING,
  type StatementClass,
} from './statement-rules';

export const enum TokenKind {
  /** Unquoted identifier or keyword; `text` is its ASCII lower-case form. */
  Word,
  /** `"…"` or `U&"…"`; the name is read only when needed (`quotedName` in `classify.ts`). */
  QuotedIdentifier,
  /** `'…'`, `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'` or `$tag$…$tag$`. */
  String,
  /** Numeric literal. */
  Number,
  /** Positional parameter `$1`. */
  Param,
  /** Any other single character: `(`, `)`, `;`, `,`, `.`, operator characters, `?`, … */
  Punct,
}

export interface Token {
  readonly kind: TokenKind;
  /** Words: lower-cased; punctuation: the character; others: ''. */
  readonly text: string;
  /** Offset of the first character in the SQL text. */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
  /** A `U&"…"` identifier, whose name may be spelled with escapes. */
  readonly unicode: boolean;
}

// Character codes.
const TAB = 9;
const CR = 13;
const LF = 10;
const SPACE = 32;
const DQUOTE = 34;
const DOLLAR = 36;
const AMPERSAND = 38;
export const QUOTE = 39;
export const OPEN = 40;
const STAR = 42;
const PLUS = 43;
const DASH = 45;
export const DOT = 46;
const SLASH = 47;
const ZERO = 48;
const NINE = 57;
export const SEMICOLON = 59;
const UPPER_A = 65;
const UPPER_Z = 90;
const BACKSLASH = 92;
const UNDERSCORE = 95;
const LOWER_A = 97;
const LOWER_Z = 122;

/** Lower-case letters of the hint, compared against comment text with ASCII case folding. */
const HINT_TEXT = 'kcm:primary';

export function isPunct(token: Token, code: number): boolean {
  return token.kind === TokenKind.Punct && token.text.charCodeAt(0) === code;
}

/** The name a quoted identifier token stands for: its text between the quotes, `""` undone. */
export function quotedName(sql: string, token: Token): string {
  const name = sql.slice(token.unicode ? token.start + 3 : token.start + 1, token.end - 1);
  return name.includes('""') ? name.replace(/""/g, '"') : name;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** PostgreSQL's ident_start: ASCII letters, `_`, and any non-ASCII character. */
function isIdentStart(c: number): boolean {
  return (c >= LOWER_A && c <= LOWER_Z) || (c >= UPPER_A && c <= UPPER_Z) || c === UNDERSCORE || c >= 128;
}

/** Characters of a dollar-quote tag after the first: ident_start and digits (not `$`). */
function isTagChar(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}

/**
 * Reads tokens one at a time, skipping whitespace and comments. Stops early, with {@link stopped}
 * set, on malformed input or at the `kcm:primary` hint (either sends the text to the primary).
 */
export class Lexer {
  private pos = 0;
  /** Why lexing stopped before the end of the text, if it did. */
  stopped: StatementClass | undefined;

  constructor(private readonly sql: string) {}

  /** The next token; undefined at the end of the text or once {@link stopped} is set. */
  next(): Token | undefined {
    const sql = this.sql;
    const n = sql.length;
    let i = this.pos;
    while (i < n) {
      const c = sql.charCodeAt(i);
      if (c === SPACE || (c >= TAB && c <= CR)) {
        i++;
        continue;
      }
      if (c === DASH && sql.charCodeAt(i + 1) === DASH) {
        let j = i + 2;
        while (j < n && sql.charCodeAt(j) !== LF && sql.charCodeAt(j) !== CR) j++;
        if (containsHint(sql, i + 2, j)) return this.stop(HINT);
        i = j;
        continue;
      }
      if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
        const j = skipBlockComment(sql, i + 2);
        if (j < 0) return this.stop(UNTERMINATED_COMMENT);
        if (containsHint(sql, i + 2, j)) return this.stop(HINT);
        i = j;
        continue;
      }
      if (isIdentStart(c)) return this.word(i, c);
      if (isDigit(c) || (c === DOT && isDigit(sql.charCodeAt(i + 1)))) {
        return this.token(TokenKind.Number, '', i, scanNumber(sql, i));
      }
      if (c === QUOTE) return this.plainString(i, i + 1);
      if (c === DQUOTE) return this.quotedIdentifier(i, i + 1, false);
      if (c === DOLLAR) return this.dollar(i);
      return this.token(TokenKind.Punct, sql[i], i, i + 1);
    }
    this.pos = n;
    return undefined;
  }

  private token(kind: TokenKind, text: string, start: number, end: number, unicode = false): Token {
    this.pos = end;
    return { kind, text, start, end, unicode };
  }

  private stop(reason: StatementClass): undefined {
    this.stopped = reason;
    this.pos = this.sql.length;
    return undefined;
  }

  /** An identifier or keyword, or a prefixed literal: `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`, `U&"…"`. */
  private word(i: number, c: number): Token | undefined {
    const sql = this.sql;
    const next = sql.charCodeAt(i + 1);
    const lower = c | 0x20;
    if (next === QUOTE && c < 128) {
      if (lower === 101 /* e */) return this.escapeString(i, i + 2);
      if (lower === 98 /* b */ || lower === 120 /* x */ || lower === 110 /* n */) return this.plainString(i, i + 2);
    }
    if (next === AMPERSAND && lower === 117 /* u */) {
      const quote = sql.charCodeAt(i + 2);
      if (quote === QUOTE) return this.plainString(i, i + 3);
      if (quote === DQUOTE) return this.quotedIdentifier(i, i + 3, true);
    }
    const n = sql.length;
    let upper = c >= UPPER_A && c <= UPPER_Z;
    let wide = c >= 128;
    let j = i + 1;
    for (; j < n; j++) {
      const d = sql.charCodeAt(j);
      if (d >= LOWER_A && d <= LOWER_Z) continue;
      if (d >= UPPER_A && d <= UPPER_Z) upper = true;
      else if (d >= 128) wide = true;
      else if (!isDigit(d) && d !== UNDERSCORE && d !== DOLLAR) break;
    }
    const raw = sql.slice(i, j);
    // PostgreSQL folds only ASCII letters; String#toLowerCase would also fold some others.
    const text = !upper ? raw : wide ? raw.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : raw.toLowerCase();
    return this.token(TokenKind.Word, text, i, j);
  }

  /**
   * `'…'` with `''` for a quote (also the body of `B'…'`, `X'…'`, `N'…'`, `U&'…'`). A backslash is an
   * ordinary character under `standard_conforming_strings = on` (the default) but escapes the next
   * character when it is off; an odd run of backslashes before a quote is read differently in the
   * two modes, so it stops lexing.
   */
  private plainString(start: number, body: number): Token | undefined {
    const sql = this.sql;
    const n = sql.length;
    let backslashes = 0;
    for (let p = body; p < n; p++) {
      const d = sql.charCodeAt(p);
      if (d === QUOTE) {
        if (backslashes % 2 === 1) return this.stop(AMBIGUOUS_BACKSLASH);
        if (sql.charCodeAt(p + 1) !== QUOTE) return this.token(TokenKind.String, '', start, p + 1);
        p++;
        backslashes = 0;
      } else {
        backslashes = d === BACKSLASH ? backslashes + 1 : 0;
      }
    }
    return this.stop(UNTERMINATED_STRING);
  }

  /** `E'…'`: a backslash escapes the next character; `''` is a quote too. */
  private escapeString(start: number, body: number): Token | undefined {
    const sql = this.sql;
    const n = sql.length;
    for (let p = body; p < n; p++) {
      const d = sql.charCodeAt(p);
      if (d === BACKSLASH) p++;
      else if (d === QUOTE) {
        if (sql.charCodeAt(p + 1) !== QUOTE) return this.token(TokenKind.String, '', start, p + 1);
        p++;
      }
    }
    return this.stop(UNTERMINATED_STRING);
  }

  /** `"…"` with `""` for a double quote. The name is left in the text (`quotedName` in `classify.ts` reads it). */
  private quotedIdentifier(start: number, body: number, unicode: boolean): Token | undefined {
    const sql = this.sql;
    const n = sql.length;
    for (let p = body; p < n; p++) {
      if (sql.charCodeAt(p) !== DQUOTE) continue;
      if (sql.charCodeAt(p + 1) === DQUOTE) p++;
      else return this.token(TokenKind.QuotedIdentifier, '', start, p + 1, unicode);
    }
    return this.stop(UNTERMINATED_IDENTIFIER);
  }

  /** `$1` (parameter), `$$…$$` or `$tag$…$tag$` (string), or a lone `$`. */
  private dollar(i: number): Token | undefined {
    const sql = this.sql;
    const n = sql.length;
    let j = i + 1;
    if (isDigit(sql.charCodeAt(j))) {
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      return this.token(TokenKind.Param, '', i, j);
    }
    while (j < n && isTagChar(sql.charCodeAt(j))) j++;
    if (sql.charCodeAt(j) !== DOLLAR) return this.token(TokenKind.Punct, '$', i, i + 1);
    const delimiter = sql.slice(i, j + 1);
    const close = sql.indexOf(delimiter, j + 1);
    if (close < 0) return this.stop(UNTERMINATED_DOLLAR);
    return this.token(TokenKind.String, '', i, close + delimiter.length);
  }
}

/** End of the numeric literal starting at `i` (decimal, `.5`, exponent, `0x`/`0o`/`0b`, `_`). */
function scanNumber(sql: string, i: number): number {
  const radix = sql.charCodeAt(i + 1) | 0x20;
  if (sql.charCodeAt(i) === ZERO && (radix === 120 /* x */ || radix === 111 /* o */ || radix === 98 /* b */)) {
    let j = i + 2;
    while (isAsciiAlnum(sql.charCodeAt(j)) || sql.charCodeAt(j) === UNDERSCORE) j++;
    return j;
  }
  let j = skipDigits(sql, i);
  if (sql.charCodeAt(j) === DOT && sql.charCodeAt(j + 1) !== DOT) j = skipDigits(sql, j + 1);
  if ((sql.charCodeAt(j) | 0x20) === 101 /* e */) {
    let k = j + 1;
    const sign = sql.charCodeAt(k);
    if (sign === PLUS || sign === DASH) k++;
    if (isDigit(sql.charCodeAt(k))) j = skipDigits(sql, k);
  }
  return j;
}

/** End of the run of digits and `_` separators starting at `j`. */
function skipDigits(sql: string, j: number): number {
  for (let c = sql.charCodeAt(j); isDigit(c) || c === UNDERSCORE; c = sql.charCodeAt(++j));
  return j;
}

function isAsciiAlnum(c: number): boolean {
  return isDigit(c) || (c >= LOWER_A && c <= LOWER_Z) || (c >= UPPER_A && c <= UPPER_Z);
}

/**
 * End of the block comment whose body starts at `p` (just after the opening slash-star), or -1 if
 * it is not closed. Comments nest, as in PostgreSQL.
 */
function skipBlockComment(sql: string, p: number): number {
  const n = sql.length;
  let depth = 1;
  while (p < n) {
    const c = sql.charCodeAt(p);
    if (c === STAR && sql.charCodeAt(p + 1) === SLASH) {
      p += 2;
      if (--depth === 0) return p;
    } else if (c === SLASH && sql.charCodeAt(p + 1) === STAR) {
      p += 2;
      depth++;
    } else {
      p++;
    }
  }
  return -1;
}

/** True when `sql[from, to)` contains `kcm:primary`, ignoring ASCII case. */
function containsHint(sql: string, from: number, to: number): boolean {
  const last = to - HINT_TEXT.length;
  search: for (let p = from; p <= last; p++) {
    for (let k = 0; k < HINT_TEXT.length; k++) {
      let c = sql.charCodeAt(p + k);
      if (c >= UPPER_A && c <= UPPER_Z) c |= 0x20;
      if (c !== HINT_TEXT.charCodeAt(k)) continue search;
    }
    return true;
  }
  return false;
}
