/**
 * Prometheus metrics of a manager's pools, in a registry of their own (never prom-client's global
 * default registry, so an application's own metrics and ours never collide, and two managers in
 * one process — tests — do not either).
 *
 * Gauges and counters are read from `getPoolStats()` when Prometheus scrapes: one snapshot per
 * scrape, shared by every metric. The two histograms are fed as events happen, by the pools'
 * observers (`Pool.observe`): how long a caller waited for a connection, and how old a connection
 * was when it was closed, by reason. docs/operations.md lists every metric.
 *
 * With named pools every pool is labelled by its name (metrics-pools.ts). A pool that closed
 * stops appearing: gauges and counters are rebuilt from each snapshot, and the histogram series of
 * pools no longer in it are dropped at the scrape (Prometheus ends a vanished series; without this,
 * the series of thousands of tenants' pools made and closed over a process's life would pile up).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CloseReason } from '../pool/entry';
import type { PoolObserver } from '../pool/pool';
import type { ManagerPoolStats, PoolCounters, TagStats } from '../pool/stats';
import { poolsOf, registerBudgetMetrics, replicasOf } from './metrics-pools';

/** Name and help text of the Prometheus counter for each field of `PoolStats.counters`. */
export const COUNTER_METRICS: Readonly<Record<keyof PoolCounters, { name: string; help: string }>> = {
  created: { name: 'kcm_pool_connections_created_total', help: 'Connections opened.' },
  destroyed: { name: 'kcm_pool_connections_destroyed_total', help: 'Connections closed, for any reason.' },
  acquired: { name: 'kcm_pool_acquired_total', help: 'Connections handed out to callers.' },
  released: { name: 'kcm_pool_released_total', help: 'Connections given back by callers.' },
  timedOut: { name: 'kcm_pool_acquire_timeouts_total', help: 'Acquires that ended with E_ACQUIRE_TIMEOUT.' },
  aborted: { name: 'kcm_pool_acquire_aborted_total', help: 'Acquires that ended because their AbortSignal fired.' },
  createErrors: { name: 'kcm_pool_create_errors_total', help: 'Failed attempts to open a connection (each retry counts).' },
  validationFailures: { name: 'kcm_pool_validation_failures_total', help: 'Connections closed because validation or rollback failed or the driver reported them dead.' },
  expired: { name: 'kcm_pool_connections_expired_total', help: 'Connections retired for passing their maximum lifetime.' },
  idleClosed: { name: 'kcm_pool_connections_idle_closed_total', help: 'Connections closed by the idle timeout.' },
  renewed: { name: 'kcm_pool_connections_renewed_total', help: 'Connections replaced by a renewal.' },
  leaksDetected: { name: 'kcm_pool_leaks_detected_total', help: 'Leases reported as possible leaks.' },
  transactionRetries: { name: 'kcm_pool_transaction_retries_total', help: 'Attempts of manager.transaction() and withRetry() after the first.' },
  reclaimed: { name: 'kcm_pool_connections_reclaimed_total', help: 'Connections closed to give their slot of the connection budget to another pool.' },
};

/** Gauge name and the `PoolStats` field it reports. */
export const GAUGE_METRICS: ReadonlyArray<{ name: string; help: string; field: 'total' | 'idle' | 'inUse' | 'pending' | 'waiting' | 'min' | 'max' }> = [
  { name: 'kcm_pool_connections', help: 'Open connections (idle + in use).', field: 'total' },
  { name: 'kcm_pool_connections_idle', help: 'Open connections ready to be handed out.', field: 'idle' },
  { name: 'kcm_pool_connections_in_use', help: 'Open connections checked out (or busy with pool maintenance).', field: 'inUse' },
  { name: 'kcm_pool_connections_pending', help: 'Connections being opened.', field: 'pending' },
  { name: 'kcm_pool_waiting', help: 'Callers waiting for a connection.', field: 'waiting' },
  { name: 'kcm_pool_min', help: 'Configured pool.min.', field: 'min' },
  { name: 'kcm_pool_max', help: 'Configured pool.max.', field: 'max' },
];

/**
 * Per-tag metrics (with `admission`): one series per counted tag value, labelled `pool` and the
 * tag's key (`kcm_tag_acquired_total{pool="primary",tenant="acme"}`), read from `stats.tags`.
 */
