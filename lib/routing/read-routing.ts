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
import { abandonedByKnex } from '../driver/knex-errors';
import type { ReadYourWrites } from './read-your-writes';
import { isReadOnlyViolation, isReplicaFault } from './replica-faults';
import type { Router } from './router';
import type { RefusedVia, StatementPolicy } from './statement-policy';
import { errorMessage } from '../pool/messages';

type PgEntryPool = Pool<PgClient, PgPooledConnection>;

/** Most texts remembered as checked for session state, and the longest one remembered. */
const CHECKED_TEXTS_LIMIT = 1_000;
const CHECKED_TEXT_LENGTH = 4_096;

export class ReadRouting {
  constructor(
    private readonly primary: PgEntryPool,
    private readonly router: Router,
    private readonly readYourWrites: ReadYourWrites,
    private readonly clock: Clock,
    private readonly pool: Pick<ResolvedPoolOptions, 'acquireTimeoutMs' | 'createTimeoutMs'>,
    private readonly policy: StatementPolicy,
  ) {}

  /**
   * Texts already checked for session state without replicas. A text classified once can warn of
   * nothing new (warnings are per kind, once), so a repeated text skips the lexer: one Set lookup,
   * O(1) with the hash V8 keeps on the string, instead of about 0.4 µs of lexing per statement
   * (measured, docs/profile.md). Bounded: emptied when full.
   */
  private readonly checkedTexts = new Set<string>();

  /** The deadline of each `readKnex` lease, by record, for a retry on the primary (with the lease count it was fixed for). */
  private readonly readKnexDeadlines = new WeakMap<PgPooledConnection, { deadline: AcquireDeadline; lease: number }>();

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
  async leaseDefaultRead(): Promise<PgPooledConnection> {
    const deadline = this.start({});
    const entry = await this.leaseForRead(deadline);
    if (entry.owner !== this.primary) this.readKnexDeadlines.set(entry, { deadline, lease: entry.leases });
    return entry;
  }

  /**
   * Runs one `readKnex` statement, already leased as `entry`, through `run`. knex leases before it
   * shows the statement, so the classification comes second: on a replica's connection, a statement
   * classified for the primary (a write, or a declared or learned write name) runs on a primary
   * connection instead, and a read the replica fails for the replica's reasons (`25006` included)
   * runs again on the primary; both within what is left of the lease's deadline.
   */
  async runReadKnexStatement<T>(entry: PgPooledConnection, sql: string, run: (raw: PgClient) => Promise<T>): Promise<T> {
    const pool = entry.owner as PgEntryPool;
    if (pool === this.primary) return run(entry.raw as PgClient);
    const fixed = this.readKnexDeadlines.get(entry);
    const deadline = fixed !== undefined && fixed.lease === entry.leases ? fixed.deadline : this.start({});
    if (this.policy.classify(sql, false).target === 'primary') {
      this.readYourWrites.noteWrite();
    } else {
      try {
        return await run(entry.raw as PgClient);
      } catch (error) {
        // A statement knex already timed out is not retried on the primary: nobody waits for it.
        if (abandonedByKnex(entry.raw) || !this.isRetried(error, sql, pool, 'readKnex')) throw error;
      }
    }
    return this.onPrimary(deadline, (primaryEntry) => run(primaryEntry.raw as PgClient));
  }

  /**
   * A lease for a read: from the picked replica, or the primary when no replica is healthy, the
   * caller wrote recently, or the replica cannot lend one in time (it is then taken out of
   * rotation). The primary gets what is left of the caller's deadline, not a new one.
   */
  private async leaseForRead(deadline: AcquireDeadline): Promise<PgPooledConnection> {
    // With the primary's circuit open, a recent write cannot be read there anyway: a replica serves.
    const replica = this.readYourWrites.mustReadPrimary() && !this.primary.circuitOpen ? undefined : this.router.pick();
    // With no time left, a replica's timeout would say nothing about the replica: go to the primary, which reports it.
    if (!replica || deadline.remainingMs(this.clock) <= 0) return this.primary.acquire(deadline);
    try {
      const entry = await replica.handle.pool.acquire(this.replicaDeadline(deadline));
      replica.reads++;
      return entry;
    } catch (error) {
      if (isConnectionManagerError(error, 'E_ABORTED') || isConnectionManagerError(error, 'E_POOL_CLOSED') || isConnectionManagerError(error, 'E_INVALID_CONFIG')) throw error;
      this.router.markUnhealthy(replica, `could not lend a connection: ${errorMessage(error)}`);
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
    if (this.router.replicas.length === 0) {
      if (!this.checkedTexts.has(sql)) {
        this.policy.checkSessionState(sql);
        if (this.checkedTexts.size >= CHECKED_TEXTS_LIMIT) this.checkedTexts.clear();
        if (sql.length <= CHECKED_TEXT_LENGTH) this.checkedTexts.add(sql);
      }
    } else if (this.policy.classify(sql, true).target === 'replica') {
      const entry = await this.leaseForRead(deadline);
      const pool = entry.owner as PgEntryPool;
      try {
        return await entry.query<R>(sql, bindings);
      } catch (error) {
        if (pool === this.primary || !this.isRetried(error, sql, pool, 'manager.query')) throw error;
      } finally {
        if (entry.state === 'inUse') pool.release(entry);
      }
    } else {
      this.readYourWrites.noteWrite();
    }
    return this.onPrimary(deadline, (entry) => entry.query<R>(sql, bindings));
  }

  /**
   * Whether a read that failed on the replica `pool` runs again on the primary: yes for the
   * replica's faults. A read-only error (25006) says the statement writes (a function the
   * classifier does not know), not that the replica is unwell: it stays in rotation, the refusal
   * is learned from, and the write it makes on the primary counts for read-your-writes.
   */
  private isRetried(error: unknown, sql: string, pool: PgEntryPool, via: RefusedVia): boolean {
    if (!isReplicaFault(error)) return false;
    if (isReadOnlyViolation(error)) {
      this.policy.refused(sql, via);
      this.readYourWrites.noteWrite();
      return true;
    }
    const replica = this.router.replicas.find((r) => r.handle.pool === pool);
    if (replica) this.router.markUnhealthy(replica, `a read failed: ${errorMessage(error)}`);
    return true;
  }

  /** Runs `work` on a primary connection leased within `deadline`, and gives it back. */
  private async onPrimary<T>(deadline: AcquireDeadline, work: (entry: PgPooledConnection) => Promise<T>): Promise<T> {
    const entry = await this.primary.acquire(deadline);
    try {
      return await work(entry);
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
