/**
 * The pool metrics of the OpenTelemetry semantic conventions for database client connections,
 * through `@opentelemetry/api` (a no-op until the application registers an SDK's MeterProvider,
 * which must happen before the manager is created: the meter is taken once, at construction).
 *
 * Gauges and counters are observable instruments read in one batch callback from one stats
 * snapshot per collection; the three durations are histograms fed as events happen. Every data
 * point carries `db.client.connection.pool.name` (the pool's name, as the Prometheus `pool` label).
 * Our extras are under `kcm.`. docs/observability.md lists them all.
 */
import { metrics, type Attributes, type BatchObservableResult, type Histogram, type Meter, type Observable } from '@opentelemetry/api';
import type { ManagerPoolStats, PoolCounters } from '../pool/stats';
import { poolsOf } from '../admin/metrics-pools';

/** The attribute naming the pool, from the semantic conventions. */
export const POOL_NAME = 'db.client.connection.pool.name';
/** The attribute of `db.client.connection.count`: `idle` or `used`. */
export const CONNECTION_STATE = 'db.client.connection.state';

/** The counters reported as `kcm.connection.evictions` by `kcm.eviction.reason`. */
const EVICTIONS: ReadonlyArray<[keyof PoolCounters, string]> = [
  ['expired', 'max_lifetime'], ['idleClosed', 'idle_timeout'], ['validationFailures', 'invalid'], ['renewed', 'renewed'], ['reclaimed', 'reclaimed'],
];
const CIRCUIT_STATES = ['closed', 'open', 'halfOpen'] as const;

/** Seconds; the advice the conventions give for connection durations, cut to the pool's range. */
const TIME_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The OpenTelemetry side of a manager's pool metrics. */
export class OtelPoolMetrics {
  private readonly meter: Meter;
  private readonly createTime: Histogram;
  private readonly waitTime: Histogram;
  private readonly useTime: Histogram;
  private readonly observables: Observable[];
  private readonly callback: (result: BatchObservableResult) => void;

  constructor(source: () => ManagerPoolStats, version: string) {
    const meter = (this.meter = metrics.getMeter('knex-connection-manager', version));
    const histogram = (name: string, description: string) =>
      meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: TIME_BUCKETS } });
    this.createTime = histogram('db.client.connection.create_time', 'The time it took to create a new connection.');
    this.waitTime = histogram('db.client.connection.wait_time', 'The time it took to obtain an open connection from the pool (callers that had to wait).');
    this.useTime = histogram('db.client.connection.use_time', 'The time between borrowing a connection and returning it to the pool.');
    const count = meter.createObservableUpDownCounter('db.client.connection.count', { description: 'The number of connections that are currently in state described by the state attribute.', unit: '{connection}' });
    const idleMax = meter.createObservableUpDownCounter('db.client.connection.idle.max', { description: 'The maximum number of idle open connections allowed (pool.max).', unit: '{connection}' });
    const idleMin = meter.createObservableUpDownCounter('db.client.connection.idle.min', { description: 'The minimum number of idle open connections allowed (pool.min).', unit: '{connection}' });
    const max = meter.createObservableUpDownCounter('db.client.connection.max', { description: 'The maximum number of open connections allowed.', unit: '{connection}' });
    const pending = meter.createObservableUpDownCounter('db.client.connection.pending_requests', { description: 'The number of current pending requests for an open connection.', unit: '{request}' });
    const timeouts = meter.createObservableCounter('db.client.connection.timeouts', { description: 'The number of connection timeouts that have occurred trying to obtain a connection from the pool.', unit: '{timeout}' });
    const openFailures = meter.createObservableCounter('kcm.connection.open_failures', { description: 'Failed attempts to open a connection (each retry counts).', unit: '{attempt}' });
    const evictions = meter.createObservableCounter('kcm.connection.evictions', { description: 'Connections closed by the pool, by kcm.eviction.reason.', unit: '{connection}' });
    const circuit = meter.createObservableGauge('kcm.circuit.state', { description: '1 for the circuit breaker\'s current state (kcm.circuit.state: closed, open, halfOpen), 0 for the others.', unit: '1' });
    this.observables = [count, idleMax, idleMin, max, pending, timeouts, openFailures, evictions, circuit];
    this.callback = (result) => {
      for (const [name, stats] of poolsOf(source())) {
        const pool = { [POOL_NAME]: name };
        result.observe(count, stats.idle, { ...pool, [CONNECTION_STATE]: 'idle' });
        result.observe(count, stats.inUse, { ...pool, [CONNECTION_STATE]: 'used' });
        result.observe(idleMax, stats.max, pool);
        result.observe(idleMin, stats.min, pool);
        result.observe(max, stats.max, pool);
        result.observe(pending, stats.waiting, pool);
        result.observe(timeouts, stats.counters.timedOut, pool);
        result.observe(openFailures, stats.counters.createErrors, pool);
        for (const [field, reason] of EVICTIONS) result.observe(evictions, stats.counters[field], { ...pool, 'kcm.eviction.reason': reason });
        for (const state of CIRCUIT_STATES) result.observe(circuit, stats.circuit.state === state ? 1 : 0, { ...pool, 'kcm.circuit.state': state });
      }
    };
    meter.addBatchObservableCallback(this.callback, this.observables);
  }

  /** The attributes of the pool named `name`, built once per pool. */
  static attributes(name: string): Attributes {
    return { [POOL_NAME]: name };
  }

  /** A connection of the pool with `attributes` was opened in `ms` milliseconds. */
  created(attributes: Attributes, ms: number): void {
    this.createTime.record(ms / 1000, attributes);
  }

  /** A caller of that pool waited `ms` milliseconds for a connection. */
  waited(attributes: Attributes, ms: number): void {
    this.waitTime.record(ms / 1000, attributes);
  }

  /** A lease of that pool ended after `ms` milliseconds. */
  used(attributes: Attributes, ms: number): void {
    this.useTime.record(ms / 1000, attributes);
  }

  /** Stops reporting (the manager closed): the callback is removed from the meter. */
  close(): void {
    this.meter.removeBatchObservableCallback(this.callback, this.observables);
  }
}
