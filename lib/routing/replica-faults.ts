/** How a failed read tells a replica's fault from the statement's. */

/** `25006 read_only_sql_transaction`: a write reached a read-only server. */
export function isReadOnlyViolation(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === '25006';
}

/**
 * Errors that say the replica, not the statement, is at fault: a lost connection, a server
 * shutting down or starting, or a write reaching a read-only server (25006). Reads are safe to
 * repeat on the primary after these.
 */
export function isReplicaFault(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (code === '25006' || code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNRESET, EPIPE, ...
  }
  return error instanceof Error && /Connection terminated|connection ended|not queryable/i.test(error.message);
}
