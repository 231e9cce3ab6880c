/**
 * Leak detection: a connection held past `pool.leakDetectionThresholdMs` is reported once per lease
 * with its id, how long it has been held and the stack of the code that acquired it; its return is
 * logged too; and an acquire timeout names the longest-held connections and where they were taken.
 */
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
  type ConnectionManagerConfig,
  type PooledConnection,
} from '../../lib';
import { testConfig } from '../helpers/database';
import { until } from '../helpers/poll';
import { capturingLogger, type LogLine } from '../helpers/silent-logger';

afterEach(async () => {
  await closeConnectionInstance();
});

function config(appName: string, pool: ConnectionManagerConfig['pool'], logger: ConnectionManagerConfig['logger']): ConnectionManagerConfig {
  return testConfig(appName, pool, { logger });
}

/** Takes a connection and keeps it: the code a leak report should point at. */
async function forgetfulHandler(manager: ConnectionManager): Promise<PooledConnection> {
  const conn = await manager.getConnection();
  await conn.query('select 1');
  return conn;
}

/** Another place that holds a connection, for the acquire-timeout report. */
async function slowReportJob(manager: ConnectionManager): Promise<PooledConnection> {
  return manager.getConnection();
}

function leakReports(lines: LogLine[], id?: string): LogLine[] {
  return lines.filter((l) => l.level === 'warn' && l.message.startsWith('Possible connection leak') && (id === undefined || l.message.includes(id)));
}

describe('leak detection', () => {
  test('a connection held past the threshold is reported once per lease, with its id, time held and acquiring stack', async () => {
    const capture = capturingLogger('info');
    const threshold = 100;
    const manager = getConnectionInstance(config('kcm-leaks-report', { min: 1, max: 3, leakDetectionThresholdMs: threshold }, capture.logger));
    await manager.ready();

    const leaked = await forgetfulHandler(manager);
    await until(() => manager.getPoolStats().counters.leaksDetected === 1, { timeoutMs: 10_000, description: 'the leak to be reported' });
    const [report] = leakReports(capture.lines, leaked.id);
    expect(report).toBeDefined();
    expect(report.message).toMatch(new RegExp(`Possible connection leak: ${leaked.id} has been checked out for \\d+ ms`));
    expect(report.message).toContain(`pool.leakDetectionThresholdMs=${threshold}`);
    // The acquiring stack reaches back into this file, to the function that took the connection.
    expect(report.message).toContain('forgetfulHandler');
    expect(report.message).toContain('leaks.spec.ts');
    expect(report.meta).toMatchObject({ id: leaked.id });
    expect(report.meta.heldMs as number).toBeGreaterThanOrEqual(threshold);

    // Housekeeping keeps running while the first lease is still held; it is not reported again.
    // A second lease, taken later, being reported proves more rounds went by.
    const other = await manager.getConnection();
    await until(() => manager.getPoolStats().counters.leaksDetected === 2, { timeoutMs: 10_000, description: 'the second leak to be reported' });
    expect(leakReports(capture.lines, leaked.id)).toHaveLength(1);
    expect(leakReports(capture.lines, other.id)).toHaveLength(1);

    // Its return is logged, with how long it was out.
    await manager.releaseConnection(leaked);
    expect(capture.lines.some((l) => l.level === 'info' && l.message.includes(`${leaked.id}, reported as a possible leak, was returned after`))).toBe(true);

    // A new lease of the same connection is a new lease: reported again, once.
    const again = await forgetfulHandler(manager);
    await until(() => manager.getPoolStats().counters.leaksDetected === 3, { timeoutMs: 10_000, description: 'the new lease to be reported' });
    await manager.releaseConnection(again);
    await manager.releaseConnection(other);
    expect(manager.getPoolStats().counters.leaksDetected).toBe(3);
    expect(leakReports(capture.lines)).toHaveLength(3);
  });

  test('a lease returned before the threshold is never reported', async () => {
    const capture = capturingLogger('info');
    const manager = getConnectionInstance(config('kcm-leaks-quiet', { min: 1, max: 2, leakDetectionThresholdMs: 60_000 }, capture.logger));
    for (let i = 0; i < 20; i++) await manager.withConnection((conn) => conn.query('select 1'));
    expect(manager.getPoolStats().counters.leaksDetected).toBe(0);
    expect(leakReports(capture.lines)).toEqual([]);
  });

  test('an acquire timeout names the longest-held connections and where they were acquired', async () => {
    const capture = capturingLogger('info');
    // Leak detection on (so acquiring stacks are recorded), with a threshold the test never reaches.
    const manager = getConnectionInstance(config('kcm-leaks-timeout', { min: 0, max: 2, leakDetectionThresholdMs: 60_000 }, capture.logger));
    const first = await forgetfulHandler(manager);
    const second = await slowReportJob(manager);

    const error = await manager.getConnection({ timeoutMs: 200 }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_ACQUIRE_TIMEOUT' });
    const message = error?.message ?? '';
    expect(message).toContain('total=2, idle=0, inUse=2');
    expect(message).toContain(first.id);
    expect(message).toContain(second.id);
    // Each held connection is named with the first frame outside the library: the code in this file.
    expect(message).toMatch(new RegExp(`${first.id} for \\d+ ms \\(acquired at forgetfulHandler \\(.*leaks\\.spec\\.ts:\\d+:\\d+\\)\\)`));
    expect(message).toMatch(new RegExp(`${second.id} for \\d+ ms \\(acquired at slowReportJob \\(.*leaks\\.spec\\.ts:\\d+:\\d+\\)\\)`));
    // Longest held first.
    expect(message.indexOf(first.id)).toBeLessThan(message.indexOf(second.id));
    expect(manager.getPoolStats().counters.leaksDetected).toBe(0);

    await manager.releaseConnection(first);
    await manager.releaseConnection(second);
  });
});
