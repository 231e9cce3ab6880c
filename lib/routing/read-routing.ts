/**
 * Where a lease or a statement goes: the one place that decides between the primary and a
 * replica. A caller's deadline is fixed once where the call enters and handed down every path it
 * takes (a replica first, then the primary; a read retried on the primary), so no step gets a
 * fresh full timeout.
 */
import type { Client as PgClient, QueryResult } from 'pg';
import type { CheckedCallOptions } from '../call-options';
import { isConnectionManagerError } from '../errors';
import type { ResolvedPoolOptions } from '../options';
import type { Clock } from '../pool/clock';
import { AcquireDeadline } from '../pool/deadline';
import type { Pool } from '../pool/pool';
import type { PgPooledConnection, Row } from '../driver/pooled-connection';
import { classifyStatement } from './classify';
import type { ReadYourWrites } from './read-your-writes';
import { isReadOnlyViolation, isReplicaFault } from './replica-faults';
import type { Router } from './router';

type PgEntryPool = Pool<PgClient, PgPooledConnection>;

export class ReadRouting {
  constructor(
    private readonly primary: PgEntryPool,
    private readonly router: Router,
    private readonly readYourWrites: ReadYourWrites,
    private readonly clock: Clock,
    private readonly pool: Pick<ResolvedPoolOptions, 'acquireTimeoutMs' | 'createTimeoutMs'>,
  ) {}

  /** A lease for checked `getConnection()` options: a replica for `intent: 'read'`, else the primary. */
  lease(options: CheckedCallOptions): Promise<PgPooledConnection> {
    if (options.intent === 'read' && this.router.replicas.length > 0) return this.leaseForRead(this.start(options));
    if (options.intent === 'write') this.readYourWrites.noteWrite();
    // Straight to the primary: the pool fixes the one deadline itself; with neither a timeout nor
    // a signal it takes the default path, which allocates nothing.
    const bare = options.timeoutMs === undefined && options.signal === undefined && options.tags === undefined && options.priority === undefined;
    return this.primary.acquire(bare ? undefined : options);
  }

  /** A lease for a read with the default timeout (what `readKnex` queries take). */
  leaseDefaultRead(): Promise<PgPooledConnection> {
    return this.leaseForRead(this.start({}));
  }

  /**
   * A lease for a read: from the picked replica, or the primary when no replica is healthy, the
   * caller wrote recently, or the replica cannot lend one in time (it is then taken out of
   * rotation). The primary gets what is left of the caller's deadline, not a new one.
   */
  private async leaseForRead(deadline: AcquireDeadline): Promise<PgPooledConnection> {
    const replica = this.readYourWrites.mustReadPrimary() ? undefined : this.router.pick();
    // With no time left, a replica's timeout would say nothing about the replica: go to the primary, which reports it.
    if (!replica || deadline.remainingMs(this.clock) <= 0) return this.primary.acquire(deadline);
    try {
      const entry = await replica.handle.pool.acquire(this.replicaDeadline(deadline));
      replica.reads++;
      return entry;
    } catch (error) {
      if (isConnectionManagerError(error, 'E_ABORTED') || isConnectionManagerError(error, 'E_POOL_CLOSED') || isConnectionManagerError(error, 'E_INVALID_CONFIG')) throw error;
      this.router.markUnhealthy(replica, `could not lend a connection: ${error instanceof Error ? error.message : String(error)}`);
      return this.primary.acquire(deadline);
    }
  }

  /**
   * A replica gets a share of what is left of the caller's deadline (half, at most one
   * `createTimeoutMs`), so a failing replica leaves time for the primary.
   */
  private replicaDeadline(deadline: AcquireDeadline): AcquireDeadline {
    return deadline.capped(Math.min(deadline.remainingMs(this.clock) / 2, this.pool.createTimeoutMs), this.clock);
  }

  /**
   * Runs one statement where it belongs (arguments already checked): plain reads on a replica,
   * everything else on the primary. A read that fails on a replica because of the replica is
   * retried once on the primary, within what is left of the same deadline.
   */
  async query<R extends Row>(sql: string, bindings: readonly unknown[] | undefined, options: CheckedCallOptions): Promise<QueryResult<R>> {
    const deadline = this.start(options);
    if (this.router.replicas.length > 0) {
      const target = classifyStatement(sql).target;
      if (target === 'replica') {
        const entry = await this.leaseForRead(deadline);
        const pool = entry.owner as PgEntryPool;
        if (pool !== this.primary) {
          try {
            return await entry.query<R>(sql, bindings);
          } catch (error) {
            if (!isReplicaFault(error)) throw error;
            // A read-only error (25006) says the statement writes (a function the classifier does
            // not know), not that the replica is unwell: it stays in rotation.
            const replica = isReadOnlyViolation(error) ? undefined : this.router.replicas.find((r) => r.handle.pool === pool);
            if (replica) this.router.markUnhealthy(replica, `a read failed: ${error instanceof Error ? error.message : String(error)}`);
          } finally {
            if (entry.state === 'inUse') pool.release(entry);
          }
          return this.runOnPrimary<R>(sql, bindings, deadline);
        }
        try {
          return await entry.query<R>(sql, bindings);
        } finally {
          if (entry.state === 'inUse') pool.release(entry);
        }
      }
      this.readYourWrites.noteWrite();
    }
    return this.runOnPrimary<R>(sql, bindings, deadline);
  }

  private async runOnPrimary<R extends Row>(sql: string, bindings: readonly unknown[] | undefined, deadline: AcquireDeadline): Promise<QueryResult<R>> {
    const entry = await this.primary.acquire(deadline);
    try {
      return await entry.query<R>(sql, bindings);
    } finally {
      if (entry.state === 'inUse') this.primary.release(entry);
    }
  }

  /**
   * The pool that lent `connection`; the primary's for anything else (which it then refuses: each
   * pool accepts only its own records, by identity). Never throws, whatever `connection` is.
   */
  poolOf(connection: unknown): PgEntryPool {
    let owner: unknown;
    try {
      owner = (connection as Partial<PgPooledConnection> | null | undefined)?.owner;
    } catch {
      return this.primary; // a proxy whose trap throws
    }
    if (owner === this.primary) return this.primary;
    for (const r of this.router.replicas) if (owner === r.handle.pool) return r.handle.pool;
    return this.primary;
  }

  /** The call's one deadline, from now. */
  private start(options: CheckedCallOptions): AcquireDeadline {
    return AcquireDeadline.start(options, this.pool.acquireTimeoutMs, this.clock);
  }
}
