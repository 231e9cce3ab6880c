/**
 * Query metrics: every statement run on a checked-out connection (lib/observability/session.ts
 * wraps the driver's `query`), in flight, completed, failed by SQLSTATE class, and timed; labelled
 * by `pool` (the manager's pool: `primary`, a named pool) and `route` (`primary` or the replica's
 * name). In the manager's prom-client registry and, with `telemetry`, as the semantic conventions'
 * `db.client.operation.duration`.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { metrics, type Attributes, type Histogram as OtelHistogram } from '@opentelemetry/api';
import type { QueryMeter } from './session';
import { POOL_NAME } from './otel';

export const QUERY_METRICS = {
  inFlight: 'kcm_queries_in_flight',
  completed: 'kcm_queries_total',
  failed: 'kcm_queries_failed_total',
  duration: 'kcm_query_duration_seconds',
} as const;

/** `performance.now` bound once (the global getter checks its receiver on each call; see pool/clock.ts). */
const now: () => number = performance.now.bind(performance);

/** Seconds; from a cached point lookup on 127.0.0.1 to a report query. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The SQLSTATE class of a failed statement (`23` for 23505), or `client` for an error without one (connection lost, timeout). */
export function sqlStateClass(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : 'client';
}

/** The query metrics of one manager. */
export class QueryMetrics {
  private readonly inFlight: Gauge<'pool' | 'route'>;
  private readonly completed: Counter<'pool' | 'route'>;
  private readonly failed: Counter<'pool' | 'route' | 'class'>;
  private readonly duration: Histogram<'pool' | 'route'>;
  private readonly otel: OtelHistogram | undefined;
  /** The SQLSTATE classes seen per pool and route: the failed series to drop with the pool. */
  private readonly classes = new Map<string, Set<string>>();

  constructor(registry: Registry, telemetry: boolean, version: string) {
    const registers = [registry];
    const labelNames = ['pool', 'route'] as const;
    this.inFlight = new Gauge({ name: QUERY_METRICS.inFlight, help: 'Statements running now on checked-out connections.', labelNames, registers });
    this.completed = new Counter({ name: QUERY_METRICS.completed, help: 'Statements that ended (succeeded or failed).', labelNames, registers });
    this.failed = new Counter({ name: QUERY_METRICS.failed, help: 'Statements that failed, by SQLSTATE class (client: no SQLSTATE, such as a lost connection).', labelNames: ['pool', 'route', 'class'], registers });
    this.duration = new Histogram({ name: QUERY_METRICS.duration, help: 'How long statements took, from the call to the answer, in seconds.', labelNames, buckets: DURATION_BUCKETS, registers });
    this.otel = telemetry
      ? metrics.getMeter('knex-connection-manager', version).createHistogram('db.client.operation.duration', {
        description: 'Duration of database client operations.', unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      })
      : undefined;
  }

  /**
   * The meter of one pool and route: its label children bound once, so a statement costs no
   * label lookup (see the cost in session.ts).
   */
  meter(pool: string, route: string): QueryMeter {
    const labels = { pool, route };
    const inFlight = this.inFlight.labels(labels);
    const completed = this.completed.labels(labels);
    const duration = this.duration.labels(labels);
    inFlight.set(0);
    const failed = this.failed;
    const classes = new Set<string>();
    this.classes.set(`${pool}\u0000${route}`, classes);
    const otel = this.otel;
    const attributes: Attributes = { 'db.system.name': 'postgresql', [POOL_NAME]: pool, 'kcm.route': route };
    return {
      started(): number {
        inFlight.inc();
        return now();
      },
      finished(startedAt: number, error: unknown): void {
        const seconds = (now() - startedAt) / 1000;
        inFlight.dec();
        completed.inc();
        duration.observe(seconds);
        if (error !== undefined) {
          const sqlClass = sqlStateClass(error);
          classes.add(sqlClass);
          failed.inc({ pool, route, class: sqlClass });
          if (otel !== undefined) {
            const code = sqlClass === 'client' ? undefined : (error as { code: string }).code;
            otel.record(seconds, code === undefined ? { ...attributes, 'error.type': 'client' } : { ...attributes, 'error.type': code, 'db.response.status_code': code });
          }
        } else {
          otel?.record(seconds, attributes);
        }
      },
    };
  }

  /** Drops the series of a pool that closed (a dynamic pool), so they do not pile up. */
  forget(pool: string, route: string): void {
    const labels = { pool, route };
    this.inFlight.remove(labels);
    this.completed.remove(labels);
    this.duration.remove(labels);
    const key = `${pool}\u0000${route}`;
    for (const sqlClass of this.classes.get(key) ?? []) this.failed.remove({ ...labels, class: sqlClass });
    this.classes.delete(key);
  }
}
