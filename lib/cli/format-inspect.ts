/**
 * `kcm inspect`'s table: each connection of the manager with its session's server view, then the
 * sessions under the manager's prefix that no connection owns. Idle-in-transaction sessions are
 * marked, since they hold locks and snapshots while nobody runs anything on them.
 */
import { formatDuration, printable, table } from './format';

/** `GET /inspect`'s JSON (dates as ISO strings). */
export interface InspectReply {
  connections: Array<{
    id: string; pool: string; clientState: string; backendPid: number | null; state: string | null; query: string | null;
    waitEventType: string | null; waitEvent: string | null; xactStart: string | null; stateChange: string | null;
  }>;
  unowned: Array<{
    backendPid: number; applicationName: string; state: string | null; query: string | null;
    waitEventType: string | null; waitEvent: string | null; xactStart: string | null; stateChange: string | null; database: string | null;
  }>;
}

/** How long ago `iso` was, at `now`; `-` when null. */
function since(iso: string | null, now: number): string {
  return iso === null ? '-' : formatDuration(Math.max(0, now - Date.parse(iso)));
}

/** The statement on one line, cut to `width` characters. */
function oneLine(query: string | null, width = 60): string {
  if (query === null || query === '') return '-';
  const flat = printable(query.replace(/\s+/g, ' ').trim());
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

function wait(type: string | null, event: string | null): string {
  return type === null ? '-' : `${printable(type)}:${printable(event ?? '')}`;
}

/** The human-readable `kcm inspect` output at `now` (ms since the epoch). */
export function formatInspect(reply: InspectReply, now = Date.now()): string {
  const rows = reply.connections.map((c) => [
    printable(c.id), printable(c.pool), c.clientState, c.backendPid === null ? '-' : String(c.backendPid),
    c.state === null ? '(not found)' : `${c.state}${c.state.startsWith('idle in transaction') ? ' !' : ''}`,
    since(c.xactStart, now), since(c.stateChange, now), wait(c.waitEventType, c.waitEvent), oneLine(c.query),
  ]);
  const lines = [`${reply.connections.length} connection(s)`, ...table(['ID', 'POOL', 'CLIENT', 'PID', 'SERVER STATE', 'IN XACT', 'IN STATE', 'WAIT', 'QUERY'], rows, new Set([3]))];
  const idleInTx = reply.connections.filter((c) => c.state?.startsWith('idle in transaction')).length;
  if (idleInTx > 0) lines.push(`! ${idleInTx} session(s) idle in transaction: they hold locks and an old snapshot until their holder commits or rolls back.`);
  lines.push('', `${reply.unowned.length} session(s) under the manager's prefix that no connection owns (another process, or left from before a crash)`);
  if (reply.unowned.length > 0) {
    const unowned = reply.unowned.map((s) => [
      String(s.backendPid), printable(s.applicationName), printable(s.database ?? '-'), s.state ?? '-', since(s.xactStart, now), since(s.stateChange, now), oneLine(s.query),
    ]);
    lines.push(...table(['PID', 'APPLICATION NAME', 'DATABASE', 'SERVER STATE', 'IN XACT', 'IN STATE', 'QUERY'], unowned, new Set([0])));
  }
  return lines.join('\n') + '\n';
}
