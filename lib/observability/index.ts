/**
 * A manager's observability, wired in one place: the prom-client registry (`metricsRegistry`, also
 * served by the admin endpoint), the OpenTelemetry pool metrics (`telemetry`), the query metrics
 * (`queryMetrics`), the periodic stats log (`logStatsIntervalMs`) and `inspect()`. docs/observability.md.
 */
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';
import type { Client as PgClient } from 'pg';
import { PoolMetrics } from '../admin/metrics';
import type { ResolvedConfig } from '../options';
import type { Clock } from '../pool/clock';
import type { Pool } from '../pool/pool';
import type { ManagerPoolStats } from '../pool/stats';
import type { PgPooledConnection } from '../driver/pooled-connection';
import { DEFAULT_APPLICATION_NAME } from '../options-observability';
import { OtelPoolMetrics } from './otel';
import { QUERY_LABELS, QueryMetrics } from './query-metrics';
import { holderTags } from '../admission/policy';
import { hookPool } from './session';
import { StatsLog } from './stats-log';
import { inspect, type InspectResult } from './inspect';

export type { InspectedConnection, InspectResult, ServerSession } from './inspect';

/** The library's version, reported as the OpenTelemetry meter's. */
const VERSION = '0.1.0';

/** One pool of the manager as it is watched: its pools (primary, then replicas) by the names their metrics carry. */
export interface WatchedGroup {
  readonly name: string;
  readonly observed: ReadonlyArray<{ name: string; pool: Pool<PgClient, PgPooledConnection> }>;
}

export class Observability {
  /** The prom-client metrics: every pool of the manager, whether or not the admin endpoint runs. */
  readonly metrics: PoolMetrics;
  private readonly otel: OtelPoolMetrics | undefined;
  private readonly queries: QueryMetrics | undefined;
  private readonly statsLog: StatsLog | undefined;
  /** The pools watched, by the name their metrics carry, with the labels of their query metrics. */
  private readonly watched = new Map<string, { group: string; route: string; pool: Pool<PgClient, PgPooledConnection> }>();
  /** The prefix of `<prefix>:<N>` for the default pool's sessions. */
  readonly prefix: string;

  constructor(
    source: () => ManagerPoolStats,
    private readonly config: ResolvedConfig,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.metrics = new PoolMetrics(source, (name) => this.forget(name));
    this.otel = config.telemetry ? new OtelPoolMetrics(source, VERSION) : undefined;
    // With admission, the counted tag keys label the query metrics too (values capped as in the stats).
    const tags = config.admission === undefined ? undefined : {
      keys: config.admission.tagKeys.filter((key) => !QUERY_LABELS.includes(key)),
      maxValues: config.admission.maxTagValues,
      of: holderTags,
    };
    this.queries = config.queryMetrics ? new QueryMetrics(this.metrics.registry, config.telemetry, VERSION, tags) : undefined;
    this.statsLog = config.logStatsIntervalMs > 0 ? new StatsLog(source, config.logStatsIntervalMs, clock, log) : undefined;
    const own = typeof config.connection === 'object' ? config.connection.application_name : undefined;
    this.prefix = config.applicationName ?? (typeof own === 'string' && own !== '' ? own : DEFAULT_APPLICATION_NAME);
  }

  /** The prom-client registry (`manager.metricsRegistry`). */
  get registry(): Registry {
    return this.metrics.registry;
  }

  /**
   * Feeds the metrics from the events of `group`'s pools and installs their connections' hooks.
   * Called as each pool is made, before its first connection is attached.
   */
  watch(group: WatchedGroup): void {
    // Pools made and closed over a process's life (tenants) are not kept here until a scrape.
    for (const [name, w] of this.watched) if (!w.pool.isOpen) this.forget(name);
    group.observed.forEach(({ name, pool }, i) => {
      // The first is the group's primary; a replica goes by its name (`<group>/<replica>` in a named pool).
      const route = i === 0 ? 'primary' : name.slice(name.indexOf('/') + 1);
      this.watched.set(name, { group: group.name, route, pool });
      const prom = this.metrics.observer(name);
      const otel = this.otel;
      const attributes = OtelPoolMetrics.attributes(name);
      pool.observe(otel === undefined ? prom : {
        waited(ms: number): void {
          prom.waited(ms);
          otel.waited(attributes, ms);
        },
        closed: prom.closed,
        released(heldMs: number): void {
          otel.used(attributes, heldMs);
        },
      });
      hookPool(pool, {
        query: this.queries?.meter(group.name, route),
        created: otel === undefined ? undefined : (ms) => otel.created(attributes, ms),
      });
    });
  }

  /** `manager.inspect()`: every watched pool's records joined with `pg_stat_activity` of the default pool's primary. */
  inspect(settings: Record<string, unknown>): Promise<InspectResult> {
    const pools = [...this.watched].filter(([, w]) => w.pool.isOpen).map(([name, w]) => ({ name, pool: w.pool }));
    return inspect(pools, this.prefix, settings, this.config.pool.validationTimeoutMs, this.clock);
  }

  /** Stops the stats log and the OpenTelemetry callbacks. */
  close(): void {
    this.statsLog?.stop();
    this.otel?.close();
  }

  /** A pool left the stats (a made pool closed): its query series go too. */
  private forget(name: string): void {
    const watched = this.watched.get(name);
    if (watched === undefined) return;
    this.watched.delete(name);
    this.queries?.forget(watched.group, watched.route);
  }
}
