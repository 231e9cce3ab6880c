/**
 * The fleet as the database sees it (`kcm fleet --database-url URL`): every manager instance
 * connected to the database, from pg_stat_activity alone — no registry of our own, the database is
 * the source of truth. An instance is known by its sessions' application_name: the fleet listener's
 * `kcm-fleet:<service>:<instance>`, and each pool session's `<prefix>@<instance>:<N>` (fleet/naming.ts).
 * The instance id is `host:pid:random`.
 */
import { Client, type ClientConfig } from 'pg';
import { LISTENER_PREFIX } from './listener';

/** One row of pg_stat_activity, as read. */
export interface SessionRow {
  name: string;
  state: string | null;
  xactStart: Date | null;
}

/** One manager instance and its sessions. */
export interface FleetInstanceView {
  service: string;
  instance: string;
  host: string;
  pid: number;
  /** Its fleet listener is connected. */
  listening: boolean;
  /** Pool sessions (the listener not counted). */
  sessions: number;
  active: number;
  idle: number;
  idleInTransaction: number;
  /** Start of its oldest open transaction, if any. */
  oldestTransaction: Date | null;
}

export interface FleetView {
  maxConnections: number;
  /** Every client session of the server. */
  totalSessions: number;
  instances: FleetInstanceView[];
  /** Per service: instances and sessions (listeners included, as the server counts them). */
  services: Array<{ service: string; instances: number; sessions: number }>;
}

const INSTANCE = '[^:@]+:\\d+:[0-9a-f]{4}';
const LISTENER = new RegExp(`^${LISTENER_PREFIX}:([A-Za-z0-9_.-]{1,24}):(${INSTANCE})$`);
const POOL_SESSION = new RegExp(`^(.+)@(${INSTANCE}):\\d+$`);

/** Groups sessions by instance; pure (tested on rows). */
export function fleetView(rows: readonly SessionRow[], maxConnections: number, service?: string): FleetView {
  const byInstance = new Map<string, FleetInstanceView>();
  const view = (instance: string, svc: string): FleetInstanceView => {
    let v = byInstance.get(instance);
    if (v === undefined) {
      const [host, pid] = instance.split(':');
      v = { service: svc, instance, host, pid: Number(pid), listening: false, sessions: 0, active: 0, idle: 0, idleInTransaction: 0, oldestTransaction: null };
      byInstance.set(instance, v);
    }
    return v;
  };
  for (const row of rows) {
    const listener = LISTENER.exec(row.name);
    if (listener) {
      const v = view(listener[2], listener[1]);
      v.service = listener[1];
      v.listening = true;
    }
  }
  for (const row of rows) {
    const pooled = POOL_SESSION.exec(row.name);
    if (!pooled) continue;
    const v = view(pooled[2], pooled[1]);
    v.sessions++;
    if (row.state === 'active') v.active++;
    else if (row.state === 'idle') v.idle++;
    else if (row.state !== null && row.state.startsWith('idle in transaction')) v.idleInTransaction++;
    if (row.xactStart !== null && (v.oldestTransaction === null || row.xactStart < v.oldestTransaction)) v.oldestTransaction = row.xactStart;
  }
  const instances = [...byInstance.values()].filter((v) => service === undefined || v.service === service)
    .sort((a, b) => a.service.localeCompare(b.service) || a.host.localeCompare(b.host) || a.pid - b.pid);
  const services = new Map<string, { service: string; instances: number; sessions: number }>();
  for (const v of instances) {
    const s = services.get(v.service) ?? { service: v.service, instances: 0, sessions: 0 };
    s.instances++;
    s.sessions += v.sessions + (v.listening ? 1 : 0);
    services.set(v.service, s);
  }
  return { maxConnections, totalSessions: rows.length, instances, services: [...services.values()] };
}

/** Reads pg_stat_activity and `max_connections` of the database at `connection`. */
export async function readFleet(connection: string | ClientConfig, service?: string): Promise<FleetView> {
  const settings: ClientConfig = typeof connection === 'string' ? { connectionString: connection } : { ...connection };
  const client = new Client({ ...settings, application_name: 'kcm-fleet-cli' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; state: string | null; xact_start: Date | null }>(
      "SELECT application_name AS name, state, xact_start FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    const max = await client.query<{ max_connections: string }>('SHOW max_connections');
    return fleetView(rows.map((r) => ({ name: r.name, state: r.state, xactStart: r.xact_start })), Number(max.rows[0].max_connections), service);
  } finally {
    await client.end().catch(() => undefined);
  }
}
