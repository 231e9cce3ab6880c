/**
 * The CLI's human-readable output: durations, the stats of every pool with its connections in
 * creation (B-tree) order as an aligned table, and with named pools a line per pool and the budget.
 */
import { InvalidArgumentError } from 'commander';
import type { ManagerPoolStats, PoolStats, ReplicaPoolStats } from '../pool/stats';

/** `850 ms`, `12.3 s`, `2m 03s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Names come from the service; no control character of one reaches the terminal. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** An aligned table: two spaces of indent and between columns, `rightAligned` columns padded left. */
export function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    '  ' + cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * How long ago a connection was last checked out or returned, by the service's clock: its
 * `createdAt + ageMs` is the moment the snapshot was taken (in JSON the dates are strings).
 */
function sinceLastUse(conn: PoolStats['connections'][number]): number {
  const created = new Date(conn.createdAt).getTime();
  const lastUsed = new Date(conn.lastUsed).getTime();
  return Math.max(0, created + conn.ageMs - lastUsed);
}

function describePool(name: string, stats: PoolStats, replica?: ReplicaPoolStats): string[] {
  const c = stats.counters;
  const lines: string[] = [];
  let title = printable(name);
  if (replica) {
    title += replica.healthy ? ' (replica, healthy' : ` (replica, OUT OF ROTATION${replica.unhealthyReason ? `: ${replica.unhealthyReason}` : ''}`;
    title += replica.lagMs === null ? ')' : `, lag ${formatDuration(replica.lagMs)})`;
  }
  lines.push(title);
  const circuit = stats.circuit;
  if (circuit && circuit.state !== 'closed') {
    lines.push(`  CIRCUIT ${circuit.state.toUpperCase()} since ${circuit.since ? new Date(circuit.since).toISOString() : '?'} after ${circuit.failures} failed attempts${circuit.lastError ? `: ${circuit.lastError}` : ''}`);
  }
  lines.push(
    `  open ${stats.total}/${stats.max} (min ${stats.min})   in use ${stats.inUse}   idle ${stats.idle}   pending ${stats.pending}   waiting ${stats.waiting}`,
  );
  const avg = stats.wait.count > 0 ? stats.wait.totalMs / stats.wait.count : 0;
  lines.push(
    `  acquired ${c.acquired}   timed out ${c.timedOut}   aborted ${c.aborted}   waits ${stats.wait.count}` +
      (stats.wait.count > 0 ? ` (avg ${formatDuration(avg)}, max ${formatDuration(stats.wait.maxMs)})` : '') +
      `   created ${c.created}   destroyed ${c.destroyed}   create errors ${c.createErrors}`,
  );
  lines.push('');
  if (stats.connections.length === 0) {
    lines.push('  (no open connections)');
  } else {
    const tagged = stats.tags !== undefined;
    const rows = stats.connections.map((conn, i) => [
      String(i + 1),
      conn.id,
      conn.inUse ? 'in use' : 'idle',
      formatDuration(conn.ageMs),
      conn.inUse ? '-' : formatDuration(conn.idleMs),
      conn.inUse ? formatDuration(sinceLastUse(conn)) : '-',
      ...(tagged ? [conn.tags ? Object.entries(conn.tags).map(([k, v]) => `${k}=${v}`).join(',') : '-'] : []),
    ]);
    lines.push(...table(['#', 'ID', 'STATE', 'AGE', 'IDLE FOR', 'IN USE FOR', ...(tagged ? ['TAGS'] : [])], rows, new Set([0, 3, 4, 5])));
  }
  lines.push(...describeTags(stats));
  return lines;
}

/** The per-tag figures (with `admission`): one row per counted key and value. */
function describeTags(stats: PoolStats): string[] {
  const rows: string[][] = [];
  for (const [key, byValue] of Object.entries(stats.tags ?? {})) {
    for (const [value, t] of Object.entries(byValue)) {
      const avg = t.wait.count > 0 ? formatDuration(t.wait.totalMs / t.wait.count) : '-';
      rows.push([`${key}=${value}`, String(t.inUse), String(t.waiting), String(t.acquired), avg, String(t.timedOut), String(t.rateLimited), formatDuration(t.heldMs)]);
    }
  }
  if (rows.length === 0) return [];
  return ['', ...table(['TAG', 'IN USE', 'WAITING', 'ACQUIRED', 'AVG WAIT', 'TIMED OUT', 'RATE LIMITED', 'HELD'], rows, new Set([1, 2, 3, 4, 5, 6, 7]))];
}

/**
 * With named pools: one line per pool (each named pool's replicas after it, as `name/replica`),
 * the budget and the pools made and closed.
 */
function describePools(stats: ManagerPoolStats): string[] {
  if (stats.pools === undefined) return [];
  const rows: string[][] = [];
  const row = (name: string, p: PoolStats): string[] =>
    [printable(name), String(p.total), String(p.max), String(p.inUse), String(p.idle), String(p.pending), String(p.waiting), p.circuit?.state ?? 'closed'];
  for (const [name, pool] of Object.entries(stats.pools)) {
    rows.push(row(name, pool));
    for (const [replica, r] of Object.entries(pool.replicas ?? {})) rows.push(row(replicaLabel(name, replica), r));
  }
  const t = stats.totals;
  const lines = [
    t ? `pools: ${t.pools} open, ${t.made} made by poolFactory, ${t.closed} closed` : 'pools',
    ...table(['POOL', 'OPEN', 'MAX', 'IN USE', 'IDLE', 'PENDING', 'WAITING', 'CIRCUIT'], rows, new Set([1, 2, 3, 4, 5, 6])),
  ];
  const b = stats.budget;
  if (b) {
    const waiting = b.waitingPools.length === 0 ? 'no pool waiting' : `waiting: ${b.waitingPools.map(printable).join(', ')}`;
    lines.push(`budget: ${b.open}/${b.maxConnections} connections (open, opening or closing), ${b.reclaimed} reclaimed, ${waiting}`);
  }
  return [...lines, ''];
}

/** A replica's pool as metrics and logs name it: bare for the default pool's, `name/replica` for a named pool's. */
function replicaLabel(pool: string, replica: string): string {
  return pool === 'primary' ? replica : `${pool}/${replica}`;
}

/**
 * The human-readable stats of the pool `name` (the default pool unless given): its summary and
 * connections in creation (B-tree) order, then its replicas'; before them, with named pools, one
 * line per pool and the budget.
 */
export function formatStats(stats: ManagerPoolStats, name = 'primary'): string {
  const lines = [...describePools(stats), ...describePool(name, stats)];
  for (const [replica, r] of Object.entries(stats.replicas ?? {})) {
    lines.push('', ...describePool(replicaLabel(name, replica), r, r));
  }
  return lines.join('\n') + '\n';
}

/** A commander argument parser for a whole number of at least `min`, named `name` in its error. */
export function wholeNumber(name: string, min: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}.`);
    return n;
  };
}

