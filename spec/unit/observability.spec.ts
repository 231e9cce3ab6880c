/**
 * The observability pieces that need no database: option validation, the stats log on a fake
 * clock, the session name within PostgreSQL's 63 bytes, the SQLSTATE class of a failure, and the
 * query wrapper (callback and promise forms, pool checks not counted, streams passed through).
 */
import { ConnectionManagerError, resolveOptions } from '../../lib';
import { sessionName, meterQueries, type QueryMeter } from '../../lib/observability/session';
import { sqlStateClass } from '../../lib/observability/query-metrics';
import { StatsLog } from '../../lib/observability/stats-log';
import { newCounters, type ManagerPoolStats } from '../../lib/pool/stats';
import { FakeClock } from '../helpers/fake-clock';
import { capturingLogger } from '../helpers/silent-logger';

const connection = 'postgres://user@127.0.0.1:1/db';

function invalid(config: Record<string, unknown>): ConnectionManagerError {
  try {
    resolveOptions({ connection, ...config });
  } catch (error) {
    return error as ConnectionManagerError;
  }
  throw new Error('expected E_INVALID_CONFIG');
}

describe('observability options', () => {
  it('default to telemetry and query metrics on, the stats log off, no applicationName', () => {
    expect(resolveOptions({ connection })).toMatchObject({ telemetry: true, queryMetrics: true, logStatsIntervalMs: 0, applicationName: undefined });
  });

  it.each([
    ['telemetry', { telemetry: 'yes' }],
    ['queryMetrics', { queryMetrics: 1 }],
    ['logStatsIntervalMs', { logStatsIntervalMs: -1 }],
    ['logStatsIntervalMs', { logStatsIntervalMs: 10 }],
    ['applicationName', { applicationName: '' }],
    ['applicationName', { applicationName: 'a:b' }],
    ['applicationName', { applicationName: 'é-api' }],
    ['applicationName', { applicationName: 'x'.repeat(47) }],
  ])('refuse a bad %s with E_INVALID_CONFIG naming it', (option, config) => {
    const error = invalid(config);
    expect(error.code).toBe('E_INVALID_CONFIG');
    expect(error.message).toContain(option);
  });
});

describe('sessionName', () => {
  it('keeps the connection number whole and the name within 63 bytes', () => {
    expect(sessionName('orders-api', 12)).toBe('orders-api:12');
    const long = sessionName('p'.repeat(70), 123456);
    expect(Buffer.byteLength(long)).toBe(63);
    expect(long.endsWith(':123456')).toBe(true);
    const multibyte = sessionName('é'.repeat(40), 7);
    expect(Buffer.byteLength(multibyte)).toBeLessThanOrEqual(63);
    expect(multibyte.endsWith(':7')).toBe(true);
  });
});

describe('sqlStateClass', () => {
  it('is the first two characters of a SQLSTATE, else client', () => {
    expect(sqlStateClass({ code: '23505' })).toBe('23');
    expect(sqlStateClass({ code: '40P01' })).toBe('40');
    expect(sqlStateClass(new Error('Connection terminated'))).toBe('client');
    expect(sqlStateClass({ code: 'ECONNRESET' })).toBe('client');
  });
});

describe('meterQueries', () => {
  function recorder(): QueryMeter & { ended: unknown[]; running: number } {
    const out = {
      ended: [] as unknown[],
      running: 0,
      started(): number {
        out.running++;
        return 0;
      },
      finished(_startedAt: number, error: unknown): void {
        out.running--;
        out.ended.push(error);
      },
    };
    return out;
  }

  it('measures promise and callback statements while checked out, and nothing else', async () => {
    const failure = Object.assign(new Error('boom'), { code: '42601' });
    const client = {
      query(text: unknown, ...rest: unknown[]): unknown {
        const callback = rest.find((r) => typeof r === 'function') as ((e: unknown, r: unknown) => void) | undefined;
        const fail = text === 'bad';
        if (callback) {
          setImmediate(() => callback(fail ? failure : undefined, fail ? undefined : { rows: [] }));
          return undefined;
        }
        return fail ? Promise.reject(failure) : Promise.resolve({ rows: [] });
      },
    };
    const record = { state: 'idle' };
    const meter = recorder();
    meterQueries(client, record, meter);
    await client.query('SELECT 1'); // a pool check: the record is not checked out
    expect(meter.ended).toEqual([]);
    record.state = 'inUse';
    await client.query('SELECT 1');
    await expect(client.query('bad')).rejects.toBe(failure);
    await new Promise<void>((resolve) => client.query({ text: 'SELECT 1' }, () => resolve()));
    await new Promise<void>((resolve) => client.query('bad', [], () => resolve()));
    client.query({ submit: () => undefined }); // a stream: passed through
    expect(meter.ended).toEqual([undefined, failure, undefined, failure]);
    expect(meter.running).toBe(0);
  });
});

describe('StatsLog', () => {
  const stats = (): ManagerPoolStats => ({
    min: 1, max: 5, total: 3, idle: 2, inUse: 1, pending: 0, waiting: 4,
    counters: { ...newCounters(), acquired: 9, timedOut: 1 }, wait: { count: 2, totalMs: 30.4, maxMs: 20.2 },
    connections: [], circuit: { state: 'closed', since: null, failures: 0 },
  });

  it('logs one structured info line per pool per interval until stopped', () => {
    const clock = new FakeClock();
    const { logger, lines } = capturingLogger('info');
    const log = new StatsLog(stats, 60_000, clock, logger);
    clock.advance(59_999);
    expect(lines).toHaveLength(0);
    clock.advance(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', meta: { event: 'pool_stats', pool: 'primary', total: 3, idle: 2, inUse: 1, waiting: 4, acquired: 9, timedOut: 1, waitCount: 2, waitMaxMs: 20 } });
    clock.advance(60_000);
    expect(lines).toHaveLength(2);
    log.stop();
    clock.advance(120_000);
    expect(lines).toHaveLength(2);
    expect(clock.pendingTimers()).toBe(0);
  });
});
