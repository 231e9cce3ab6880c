/**
 * The shapes the resilience policies show in the stats. Kept free of imports: the dashboard's
 * browser script is type-checked against the stats types without Node's.
 */

/** The state of a circuit. */
export type CircuitState = 'closed' | 'open' | 'halfOpen';

/** `stats.circuit`: the breaker's state for one pool. */
export interface CircuitStats {
  state: CircuitState;
  /** When the circuit entered its current state; null while it has never left `closed`. */
  since: Date | null;
  /** Consecutive failed connection attempts (0 after a success). */
  failures: number;
  /** The last connection error's message, while the circuit is not closed. */
  lastError?: string;
}
