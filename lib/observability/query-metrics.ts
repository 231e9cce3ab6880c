/**
 * Query metrics: every statement run on a checked-out connection (lib/observability/session.ts
 * wraps the driver's `query`), in flight, completed, failed by SQLSTATE class, and timed; labelled
 * by `pool` (the manager's pool: `primary`, a named pool) and `route` (`primary` or the replica's
 * name). In the manager's prom-client registry and, with `telemetry`, as the semantic conventions'
 * `db.client.operation.duration`.
 *
 * A statement only adds to plain numbers of its pool and route; the four Prometheus metrics are
 * built from them at scrape time. prom-client's own `inc`/`observe` hash the label set on every
 * call (about 1.3 µs for the four updates of one statement, measured): too much for the hot path.
 */
import type { Registry } from 'prom-client';
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

/** With admission: the counted tag keys that become labels, and how to read a record's holder's tags. */
export interface QueryTagLabels {
  /** `admission.tagKeys`, less any that would collide with `pool`, `route`, `class` or `le`. */
  keys: readonly string[];
  /** `admission.maxTagValues`: values per key kept as labels; the rest go under `"(other)"`. */
  maxValues: number;
  /** The tags of the caller holding `record` now. */
  of(record: object): Readonly<Record<string, string>> | undefined;
}

const NO_TAGS: Readonly<Record<string, string>> = Object.freeze({});

/** Label names the query metrics use themselves. */
export const QUERY_LABELS = ['pool', 'route', 'class', 'le'];

/** The figures of one pool and route (and, with tag labels, one combination of tag values). */
interface Series {
  /** Its key in the table (pool, route and tag values, NUL-separated). */
  key: string;
  labels: Record<string, string>;
  inFlight: number;
  completed: number;
  sum: number;
  /** Statements per bucket (not cumulative), the last one past the largest bound. */
  buckets: number[];
  failed: Map<string, number>;
}

/** One sample of a prom-client metric's `get()`. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** The query metrics of one manager. */
export class QueryMetrics {
  private readonly series = new Map<string, Series>();
  private readonly otel: OtelHistogram | undefined;

  /** Per tag key, the values given a label of their own so far (at most `maxValues`). */
  private readonly tagValues = new Map<string, Set<string>>();