export const TAG_METRICS: ReadonlyArray<{ name: string; help: string; type: 'gauge' | 'counter'; read: (t: TagStats) => number }> = [
  { name: 'kcm_tag_connections_in_use', help: 'Connections held by callers with this tag value.', type: 'gauge', read: (t) => t.inUse },
  { name: 'kcm_tag_waiting', help: 'Callers with this tag value waiting for a connection.', type: 'gauge', read: (t) => t.waiting },
  { name: 'kcm_tag_acquired_total', help: 'Connections handed out to callers with this tag value.', type: 'counter', read: (t) => t.acquired },
  { name: 'kcm_tag_acquire_timeouts_total', help: 'Acquires with this tag value that ended with E_ACQUIRE_TIMEOUT.', type: 'counter', read: (t) => t.timedOut },
  { name: 'kcm_tag_rate_limited_total', help: 'Acquires with this tag value refused with E_RATE_LIMITED.', type: 'counter', read: (t) => t.rateLimited },
  { name: 'kcm_tag_waits_total', help: 'Acquires with this tag value that had to wait.', type: 'counter', read: (t) => t.wait.count },
  { name: 'kcm_tag_wait_seconds_total', help: 'Total time callers with this tag value waited, in seconds.', type: 'counter', read: (t) => t.wait.totalMs / 1000 },
  { name: 'kcm_tag_wait_max_seconds', help: 'Longest wait of a caller with this tag value, in seconds.', type: 'gauge', read: (t) => t.wait.maxMs / 1000 },
  { name: 'kcm_tag_held_seconds_total', help: 'Total time connections were held by callers with this tag value, in seconds.', type: 'counter', read: (t) => t.heldMs / 1000 },
];

export const WAIT_HISTOGRAM = 'kcm_pool_acquire_wait_seconds';
export const AGE_HISTOGRAM = 'kcm_pool_connection_age_seconds';
export const REPLICA_HEALTHY = 'kcm_replica_healthy';
export const REPLICA_LAG = 'kcm_replica_lag_seconds';
export const REPLICA_HEALTH_CHANGES = 'kcm_replica_health_changes_total';
export const ROUTING_LEARNED = 'kcm_routing_learned_names';
export const ROUTING_REFUSALS = 'kcm_routing_read_only_refusals_total';
export const CIRCUIT_STATE = 'kcm_pool_circuit_state';
export const CIRCUIT_FAILURES = 'kcm_pool_circuit_failures';
const CIRCUIT_STATES = ['closed', 'open', 'halfOpen'] as const;

/** Seconds; from a hand-out straight after a release to a caller stuck behind a full pool. */
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds; from a connection dropped at once to one that lived its whole maximum lifetime. */
const AGE_BUCKETS = [1, 10, 60, 300, 600, 1800, 3600, 7200, 21600, 86400];

/** Where the metrics read the pools' state: `ConnectionManager.getPoolStats`. */
export type StatsSource = () => ManagerPoolStats;

/** The metrics of one manager: a prom-client registry plus the observers that feed its histograms. */
export class PoolMetrics {
  /** The registry holding every metric below; mount it elsewhere if you already serve /metrics. */
  readonly registry = new Registry();
  private readonly waitHistogram: Histogram<'pool'>;
  private readonly ageHistogram: Histogram<'pool' | 'reason'>;
  /** The snapshot of the collection in progress, shared by every metric's collect(). */
  private snapshot: ManagerPoolStats | undefined;
  /** Pools given an observer, with the close reasons seen: the histogram series to drop when they go. */
  private readonly observed = new Map<string, Set<CloseReason>>();

