/**
 * The driver client the statement cache sits in: a subclass of pg's `Client` whose `query()` goes
 * through the connection's cache once the pool's record attaches one.
 */
import type { Client as PgClient } from 'pg';
import { StatementCache, type BaseQuery, type QueryClass, type StatementCacheSettings } from './cache';

/** Where a driver client keeps its statement cache. */
export const CACHE = Symbol('knex-connection-manager.statementCache');

type ClientClass = new (settings: unknown) => PgClient;
const subclasses = new WeakMap<ClientClass, ClientClass>();
/** Where a caching client class keeps pg's own `query` (the cache calls it). */
const BASE_QUERY = Symbol('knex-connection-manager.baseQuery');
/** Where a caching client class keeps pg's `Query` class. */
const QUERY_CLASS = Symbol('knex-connection-manager.queryClass');

/**
 * A subclass of the driver's `Client` whose `query()` goes through the connection's cache once
 * `attachStatementCache` gave it one (until then, and with the cache off, it is pg's own). A
 * subclass rather than a property on each client, so a wrapper a test installs on one client
 * (`injectFaults`' query latency) still finds the cache underneath it.
 */
export function cachingClientClass(Base: ClientClass): ClientClass {
  const known = subclasses.get(Base);
  if (known !== undefined) return known;
  const baseQuery = Base.prototype.query as BaseQuery;
  class CachingClient extends Base {}
  Object.defineProperty(CachingClient.prototype, BASE_QUERY, { value: baseQuery });
  Object.defineProperty(CachingClient.prototype, QUERY_CLASS, { value: (Base as { Query?: QueryClass }).Query });
  Object.defineProperty(CachingClient.prototype, 'query', {
    configurable: true,
    writable: true,
    value: function query(this: PgClient & { [CACHE]?: StatementCache }, config: unknown, values?: unknown, callback?: unknown): unknown {
      const cache = this[CACHE];
      return cache === undefined ? baseQuery.call(this, config, values, callback) : cache.query(config, values, callback);
    },
  });
  subclasses.set(Base, CachingClient);
  return CachingClient;
}

/** Gives `raw` its cache when it was made by a `cachingClientClass`; another client is left as it is. */
export function attachStatementCache(raw: PgClient, settings: StatementCacheSettings): void {
  const base = (raw as PgClient & { [BASE_QUERY]?: BaseQuery })[BASE_QUERY];
  if (base === undefined) return;
  const Query = (raw as PgClient & { [QUERY_CLASS]?: QueryClass })[QUERY_CLASS];
  (raw as PgClient & { [CACHE]?: StatementCache })[CACHE] = new StatementCache(raw, settings.size, settings.stats, base, Query);
}

/** The cache of `raw`, if it has one. */
export function statementCacheOf(raw: unknown): StatementCache | undefined {
  return (raw as { [CACHE]?: StatementCache } | null | undefined)?.[CACHE];
}
