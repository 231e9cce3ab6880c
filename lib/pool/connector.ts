/**
 * What the pool needs from a database driver. The pool knows nothing of knex or pg; the driver
 * layer (lib/driver/) implements this for PostgreSQL, and tests implement it with gates.
 */

/** Opens, checks and closes physical connections of type `C`. */
export interface Connector<C> {
  /**
   * Opens one connection. Must settle within `timeoutMs` (rejecting on timeout, and cleaning up a
   * connection that arrives late).
   */
  open(timeoutMs: number): Promise<C>;
  /** Closes a connection. Must settle (the pool bounds it too); errors are logged, never thrown at users. */
  close(raw: C): Promise<void>;
  /**
   * Registers `onBroken`, called at most once when the driver learns the connection is dead
   * (socket error, server terminated the session). Must also keep the driver's error events from
   * crashing the process.
   */
  watch(raw: C, onBroken: (error: unknown) => void): void;
  /** True when the session is inside a transaction (open or failed) and must be rolled back before reuse. */
  inTransaction(raw: C): boolean;
  /** Rolls the session's transaction back. Rejects when the connection is unusable. */
  rollback(raw: C): Promise<void>;
  /** Cheap liveness check plus a round trip bounded by `timeoutMs`; never rejects. */
  validate(raw: C, timeoutMs: number): Promise<boolean>;
  /** False for errors that retrying cannot fix (bad password, unknown database). */
  isRetryable(error: unknown): boolean;
}
