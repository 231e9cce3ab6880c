/**
 * Which pool an admin request is about: `?pool=NAME` (or, for the triggers, the JSON body
 * `{ "pool": "NAME" }`), `allPools` for a trigger on every open pool, or neither: the default pool,
 * as before named pools existed.
 *
 * Only pools open now are reachable (the keys of `getPoolStats().pools`, or `primary` alone without
 * named pools): asking the manager for a name only `poolFactory` knows would make that pool, and an
 * operator's typo must never open sessions to a database.
 */
import { isConnectionManagerError } from '../errors';
import type { ManagerPoolStats } from '../pool/stats';

/** What the admin endpoint runs on one pool (a `PoolHandle` of the manager). */
export interface AdminPool {
  getPoolStats(): ManagerPoolStats;
  resetPool(): Promise<number | void>;
  triggerExpireConnections(): Promise<number>;
  triggerRenewConnections(): Promise<number>;
}

/** The pools a request is about. */
export type PoolSelection = { kind: 'default' } | { kind: 'one'; name: string } | { kind: 'all' };

/** A request the endpoint refuses before it touches a pool: its status and error code. */
export class SelectionError extends Error {
  constructor(readonly status: 400 | 404, readonly code: string, message: string) {
    super(message);
  }
}

const BODY_KEYS = ['pool', 'allPools'];
/** Names are at most 128 characters; a longer value is cut in messages. */
const shown = (name: string): string => JSON.stringify(name.length > 130 ? `${name.slice(0, 128)}…` : name);

/**
 * The selection of a trigger request, from its query string and body. Unknown parameters are
 * refused rather than ignored: a misspelt `?pol=analytics` must not reset the default pool.
 * @throws SelectionError 400 for a body that is not a JSON object of `pool` and `allPools`, an
 *   unknown or repeated parameter, both `pool` and `allPools`, or query and body that disagree.
 */
export function triggerSelection(url: string | undefined, body: string): PoolSelection {
  const query = new URLSearchParams(queryOf(url));
  let pool: string | undefined;
  let allPools: boolean | undefined;
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key);
    if (!BODY_KEYS.includes(key)) throw badRequest(`Unknown parameter ${shown(key)}: the triggers take pool=NAME or allPools.`);
    if (values.length > 1) throw badRequest(`The parameter ${key} is given ${values.length} times; give it once.`);
    if (key === 'pool') pool = poolName(values[0]);
    else allPools = flag(values[0]);
  }
  if (body.trim() !== '') {
    const parsed = parseBody(body);
    if (parsed.pool !== undefined) {
      if (pool !== undefined && pool !== parsed.pool) throw badRequest(`The query names pool ${shown(pool)} and the body ${shown(parsed.pool)}; name one.`);
      pool = parsed.pool;
    }
    if (parsed.allPools !== undefined) {
      if (allPools !== undefined && allPools !== parsed.allPools) throw badRequest('The query and the body disagree on allPools; give it once.');
      allPools = parsed.allPools;
    }
  }
  if (pool !== undefined && allPools === true) throw badRequest('Give either pool=NAME or allPools, not both.');
  if (allPools === true) return { kind: 'all' };
  return pool === undefined ? { kind: 'default' } : { kind: 'one', name: pool };
}

/** The `pool` of a `/stats` request, if any (other parameters are ignored there, as they always were). */
export function statsSelection(url: string | undefined): string | undefined {
  const values = new URLSearchParams(queryOf(url)).getAll('pool');
  if (values.length > 1) throw badRequest(`The parameter pool is given ${values.length} times; give it once.`);
  return values.length === 0 ? undefined : poolName(values[0]);
}

/** The names of the pools open now, the default one (`primary`) first. */
export function openPoolNames(stats: ManagerPoolStats): string[] {
  return stats.pools === undefined ? ['primary'] : Object.keys(stats.pools);
}

/**
 * The stats of the open pool `name` from the manager's snapshot `stats`.
 * @throws SelectionError 404 `E_UNKNOWN_POOL` when no pool of that name is open.
 */
export function poolStatsOf(stats: ManagerPoolStats, name: string): ManagerPoolStats {
  if (stats.pools === undefined) {
    if (name === 'primary') return stats;
  } else if (Object.hasOwn(stats.pools, name)) {
    return stats.pools[name];
  }
  throw notOpen(name, openPoolNames(stats));
}

/**
 * The open pool `name` of `target`, looked up without making it.
 * @throws SelectionError 404 `E_UNKNOWN_POOL` when no pool of that name is open.
 */
export function openPool(target: { getPoolStats(): ManagerPoolStats; pool(name: string): AdminPool }, name: string): AdminPool {
  const open = openPoolNames(target.getPoolStats());
  if (!open.includes(name)) throw notOpen(name, open);
  try {
    return target.pool(name);
  } catch (error) {
    if (isConnectionManagerError(error, 'E_UNKNOWN_POOL')) throw notOpen(name, open);
    throw error;
  }
}

function notOpen(name: string, open: readonly string[]): SelectionError {
  const list = open.length > 20 ? `${open.slice(0, 20).map(shown).join(', ')} and ${open.length - 20} more` : open.map(shown).join(', ');
  return new SelectionError(
    404,
    'E_UNKNOWN_POOL',
    `No pool named ${shown(name)} is open (the endpoint never makes a pool). Open pools: ${list}. GET /stats lists them under "pools".`,
  );
}

function badRequest(message: string): SelectionError {
  return new SelectionError(400, 'bad_request', message);
}

function queryOf(url: string | undefined): string {
  if (url === undefined) return '';
  const start = url.indexOf('?');
  if (start === -1) return '';
  const end = url.indexOf('#', start);
  return url.slice(start + 1, end === -1 ? undefined : end);
}

function poolName(value: string): string {
  if (value === '') throw badRequest('The parameter pool is empty: give the name of an open pool, such as pool=primary.');
  return value;
}

function flag(value: string): boolean {
  if (value === '' || value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw badRequest(`allPools takes true or false (or no value), got ${shown(value)}.`);
}

function parseBody(text: string): { pool?: string; allPools?: boolean } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest('The body is not JSON: send a JSON object such as {"pool":"analytics"} or {"allPools":true}, or no body.');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The body must be a JSON object such as {"pool":"analytics"} or {"allPools":true}.');
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!BODY_KEYS.includes(key)) throw badRequest(`Unknown field ${shown(key)} in the body: the triggers take "pool" and "allPools".`);
  }
  if (fields.pool !== undefined && typeof fields.pool !== 'string') throw badRequest('"pool" in the body must be a string, the name of an open pool.');
  if (fields.allPools !== undefined && typeof fields.allPools !== 'boolean') throw badRequest('"allPools" in the body must be true or false.');
  return {
    pool: fields.pool === undefined ? undefined : poolName(fields.pool as string),
    allPools: fields.allPools as boolean | undefined,
  };
}
