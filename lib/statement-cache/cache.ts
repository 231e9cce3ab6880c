/**
 * The per-connection statement cache: a statement text seen again on a connection runs as a named
 * prepared statement, so the server parses and plans it once per session instead of per execution.
 * Every way of running a statement (`conn.query`, `manager.query`, `conn.db`, `manager.knex`,
 * `readKnex`) ends in the driver client's `query()`, which is where the cache sits (see
 * `cachingClientClass` in client.ts), so knex users get it without changing code.
 *
 * Rules (docs/options.md, "Statement cache"):
 * - A text runs unnamed the first time it is seen and prepared the second time (one-off statements,
 *   such as texts with inlined values, never take a slot or cost a DEALLOCATE).
 * - Not cached: texts longer than `MAX_CACHED_TEXT` characters; texts without bindings that hold a
 *   `;` before their end (several statements, which cannot be prepared); `DISCARD`/`DEALLOCATE`.
 * - At most `size` prepared statements per connection, least recently used deallocated first; the
 *   "seen once" list is bounded by `size` too. Memory per connection: at most 2 × `size` texts of
 *   at most `MAX_CACHED_TEXT` characters on the client, `size` prepared plans on the server.
 * - A statement that fails to prepare (a syntax error) leaves no entry: the next run prepares again.
 * - `cached plan must not change result type` (0A000) or a missing prepared statement (26000) on a
 *   cached statement: outside a transaction the statement is prepared again under a new name and
 *   run once more (the server refused it before executing anything, so this cannot run it twice);
 *   inside a transaction the failed statement has aborted the transaction, so the error reaches the
 *   caller, and the statement is prepared again at its next run.
 * - A successful `DISCARD ALL` / `DEALLOCATE ALL` empties the cache (and the driver's record of
 *   prepared statements); `DEALLOCATE <name>` of one of ours forgets that one.
 *
 * Cost on the query path, measured (docs/profile.md): a hit is one Map lookup (V8 hashes the text
 * once per string object: O(length), at most `MAX_CACHED_TEXT` characters), a use stamp and one
 * `Execution`: about 0.12 µs of client CPU per statement in a loop over this class (0.18 µs with a
 * freshly built knex text), under 1 µs in a profiled benchmark; building pg's `Query` here saves pg
 * its config copy (about 2 µs under the same profile) and the server its parse and plan. A miss adds
 * a lookup in the "seen once" set; on a full cache, finding the least recently used entry is
 * O(`size`), and its DEALLOCATE is sent once the session is idle (one more round trip, not waited for).
 */
import type { Client as PgClient, QueryResult } from 'pg';
import type { StatementCacheStats } from '../pool/stats';
import { Execution, type Callback, type ExecutionHost } from './execution';
import { extraKeys, MAX_CACHED_TEXT, RESET_SCAN_LIMIT, SESSION_RESET, severalStatements, sqlState, withName, type PlainConfig } from './text';

/** Prefix of the names of the cache's prepared statements (unique per connection: a counter follows). */
export const STATEMENT_NAME_PREFIX = 'kcm_';

/** pg's `Query` (a submittable pg runs as given, without copying a config). */
export type QueryClass = new (text: string, values: unknown, callback: Callback) => { name?: string };
/** pg's `Client.prototype.query`, called with its loose argument forms. */
export type BaseQuery = (this: PgClient, config: unknown, values?: unknown, callback?: unknown) => unknown;

/** The pg client internals read here: its record of statements parsed on the server. */
interface ParsedStatements {
  connection?: { parsedStatements?: Record<string, string>; submittedNamedStatements?: Record<string, string> };
}

/** A cached text's prepared statement. */
interface Entry {
  name: string;
  used: number;
}

/** One connection's prepared statements. */
export class StatementCache implements ExecutionHost {
  /** Text → its prepared statement and when it was last used. */
  private readonly names = new Map<string, Entry>();
  /** Counts uses: an entry's `used` is the count at its last use (least recently used = smallest). */
  private tick = 0;
  /** Texts seen once, oldest first; the second sight prepares them. */
  private readonly seen = new Set<string>();
  /** Names to DEALLOCATE once the session is not in a failed transaction. */
  private stale: string[] = [];
  private counter = 0;

  constructor(
    private readonly raw: PgClient,
    private readonly size: number,
    private readonly stats: StatementCacheStats,
    private readonly base: BaseQuery,
    /** pg's `Query` class (`Client.Query`), when the driver exposes it. */
    private readonly Query?: QueryClass,
  ) {}

