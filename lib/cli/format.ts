/**
 * The CLI's human-readable output: durations, and the stats of every pool with its connections in
 * creation (B-tree) order as an aligned table.
 */
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

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
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
  let title = name;
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

/** The human-readable stats: every pool's summary and its connections in creation (B-tree) order. */
export function formatStats(stats: ManagerPoolStats): string {
  const lines = describePool('primary', stats);
  for (const [name, replica] of Object.entries(stats.replicas ?? {})) {
    lines.push('', ...describePool(name, replica, replica));
  }
  return lines.join('\n') + '\n';
}
