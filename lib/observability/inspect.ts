/**
 * `manager.inspect()`: the manager's connection records joined with the server's view of each
 * session (`pg_stat_activity`), plus the server sessions under the manager's prefix that no record
 * owns (leaked by another process, or left from before a crash).
 *
 * The query runs on one short-lived session opened for it, outside the pools: it never takes a
 * connection from callers, even at `pool.max` (the cost: one connect, about 3 ms on 127.0.0.1,
 * and one server session more for that time). Connect and query are bounded by
 * `pool.validationTimeoutMs`.
 */
import { Client } from 'pg';
import { ConnectionManagerError } from '../errors';
import type { PgPooledConnection } from '../driver/pooled-connection';
import { withTimeout, type Clock } from '../pool/clock';

/** Characters of each session's current or last statement kept. */
export const QUERY_CHARS = 500;

/** The server's view of one session (`pg_stat_activity`). */
export interface ServerSession {
  /** `pg_stat_activity.pid`. */
  backendPid: number;
  /** `application_name` (`<prefix>:<N>` for the manager's sessions). */
  applicationName: string;
  /** `active`, `idle`, `idle in transaction`, `idle in transaction (aborted)`, … */
  state: string | null;
  /** The running or last statement, cut to 500 characters. */
  query: string | null;
  /** What it waits on (`Lock`, `Client`, `IO`, …), when it waits. */
  waitEventType: string | null;
  waitEvent: string | null;
  /** When its transaction began (null outside one). */
  xactStart: Date | null;
  /** When `state` last changed. */
  stateChange: Date | null;
  /** When the session began. */
  backendStart: Date | null;
  /** `datname`. */
  database: string | null;
}

/** A connection record of the manager, with its session's server view (null fields when the session was not found on the server). */
export interface InspectedConnection extends Omit<ServerSession, 'backendPid' | 'applicationName' | 'backendStart' | 'database'> {
  /** The record id (`conn_<N>_<ns>`). */
  id: string;
  /** The pool it belongs to (`primary`, a replica's or a named pool's name, as in the metrics). */
  pool: string;
  /** The record's own state: `idle`, `inUse` (checked out), `reserved` (pool maintenance). */
  clientState: string;
  /** The server process id the driver reported at connect (null before). */
  backendPid: number | null;
  /** Found on the server under this name (null when not found). */
  applicationName: string | null;
}

/** What `manager.inspect()` returns. */
export interface InspectResult {
  /** Every open record of every pool, in pool order then creation order. */
  connections: InspectedConnection[];
  /** Sessions named `<prefix>:<N>` with the manager's prefixes that no record owns. */
  unowned: ServerSession[];
}

/** A pool's records, by the pool's name. */
export interface InspectedPool {
  readonly name: string;
  readonly pool: { openEntries(): PgPooledConnection[] };
}

interface ActivityRow {
  pid: number;
  application_name: string;
  state: string | null;
  query: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  xact_start: Date | null;
  state_change: Date | null;
  backend_start: Date | null;
  datname: string | null;
}

const ACTIVITY = `SELECT pid, application_name, state, left(query, ${QUERY_CHARS}) AS query, wait_event_type, wait_event,
       xact_start, state_change, backend_start, datname
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND (substring(application_name from '^(.*):[0-9]+$') = ANY($1::text[]) OR pid = ANY($2::int[]))`;

function serverSession(row: ActivityRow): ServerSession {
  return {
    backendPid: row.pid, applicationName: row.application_name, state: row.state, query: row.query,
    waitEventType: row.wait_event_type, waitEvent: row.wait_event, xactStart: row.xact_start,
    stateChange: row.state_change, backendStart: row.backend_start, database: row.datname,
  };
}

/** The startup `application_name` of a record's session (its prefix), if the driver kept it. */
function prefixOf(entry: PgPooledConnection): string | undefined {
  const name = (entry.raw as { connectionParameters?: { application_name?: unknown } } | undefined)?.connectionParameters?.application_name;
  return typeof name === 'string' ? name : undefined;
}

/**
 * Joins the records of `pools` with the server's sessions, read through a session opened with
 * `settings` (node-postgres settings of the default pool's primary).
 */
export async function inspect(
  pools: readonly InspectedPool[],
  prefix: string,
  settings: Record<string, unknown>,
  timeoutMs: number,
  clock: Clock,
): Promise<InspectResult> {
  const records = pools.flatMap(({ name, pool }) => pool.openEntries().map((entry) => ({ name, entry })));
  const prefixes = new Set([prefix]);
  for (const { entry } of records) {
    const own = prefixOf(entry);
    if (own !== undefined) prefixes.add(own);
  }
  const pids = records.map(({ entry }) => entry.backendPid).filter((pid): pid is number => pid !== undefined);
  const rows = await readActivity(settings, [...prefixes], pids, `${prefix.slice(0, 50)}-inspect`, timeoutMs, clock);
  const byPid = new Map<number, ActivityRow[]>();
  for (const row of rows) byPid.set(row.pid, [...(byPid.get(row.pid) ?? []), row]);
  const owned = new Set<ActivityRow>();
  const connections = records.map(({ name, entry }): InspectedConnection => {
    const pid = entry.backendPid;
    // The pid and the connection number together: a replica's session on another server may share a pid.
    const row = pid === undefined ? undefined : byPid.get(pid)?.find((r) => r.application_name.endsWith(`:${entry.seq}`) || !/:[0-9]+$/.test(r.application_name));
    if (row !== undefined) owned.add(row);
    return {
      id: entry.id, pool: name, clientState: entry.state, backendPid: pid ?? null, applicationName: row?.application_name ?? null,
      state: row?.state ?? null, query: row?.query ?? null, waitEventType: row?.wait_event_type ?? null, waitEvent: row?.wait_event ?? null,
      xactStart: row?.xact_start ?? null, stateChange: row?.state_change ?? null,
    };
  });
  const unowned = rows.filter((row) => !owned.has(row) && /:[0-9]+$/.test(row.application_name)).map(serverSession);
  return { connections, unowned };
}

async function readActivity(settings: Record<string, unknown>, prefixes: string[], pids: number[], name: string, timeoutMs: number, clock: Clock): Promise<ActivityRow[]> {
  const client = new Client({ ...settings, application_name: name, connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined); // a late socket error after the answer or the timeout: nothing to tell
  const read = (async () => {
    await client.connect();
    return (await client.query<ActivityRow>(ACTIVITY, [prefixes, pids])).rows;
  })();
  try {
    return await withTimeout(read, timeoutMs, clock, 'inspect() (pool.validationTimeoutMs)');
  } catch (error) {
    throw new ConnectionManagerError('E_CONNECT', `inspect() could not read pg_stat_activity within pool.validationTimeoutMs (${timeoutMs} ms): ${(error as Error).message}. Check that the primary accepts one more connection, or raise pool.validationTimeoutMs.`, { cause: error });
  } finally {
    void client.end().catch(() => undefined);
  }
}
