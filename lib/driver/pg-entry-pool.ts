/**
 * The pool of PostgreSQL records: the generic pool, whose stats also carry the counters of the
 * statement caches of its connections. A subclass in the driver layer, so every pool built by
 * `createPgPool` (primary, replicas, any other) reports its own figures and the generic pool stays
 * ignorant of statements.
 */
import type { Client as PgClient } from 'pg';
import { Pool, type PoolConfig } from '../pool/pool';
import type { PoolStats, StatementCacheStats } from '../pool/stats';
import type { PgPooledConnection } from './pooled-connection';

export class PgEntryPool extends Pool<PgClient, PgPooledConnection> {
  constructor(
    config: PoolConfig<PgClient, PgPooledConnection>,
    /** The counters the pool's connections share; undefined with the cache off. */
    private readonly statementCache: StatementCacheStats | undefined,
  ) {
    super(config);
  }

  override stats(): PoolStats {
    const stats = super.stats();
    // `this.statementCache` is read through a copy: a snapshot must not change after it is taken.
    if (this.statementCache !== undefined) stats.statementCache = { ...this.statementCache };
    return stats;
  }
}