  /** @param dropped called with the name of each pool whose series were dropped (it left the stats). */
  constructor(private readonly source: StatsSource, private readonly dropped: (pool: string) => void = () => undefined) {
    const registers = [this.registry];
    const pools = () => poolsOf(this.current());
    const sample = this.source();

    for (const gauge of GAUGE_METRICS) {
      new Gauge({
        name: gauge.name,
        help: gauge.help,
        labelNames: ['pool'],
        registers,
        collect() {
          this.reset();
          for (const [pool, stats] of pools()) this.set({ pool }, stats[gauge.field]);
        },
      });
    }
    for (const [field, metric] of Object.entries(COUNTER_METRICS) as Array<[keyof PoolCounters, { name: string; help: string }]>) {
      new Counter({
        name: metric.name,
        help: metric.help,
        labelNames: ['pool'],
        registers,
        collect() {
          // The pool's counters only grow; the Prometheus counter mirrors them at scrape time.
          this.reset();
          for (const [pool, stats] of pools()) this.inc({ pool }, stats.counters[field]);
        },
      });
    }
    new Gauge({
      name: CIRCUIT_STATE,
      help: '1 for the circuit breaker\'s current state (closed, open, halfOpen), 0 for the others.',
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [pool, stats] of pools()) for (const state of CIRCUIT_STATES) this.set({ pool, state }, stats.circuit?.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: CIRCUIT_FAILURES,
      help: 'Consecutive failed connection attempts seen by the circuit breaker (0 after a success).',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, stats] of pools()) this.set({ pool }, stats.circuit?.failures ?? 0);
      },
    });
    const replicas = () => replicasOf(this.current());
    new Gauge({
      name: REPLICA_HEALTHY,
      help: '1 while the replica is in rotation for reads, 0 while it is not.',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, r] of replicas()) this.set({ pool }, r.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: REPLICA_LAG,
      help: 'Replay lag of the replica at its last health check, in seconds (absent while unknown).',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, r] of replicas()) if (r.lagMs !== null) this.set({ pool }, r.lagMs / 1000);
      },
    });
    new Counter({
      name: REPLICA_HEALTH_CHANGES,
      help: 'Times the replica went out of or back into rotation.',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, r] of replicas()) this.inc({ pool }, r.healthChanges);
      },
    });
    const routing = () => this.current().routing;
    new Gauge({
      name: ROUTING_LEARNED,
      help: 'Write functions and relations learned from replicas\' read-only (25006) refusals, by kind (with replicas only).',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        const learned = routing()?.learned;
        if (!learned) return;
        this.set({ kind: 'function' }, learned.functions.length);
        this.set({ kind: 'relation' }, learned.relations.length);
      },
    });
    new Counter({
      name: ROUTING_REFUSALS,
      help: 'Statements a replica refused with 25006 (read-only), each then run on the primary (with replicas only).',
      registers,
      collect() {
        this.reset();
        const refusals = routing()?.readOnlyRefusals;
        if (refusals !== undefined) this.inc(refusals);
      },
    });
    // The counted tag keys are fixed by the configuration: read once, they become the label names
    // (a pool made later with other keys has those series left out, not a scrape that throws).
    const tagKeys = [...new Set(poolsOf(sample).flatMap(([, stats]) => Object.keys(stats.tags ?? {})))];
    if (tagKeys.length > 0) {
      for (const metric of TAG_METRICS) {
        const Metric = metric.type === 'gauge' ? Gauge : Counter;
        new Metric({
          name: metric.name,
          help: metric.help,
          labelNames: ['pool', ...tagKeys],
          registers,
          collect() {
            this.reset();
            for (const [pool, stats] of pools()) {
              for (const [key, byValue] of Object.entries(stats.tags ?? {})) {
                if (!tagKeys.includes(key)) continue;
                for (const [value, row] of Object.entries(byValue)) {
                  const labels = { pool, [key]: value };
                  if (this instanceof Gauge) this.set(labels, metric.read(row));
                  else (this as Counter<string>).inc(labels, metric.read(row));
                }
              }
            }
          },
        });
      }
    }
    this.waitHistogram = new Histogram({
      name: WAIT_HISTOGRAM,
      help: 'How long callers that had to wait waited for a connection, in seconds (immediate hand-outs are not observed).',
      labelNames: ['pool'],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.ageHistogram = new Histogram({
      name: AGE_HISTOGRAM,
      help: 'Age of connections when they were closed, in seconds, by the reason they were closed.',
      labelNames: ['pool', 'reason'],
      buckets: AGE_BUCKETS,
      registers,
    });
    registerBudgetMetrics(this.registry, sample, () => this.current());
  }

  /**
   * The observer to install on the pool named `pool` (`Pool.observe`): it feeds the histograms.
   * Observing is a few array updates, cheap enough for the pool's hand-out path.
   */
  observer(pool: string): PoolObserver {
    this.waitHistogram.zero({ pool });
    const wait = this.waitHistogram.labels({ pool });
    const age = this.ageHistogram;
    const reasons = new Set<CloseReason>();
    const observed = this.observed;
    observed.set(pool, reasons);
    // Once its series were dropped (the pool left the stats), a pool still closing reports nothing.
    const live = () => observed.get(pool) === reasons;
    return {
      waited(ms: number): void {
        if (live()) wait.observe(ms / 1000);
      },
      closed(ageMs: number, reason: CloseReason): void {
        if (!live()) return;
        reasons.add(reason);
        age.observe({ pool, reason }, ageMs / 1000);
      },
    };
  }

  /** Every metric in the Prometheus text format, from one stats snapshot. */
  async scrape(): Promise<string> {
    // Taken (and closed pools' series dropped) before the registry collects, so this scrape is already without them.
    this.current();
    return this.registry.metrics();
  }

  /** The `Content-Type` of {@link PoolMetrics.scrape}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The snapshot of the collection in progress. prom-client calls every metric's collect() in one
   * turn, whether through `scrape()` or an application's merged registry (`Registry.merge`), so
   * one snapshot, kept until that turn's microtasks run, serves them all.
   */
  private current(): ManagerPoolStats {
    if (this.snapshot === undefined) {
      const snapshot = (this.snapshot = this.source());
      this.dropClosedPools(snapshot);
      queueMicrotask(() => {
        if (this.snapshot === snapshot) this.snapshot = undefined;
      });
    }
    return this.snapshot;
  }

  /** Drops the histogram series of observed pools that are not in `stats` any more. */
  private dropClosedPools(stats: ManagerPoolStats): void {
    if (stats.pools === undefined) return; // without named pools no pool ever closes early
    const open = new Set(poolsOf(stats).map(([name]) => name));
    for (const [pool, reasons] of this.observed) {
      if (open.has(pool)) continue;
      this.waitHistogram.remove({ pool });
      for (const reason of reasons) this.ageHistogram.remove({ pool, reason });
      this.observed.delete(pool);
      this.dropped(pool);
    }
  }
}
