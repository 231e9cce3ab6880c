/**
 * The pool's growth arithmetic, in one place: how many callers no connection on its way will
 * serve, and how many opens to start. Pure functions of counts, tested as tables; they take plain
 * numbers so the acquire path allocates nothing to call them.
 *
 * "On its way" means an open in flight (`pending`) or an open record the pool has taken aside to
 * serve the queue (`incoming`: just opened, or being validated before reuse).
 */

/**
 * Waiting callers that neither opens in flight nor records on their way will serve: the ones that
 * need a release or a new open. Negative when more supply is on its way than callers wait.
 */
export function uncoveredWaiters(waiting: number, pending: number, incoming: number): number {
  return waiting - pending - incoming;
}

/**
 * How many opens to start now: enough for the uncovered waiters, to keep `min` open and to keep
 * `minIdle` idle (opens in flight count toward both), never past `max` (`occupied` counts every
 * record that holds or may soon hold a server session, including those being opened and closed).
 */
export function opensToStart(
  waiting: number,
  pending: number,
  incoming: number,
  open: number,
  occupied: number,
  min: number,
  max: number,
  idle = 0,
  minIdle = 0,
): number {
  const need = Math.max(uncoveredWaiters(waiting, pending, incoming), min - open - pending, minIdle - idle - pending);
  if (need <= 0) return 0;
  return Math.max(0, Math.min(need, max - occupied));
}
