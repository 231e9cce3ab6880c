/**
 * `manager.warmUp(n)`: opens connections in parallel until `n` (capped at `max`) are open, for a
 * service about to take traffic. The extra connections are ordinary idle ones: the idle timeout
 * closes them later, down to `min` (and `minIdle`).
 */
import type { Logger } from 'winston';
import { ConnectionManagerError } from '../errors';
import type { PoolEntry } from '../pool/entry';
import type { PoolMaintenance } from '../pool/maintenance';
import { errorMessage } from '../pool/messages';
import { withTimeout, type Clock } from '../pool/clock';

/** Options of `warmUp()`. */
export interface WarmUpOptions {
  /** How long to wait for the connections, in milliseconds. Default `pool.acquireTimeoutMs`. */
  timeoutMs?: number;
}

/**
 * Opens connections until `n` (capped at `max`) are open and resolves with how many are.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` for a bad `n` or `timeoutMs`; `E_CONNECT` when
 *   they were not all open within `timeoutMs` (the last connection error as `cause`).
 */
export async function warmUp<E extends PoolEntry<unknown>>(
  pool: PoolMaintenance<E>,
  n: unknown,
  options: WarmUpOptions | undefined,
  clock: Clock,
  log: Logger,
): Promise<number> {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid warmUp() count: expected a whole number of connections >= 0, got ${String(n)}. Pass how many connections to open, e.g. warmUp(20).`);
  }
  const timeoutMs = options?.timeoutMs ?? pool.options.acquireTimeoutMs;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) {
    throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid warmUp() option "timeoutMs": expected milliseconds > 0, got ${String(timeoutMs)}. Pass { timeoutMs: 10000 } or leave it out.`);
  }
  const target = Math.min(n, pool.options.max);
  const started = clock.now();
  const counts = pool.counts;
  const attempts = Array.from({ length: Math.max(0, target - counts.openCount - counts.pendingCount) }, () => pool.openOne());
  // Each open retries on its own (retry.*); one that gives up resolves undefined, so a failed
  // warm-up is known as soon as every open has ended, not only at the deadline.
  let done = await withTimeout(Promise.all(attempts), timeoutMs, clock, 'warm-up').then(() => true, () => false);
  if (done && counts.openCount < target && counts.pendingCount > 0) {
    done = await pool.whenOpen(target, Math.max(1, timeoutMs - (clock.now() - started)));
  }
  done &&= counts.openCount >= target;
  const open = counts.openCount;
  if (!done) {
    throw new ConnectionManagerError(
      'E_CONNECT',
      `Warm-up of pool "${pool.name}" reached ${open} of ${target} open connection(s) within ${timeoutMs} ms${pool.lastConnectError === undefined ? '' : ` (last connection error: ${errorMessage(pool.lastConnectError)})`}. Check that the server accepts ${target} connections, or raise timeoutMs.`,
      { cause: pool.lastConnectError },
    );
  }
  log.info(`Warm-up: ${open} connection(s) open in ${Math.round(clock.now() - started)} ms (asked ${n}, max ${pool.options.max})`, { pool: pool.name });
  return open;
}
