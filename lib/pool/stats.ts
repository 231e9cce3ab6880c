/**
 * The pool's counters, the `PoolStats` snapshot shape (Go's `DBStats`, bb8's `Statistics`), and
 * the pure functions that build snapshots from the pool's gauges and records. Counters only ever
 * grow; gauges are read from the registry when a snapshot is taken.
 */
import type { PoolEntry } from './entry';
import type { CircuitStats } from '../resilience/types';

/** Monotonic event counters. */
export interface PoolCounters {
  /** Connections opened. */
  created: number;
  /** Connections closed, for any reason. */
  destroyed: number;
  /** Connections handed out. */
  acquired: number;
  /** Connections given back. */
  released: number;
  /** Acquires that ended with `E_ACQUIRE_TIMEOUT`. */
  timedOut: number;
  /** Acquires that ended because their `AbortSignal` fired. */
  aborted: number;
  /** Failed attempts to open a connection (each retry counts). */
  createErrors: number;
  /** Connections closed because a validation or rollback failed, the driver reported them dead, or knex disposed of them. */
  validationFailures: number;
  /** Connections retired for passing their max lifetime. */
  expired: number;
  /** Connections closed by the idle timeout. */
  idleClosed: number;
  /** Connections replaced by `triggerRenewConnections()`. */
  renewed: number;
  /** Leases reported as possible leaks. */
  leaksDetected: number;
  /** Attempts of `manager.transaction()` / `withRetry()` after the first (primary pool only). */
  transactionRetries: number;
  /** Connections closed to give their slot of `budget.maxConnections` to another pool (docs/named-pools.md). */
  reclaimed: number;
}

/** Acquires that had to wait. */
export interface WaitStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

/** One connection as shown in the stats. */
export interface ConnectionStats {
  id: string;
  createdAt: Date;
  lastUsed: Date;
  inUse: boolean;
  /** Milliseconds since the connection was opened. */
  ageMs: number;
  /** Milliseconds since it was last checked out or returned. */
  idleMs: number;
  /** The holder's tags while checked out (with `admission` configured), else undefined. */
  tags?: Readonly<Record<string, string>>;
}

/** The figures of one tag value (`stats.tags[key][value]`, with `admission` configured). */
export interface TagStats {
  /** Connections held now by callers with this value. */
  inUse: number;
  /** Callers with this value waiting now. */
  waiting: number;
  /** Connections handed out to callers with this value. */
  acquired: number;
  /** Acquires with this value that ended with `E_ACQUIRE_TIMEOUT`. */
  timedOut: number;
  /** Acquires with this value refused with `E_RATE_LIMITED`. */
  rateLimited: number;
  /** Acquires with this value that had to wait. */
  wait: WaitStats;
  /** Total milliseconds connections were held by callers with this value (added on release). */
  heldMs: number;
}

/** Per counted tag key, per value (at most `admission.maxTagValues`, the rest under `"(other)"`). */
export type TagStatsByKey = Record<string, Record<string, TagStats>>;

/** What the stats read from an admission policy (see `AdmissionPolicy` in waiters.ts). */
export interface TagSource {
  tagsOf(entry: never): Readonly<Record<string, string>> | undefined;
  tagStats(): TagStatsByKey;
}

/**
 * A snapshot of a pool. At every observable moment `total === idle + inUse`,
 * `total + pending <= max` (after a shrinking `resize()`: once the connections it retired are back)
 * and `connections.length === total`.
 */
export interface PoolStats {
  min: number;
  max: number;
  /** Open connections. */
  total: number;
  /** Open connections ready to be handed out. */
  idle: number;
  /** Open connections checked out (or busy with pool maintenance). */
  inUse: number;
  /** Connections being opened. */
  pending: number;
  /** Callers waiting for a connection. */
  waiting: number;
  counters: PoolCounters;
  wait: WaitStats;
  /** Every open connection, in creation order. */
  connections: ConnectionStats[];
  /** The circuit breaker's state (always `closed` with `circuitBreaker: false`). */
  circuit: CircuitStats;
  /** Per-tag figures; only with `admission` configured. */
  tags?: TagStatsByKey;
}

export function newCounters(): PoolCounters {
  return {
    created: 0, destroyed: 0, acquired: 0, released: 0, timedOut: 0, aborted: 0, createErrors: 0,
    validationFailures: 0, expired: 0, idleClosed: 0, renewed: 0, leaksDetected: 0, transactionRetries: 0, reclaimed: 0,
  };
}

/** The pool's gauges at one moment: what stats, log lines and error messages are built from. */
export interface PoolGauges extends Pick<PoolStats, 'min' | 'max' | 'total' | 'idle' | 'inUse' | 'pending' | 'waiting'> {
  /** Being closed (still a server session, so counted toward `max`). */
  closing: number;
}

/** The stats snapshot of a pool whose gauges are `gauges` and open records `entries` (creation order). */
export function statsSnapshot(
  gauges: PoolGauges,
  counters: PoolCounters,
  wait: WaitStats,
  entries: readonly PoolEntry<unknown>[],
  now: number,
  circuit: CircuitStats = { state: 'closed', since: null, failures: 0 },
  admission?: TagSource,
): PoolStats {
  const stats: PoolStats = {
    min: gauges.min,
    max: gauges.max,
    total: gauges.total,
    idle: gauges.idle,
    inUse: gauges.inUse,
    pending: gauges.pending,
    waiting: gauges.waiting,
    counters: { ...counters },
    wait: { ...wait },
    connections: entries.map((e) => ({
      id: e.id,
      createdAt: e.createdAt,
      lastUsed: e.lastUsed,
      inUse: e.inUse,
      ageMs: Math.max(0, now - e.createdMono),
      idleMs: e.state === 'idle' ? Math.max(0, now - e.lastUsedMono) : 0,
    })),
    circuit,
  };
  if (admission !== undefined) {
    const tagsOf = admission.tagsOf as (entry: PoolEntry<unknown>) => Readonly<Record<string, string>> | undefined;
    for (let i = 0; i < entries.length; i++) {
      const tags = entries[i].state === 'inUse' ? tagsOf.call(admission, entries[i]) : undefined;
      if (tags !== undefined) stats.connections[i].tags = tags;
    }
    stats.tags = admission.tagStats();
  }
  return stats;
}

