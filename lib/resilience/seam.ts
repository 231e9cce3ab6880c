/**
 * The one door `knex-connection-manager/testing` uses into a manager: a symbol-keyed method, not
 * part of the typed public API, that lists the manager's pools (primary first, then replicas).
 */
export const FAULT_SEAM: unique symbol = Symbol.for('knex-connection-manager.faults') as never;