  /** Statements prepared now (for tests and stats). */
  get prepared(): number {
    return this.names.size;
  }

  /** `client.query(config, values, callback)` through the cache. */
  query(config: unknown, values: unknown, callback: unknown): unknown {
    let text: string;
    let bindings: unknown = values;
    let done: unknown = callback;
    let plain: PlainConfig | undefined;
    if (typeof config === 'string') {
      text = config;
    } else if (typeof config === 'object' && config !== null && typeof (config as PlainConfig).text === 'string') {
      plain = config as PlainConfig;
      // A name of the caller's own, row paging, a forced protocol or a submittable are left to pg.
      if (plain.name !== undefined || plain.rows !== undefined || plain.queryMode !== undefined || typeof plain.submit === 'function') {
        return this.base.call(this.raw, config, values, callback);
      }
      text = plain.text;
      if (bindings === undefined || typeof bindings === 'function') bindings = plain.values;
    } else {
      return this.base.call(this.raw, config, values, callback);
    }
    if (typeof values === 'function') {
      done = values;
      if (plain === undefined) bindings = undefined;
    }
    const name = this.nameFor(text, bindings);
    if (name === undefined) {
      // Texts that may reset the session are looked at only when they run unnamed (they never get
      // a name), and only up to a length where the scan stays cheap next to sending the text.
      const reset = text.length <= RESET_SCAN_LIMIT ? SESSION_RESET.exec(text) : null;
      if (reset === null) return this.base.call(this.raw, config, values, callback);
      return this.send(new Execution(this, text, bindings, undefined, extraKeys(plain) ? plain : undefined, reset), done);
    }
    return this.send(new Execution(this, text, bindings, name, extraKeys(plain) ? plain : undefined, undefined), done);
  }

  /**
   * The name `text` runs under, or undefined to run it unnamed. Counts a hit (and moves the entry
   * to the most recently used end) or a miss; a miss on a full cache evicts the least recently used.
   */
  private nameFor(text: string, bindings: unknown): string | undefined {
    const hit = this.names.get(text);
    if (hit !== undefined) {
      hit.used = ++this.tick;
      this.stats.hits++;
      return hit.name;
    }
    if (text.length > MAX_CACHED_TEXT) return undefined;
    const bound = Array.isArray(bindings) && bindings.length > 0;
    if (!bound && severalStatements(text)) return undefined;
    this.stats.misses++;
    if (!this.seen.has(text)) {
      if (this.seen.size >= this.size) this.seen.delete(this.seen.values().next().value as string);
      this.seen.add(text);
      return undefined;
    }
    this.seen.delete(text);
    if (SESSION_RESET.test(text)) return undefined;
    if (this.names.size >= this.size) this.evictOldest();
    return this.add(text);
  }

  private add(text: string): string {
    const name = `${STATEMENT_NAME_PREFIX}${++this.counter}`;
    this.names.set(text, { name, used: ++this.tick });
    return name;
  }

  private evictOldest(): void {
    // O(size), on a miss with the cache full only: hits just stamp their entry (no reordering).
    let oldest: string | undefined;
    let least = Number.POSITIVE_INFINITY;
    for (const [text, entry] of this.names) {
      if (entry.used < least) {
        least = entry.used;
        oldest = text;
      }
    }
    if (oldest === undefined) return;
    const name = (this.names.get(oldest) as Entry).name;
    this.names.delete(oldest);
    this.stats.evictions++;
    this.drop(name);
  }

  /**
   * Marks `name` for deallocation. The driver keeps its record of it until the DEALLOCATE has run:
   * a statement already queued under that name (several queries in flight on one connection) still
   * finds it prepared and does not parse it again.
   */
  private drop(name: string): void {
    this.stale.push(name);
  }

  /**
   * Deallocates the stale names in one statement, sent when one of ours has just succeeded and the
   * session is quiet: outside a transaction (so the DEALLOCATE joins none, and a failure could abort
   * nothing) and with nothing queued in pg (so every name handed to pg has been parsed or has
   * failed, and this statement runs next). Only names the server has are sent, so it cannot fail.
   * Otherwise the names wait for a later success.
   */
  private flushStale(): void {
    const raw = this.raw as unknown as ParsedStatements & { _queryQueue?: unknown[] };
    if (this.raw.getTransactionStatus?.() !== 'I' || (raw._queryQueue?.length ?? 0) > 0) return;
    const parsed = raw.connection?.parsedStatements ?? {};
    // A name that never got prepared (its Parse failed) is not on the server: nothing to free.
    const names = this.stale.filter((name) => parsed[name] !== undefined);
    this.stale = [];
    if (names.length === 0) return;
    this.base.call(this.raw, names.map((name) => `DEALLOCATE ${name}`).join('; '), undefined, (error: Error | null) => {
      // 26000: gone already (a DISCARD ALL the cache did not see).
      if (error === null || sqlState(error) === '26000') for (const name of names) delete parsed[name];
      else this.stale.push(...names);
    });
  }