/** A checked-out connection and how long it has been held. */
export interface HeldConnection {
  id: string;
  heldMs: number;
  acquiredAt: string | undefined;
}

/** The checked-out records among `entries`, longest held first, at most `limit`. */
export function longestHeld(entries: readonly PoolEntry<unknown>[], now: number, limit: number): HeldConnection[] {
  return entries
    .filter((e) => e.state === 'inUse')
    .map((e) => ({ id: e.id, heldMs: Math.round(now - e.checkedOutMono), acquiredAt: e.acquiredAt }))
    .sort((a, b) => b.heldMs - a.heldMs)
    .slice(0, limit);
}

/** A replica's pool statistics plus its health. */
export interface ReplicaPoolStats extends PoolStats {
  /** In rotation for reads. */
  healthy: boolean;
  /** Replay lag at the last health check, in milliseconds (null when unknown). */
  lagMs: number | null;
  /** Times it went out of or back into rotation. */
  healthChanges: number;
  /** Why it is out of rotation, if it is. */
  unhealthyReason?: string;
}

/** Write names learned from replicas' `25006` refusals (`LearnedWrites.snapshot()`). */
export interface LearnedWritesStats {
  /** Learned function names, oldest first. */
  readonly functions: readonly string[];
  /** Learned relation names, oldest first. */
  readonly relations: readonly string[];
  /** Most names kept (functions and relations together). */
  readonly capacity: number;
  /** Names not learned because the store was full. */
  readonly ignored: number;
}

/** What the manager knows about statements beyond their text (see docs/routing.md). */
export interface RoutingStats {
  /** Whether names are learned from `25006` refusals (`routing.learnFromReadOnlyErrors`). */
  learning: boolean;
  /** The learned names (empty while learning is off). */
  learned: LearnedWritesStats;
  /** Statements a replica refused with `25006` (read-only), each then run on the primary. */
  readOnlyRefusals: number;
  /** Session-state kinds (`set`, `temp-table`, …) warned about so far, each once per manager. */
  sessionStateWarnings: string[];
}

/** The primary's pool statistics (top level) plus, with replicas configured, each replica's. */
export interface ManagerPoolStats extends PoolStats {
  replicas?: Record<string, ReplicaPoolStats>;
  /** With replicas configured: the declared and learned write names at work, and the refusals seen. */
  routing?: RoutingStats;
  /**
   * With `pools`, `poolFactory` or `budget` configured: every pool of the manager by name, the
   * default one as `primary` (docs/named-pools.md).
   */
  pools?: Record<string, ManagerPoolStats>;
  /** With `budget` configured: the connection budget across every pool. */
  budget?: BudgetStats;
  /** With `pools`, `poolFactory` or `budget` configured: counts over every pool the manager has had. */
  totals?: PoolTotals;
  /** With `fleet` configured: the fleet listener (lib/fleet). */
  fleet?: FleetStats;
}

/** `getPoolStats().fleet`. */
export interface FleetStats {
  service: string;
  channel: string;
  /** This instance's id: `host:pid:random`. */
  instance: string;
  /** True while the listening session is connected and listening. */
  listening: boolean;
  /** Commands run. */
  commands: number;
  /** Commands refused: bad signature, stale, replayed, malformed (commands for other services are not counted). */
  refused: number;
  /** Times the listening session was opened again after it was lost. */
  reconnects: number;
  /** The last command run, and how it ended. */
  last?: { command: string; at: Date; ok: boolean; error?: string };
}


/** `stats.budget`: one limit on the connections of every pool of a manager. */
export interface BudgetStats {
  /** `budget.maxConnections`. */
  maxConnections: number;
  /** Connections of every pool that hold or may soon hold a server session: open, being opened, being closed. */
  open: number;
  /** Connections closed to give their slot to another pool. */
  reclaimed: number;
  /** Pools waiting for a slot now, in the order they are served. */
  waitingPools: string[];
}

/** `stats.totals`: the counters of every pool the manager has had, closed dynamic pools included. */
export interface PoolTotals {
  /** Pools open now (the default pool, named pools, their replicas' pools and dynamic pools). */
  pools: number;
  /** Dynamic pools made by `poolFactory` so far. */
  made: number;
  /** Dynamic pools closed so far (idle past `poolIdleTimeoutMs`, or to make room under `maxPools`). */
  closed: number;
  /** Every pool's counters added up, closed pools included. */
  counters: PoolCounters;
}

/** A pool's statement cache counters (`stats.statementCache`; see docs/options.md, "Statement cache"). */
export interface StatementCacheStats {
  /** Statements run as an already prepared statement. */
  hits: number;
  /** Cacheable statements that were not prepared yet (run unnamed on first sight, prepared on the second). */
  misses: number;
  /** Prepared statements deallocated to make room (least recently used first). */
  evictions: number;
}

// Declared here rather than in `PoolStats` above so the cache's field stays one separate hunk.
export interface PoolStats {
  /** The statement cache's counters, summed over the pool's connections; absent with `statementCache: false`. */
  statementCache?: StatementCacheStats;
}
