/**
 * The types a manager's construction and its lease calls take: `GetConnectionOptions` and the
 * replaceable parts of `ManagerDependencies`. Exported from manager.ts.
 */
import type { ConnectorFactory } from '../driver/pg-pool';
import type { Clock } from '../pool/clock';
import type { AcquireOptions } from '../pool/pool';

/** Options of `getConnection()` and `withConnection()`. */
export interface GetConnectionOptions extends AcquireOptions {
  /**
   * `'read'` leases from a healthy replica (the primary when none is, or right after a write in
   * the same async context); `'write'` or no intent leases from the primary. Statements on a read
   * lease are not classified nor retried: a failure on the replica (`25006` for a write included)
   * reaches the caller, who chose the replica.
   */
  intent?: 'read' | 'write';
}

/** Replaceable parts, for tests. */
export interface ManagerDependencies {
  clock?: Clock;
  /** Replaces the PostgreSQL connector (tests with gated fake connections). */
  connector?: ConnectorFactory;
}