  /** After a successful DISCARD ALL / DEALLOCATE: forget what the server no longer has. */
  private sessionReset(one: string | undefined): void {
    const connection = (this.raw as unknown as ParsedStatements).connection;
    if (one !== undefined && one.toLowerCase() !== 'all') {
      // DEALLOCATE <name>: the driver and this cache forget that one statement only.
      if (connection?.parsedStatements) delete connection.parsedStatements[one];
      for (const [text, entry] of this.names) {
        if (entry.name === one) this.names.delete(text);
      }
      this.stale = this.stale.filter((n) => n !== one);
      return;
    }
    this.names.clear();
    this.stale = [];
    // Every prepared statement of the session is gone, the caller's own ones too.
    if (connection?.parsedStatements) connection.parsedStatements = {};
  }

  /**
   * Sends `execution` to pg with a callback that keeps the cache right when the statement fails: a
   * text whose preparation failed is forgotten, a stale plan or a vanished statement is prepared
   * again (and, outside a transaction, run once more). Returns pg's answer: a promise without
   * `done`, else undefined.
   */
  private send(execution: Execution, done: unknown): unknown {
    if (typeof done === 'function') {
      execution.callback = done as Callback;
      this.submit(execution);
      return undefined;
    }
    const promise = new Promise<QueryResult>((resolve, reject) => {
      execution.resolve = resolve;
      execution.reject = reject;
    });
    this.submit(execution);
    return promise;
  }

  /**
   * Hands `execution` to pg. A plain statement (text and values, as `conn.query` and knex send
   * them) goes as pg's own `Query`, built here: given a config object instead, pg copies it with
   * `Object.getOwnPropertyDescriptors` on every call (measured at about 1-2 µs per statement under
   * load, docs/profile.md), and without a callback it also wraps its promise in a second one.
   */
  submit(execution: Execution): void {
    const Query = this.Query;
    if (execution.plain === undefined && Query !== undefined) {
      const query = new Query(execution.text, execution.values, execution.done);
      if (execution.name !== undefined) query.name = execution.name;
      this.base.call(this.raw, query);
    } else {
      this.base.call(this.raw, withName(execution.text, execution.values, execution.name, execution.plain), undefined, execution.done);
    }
  }

  /** A statement of ours succeeded: deallocate what waits, and apply a DISCARD / DEALLOCATE it was. */
  succeeded(reset: RegExpExecArray | undefined): void {
    if (reset !== undefined) this.sessionReset(reset[1]);
    if (this.stale.length > 0) this.flushStale();
  }

  /**
   * The named statement `name` of `text` failed; returns the name to run it again under (once), or
   * undefined to report the error. The transaction status is still that of before the statement:
   * pg hands over the error before it reads the ReadyForQuery that follows it.
   */
  failed(error: Error, text: string, name: string, retried: boolean): string | undefined {
    if (this.names.get(text)?.name !== name) return undefined;
    const code = sqlState(error);
    if (code === '0A000' || code === '26000') {
      this.names.delete(text);
      if (code === '26000') this.forgetParsed(name);
      else this.drop(name);
      // Without getTransactionStatus() (a pg older than 8.x) it cannot tell: never run twice.
      if (retried || this.raw.getTransactionStatus?.() !== 'I') return undefined;
      return this.add(text);
    }
    // It never got prepared (a syntax error, say): leave no entry behind.
    if (!this.parsedOnServer(name)) this.names.delete(text);
    return undefined;
  }

  private parsedOnServer(name: string): boolean {
    return (this.raw as unknown as ParsedStatements).connection?.parsedStatements?.[name] !== undefined;
  }

  private forgetParsed(name: string): void {
    const parsed = (this.raw as unknown as ParsedStatements).connection?.parsedStatements;
    if (parsed !== undefined) delete parsed[name];
  }
}

/** The settings a pool hands each of its connections: the size and the pool's shared counters. */
export interface StatementCacheSettings {
  size: number;
  stats: StatementCacheStats;
}

/** Counters all at zero. */
export function newStatementCacheStats(): StatementCacheStats {
  return { hits: 0, misses: 0, evictions: 0 };
}