  constructor(registry: Registry, telemetry: boolean, version: string, private readonly tags?: QueryTagLabels) {
    const metric = (name: string, help: string, type: 'gauge' | 'counter' | 'histogram', values: () => Sample[]) => {
      // A prom-client metric is anything with a name and get(); the registry formats the samples.
      registry.registerMetric({ name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as never);
    };
    const all = () => [...this.series.values()];
    metric(QUERY_METRICS.inFlight, 'Statements running now on checked-out connections.', 'gauge', () => all().map((s) => ({ value: s.inFlight, labels: s.labels })));
    metric(QUERY_METRICS.completed, 'Statements that ended (succeeded or failed).', 'counter', () => all().map((s) => ({ value: s.completed, labels: s.labels })));
    metric(QUERY_METRICS.failed, 'Statements that failed, by SQLSTATE class (client: no SQLSTATE, such as a lost connection).', 'counter',
      () => all().flatMap((s) => [...s.failed].map(([sqlClass, value]) => ({ value, labels: { ...s.labels, class: sqlClass } }))));
    metric(QUERY_METRICS.duration, 'How long statements took, from the call to the answer, in seconds.', 'histogram', () => all().flatMap((s) => {
      const out: Sample[] = [];
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i];
        out.push({ value: cumulative, labels: { ...s.labels, le }, metricName: `${QUERY_METRICS.duration}_bucket` });
      });
      out.push({ value: s.completed, labels: { ...s.labels, le: '+Inf' }, metricName: `${QUERY_METRICS.duration}_bucket` });
      out.push({ value: s.sum, labels: s.labels, metricName: `${QUERY_METRICS.duration}_sum` });
      out.push({ value: s.completed, labels: s.labels, metricName: `${QUERY_METRICS.duration}_count` });
      return out;
    }));
    this.otel = telemetry
      ? metrics.getMeter('knex-connection-manager', version).createHistogram('db.client.operation.duration', {
        description: 'Duration of database client operations.', unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      })
      : undefined;
  }

  /** The meter of one pool and route (see the cost in session.ts). */
  meter(pool: string, route: string): QueryMeter {
    const otel = this.otel;
    const attributes: Attributes = { 'db.system.name': 'postgresql', [POOL_NAME]: pool, 'kcm.route': route };
    const finish = (s: Series, startedAt: number, error: unknown): void => {
      const seconds = (now() - startedAt) / 1000;
      s.inFlight--;
      s.completed++;
      s.sum += seconds;
      let i = 0;
      while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
      s.buckets[i]++;
      if (error === undefined) {
        otel?.record(seconds, attributes);
        return;
      }
      const sqlClass = sqlStateClass(error);
      s.failed.set(sqlClass, (s.failed.get(sqlClass) ?? 0) + 1);
      if (otel !== undefined) {
        const code = sqlClass === 'client' ? undefined : (error as { code: string }).code;
        otel.record(seconds, code === undefined ? { ...attributes, 'error.type': 'client' } : { ...attributes, 'error.type': code, 'db.response.status_code': code });
      }
    };
    const tags = this.tags;
    if (tags === undefined || tags.keys.length === 0) {
      const base = this.newSeries(`${pool}\u0000${route}`, { pool, route });
      return {
        started(): number {
          base.inFlight++;
          return now();
        },
        finished(token: unknown, error: unknown): void {
          finish(base, token as number, error);
        },
      };
    }
    // With tag labels the series is chosen at the start (the holder's tags then), and carried to the
    // end. Every series carries the tag labels (empty when a holder has none), so no two share a
    // label set; the last holder's tags and series are kept, as a lease runs its statements in a row.
    let lastHeld: object | undefined;
    let lastSeries: Series | undefined;
    return {
      started: (record: object): unknown => {
        const held = tags.of(record) ?? NO_TAGS;
        if (held !== lastHeld || lastSeries === undefined || this.series.get(lastSeries.key) !== lastSeries) {
          lastHeld = held;
          lastSeries = this.tagged(pool, route, held, tags);
        }
        const s = lastSeries;
        s.inFlight++;
        return { s, startedAt: now() };
      },
      finished(token: unknown, error: unknown): void {
        const { s, startedAt } = token as { s: Series; startedAt: number };
        finish(s, startedAt, error);
      },
    };
  }

  /** The series of `pool` and `route` for the tag values in `held` (one per combination, values capped per key). */
  private tagged(pool: string, route: string, held: Readonly<Record<string, string>>, tags: QueryTagLabels): Series {
    let key = `${pool}\u0000${route}`;
    const labels: Record<string, string> = { pool, route };
    for (const name of tags.keys) {
      let value = held[name] ?? '';
      let seen = this.tagValues.get(name);
      if (seen === undefined) this.tagValues.set(name, (seen = new Set()));
      if (value !== '' && !seen.has(value)) {
        if (seen.size < tags.maxValues) seen.add(value);
        else value = '(other)';
      }
      labels[name] = value;
      key += `\u0000${value}`;
    }
    return this.series.get(key) ?? this.newSeries(key, labels);
  }

  private newSeries(key: string, labels: Record<string, string>): Series {
    const s: Series = { key, labels, inFlight: 0, completed: 0, sum: 0, buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), failed: new Map() };
    this.series.set(key, s);
    return s;
  }

  /** Drops the series of a pool that closed (a dynamic pool), so they do not pile up. */
  forget(pool: string, route: string): void {
    const prefix = `${pool}\u0000${route}`;
    for (const key of this.series.keys()) if (key === prefix || key.startsWith(`${prefix}\u0000`)) this.series.delete(key);
  }
}
