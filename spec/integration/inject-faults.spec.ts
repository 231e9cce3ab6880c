/**
 * `injectFaults()` from knex-connection-manager/testing: each fault observed through the public
 * API, `clear()` ending them, and the entry resolving from the built package (not the main one).
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager } from '../../lib';
import { injectFaults } from '../../lib/testing';
import { testDatabaseUrl } from '../helpers/database';

const silent = winston.createLogger({ silent: true });
const ROOT = path.resolve(__dirname, '../..');

afterEach(async () => {
  await closeConnectionInstance();
});

function manager(pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): ConnectionManager {
  return getConnectionInstance({
    connection: { connectionString: testDatabaseUrl(), application_name: 'kcm-inject-faults' },
    pool: { min: 0, max: 4, ...pool },
    retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 20 },
    logger: silent,
    ...extra,
  });
}

test('connectFailures: n opens fail like refusals (retried, counted), then clear() restores', async () => {
  const m = manager({}, { circuitBreaker: false });
  const faults = injectFaults(m, { connectFailures: 2 });
  await expect(m.getConnection({ timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'E_CONNECT' });
  expect(m.getPoolStats().counters.createErrors).toBe(2);
  const conn = await m.getConnection();
  await m.releaseConnection(conn);
  faults.clear();
});

test('connectFailures: { rate: 1 } opens the circuit; clear() lets the probe close it', async () => {
  const m = manager({}, { circuitBreaker: { failureThreshold: 2, openMs: 50 } });
  const faults = injectFaults(m, { connectFailures: { rate: 1 } });
  await expect(m.getConnection({ timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'E_DB_UNAVAILABLE' });
  expect(m.getPoolStats().circuit.state).not.toBe('closed');
  faults.clear();
  const started = Date.now();
  while (Date.now() - started < 5_000 && m.getPoolStats().circuit.state !== 'closed') await new Promise((r) => setTimeout(r, 20));
  expect(m.getPoolStats().circuit.state).toBe('closed');
});

test('connectLatencyMs delays opens; queryLatencyMs delays queries', async () => {
  const m = manager();
  const faults = injectFaults(m, { connectLatencyMs: 150, queryLatencyMs: 100 });
  let started = performance.now();
  const conn = await m.getConnection();
  expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  started = performance.now();
  await conn.query('select 1');
  expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  await m.releaseConnection(conn);
  faults.clear();
  started = performance.now();
  await m.query('select 1');
  expect(performance.now() - started).toBeLessThan(90);
});

test('validationFailures: isConnectionValid() reports false and the connection is retired', async () => {
  const m = manager();
  const conn = await m.getConnection();
  const faults = injectFaults(m, { validationFailures: 1 });
  expect(await m.isConnectionValid(conn)).toBe(false);
  await m.releaseConnection(conn);
  expect(m.getPoolStats().counters.validationFailures).toBe(1);
  const other = await m.getConnection();
  expect(await m.isConnectionValid(other)).toBe(true);
  await m.releaseConnection(other);
  faults.clear();
});

test('killConnections: the server terminates that many open sessions; the pool notices', async () => {
  const m = manager({ min: 3, max: 5 });
  await m.ready();
  const faults = injectFaults(m, { killConnections: 2 });
  expect(await faults.settled).toBe(2);
  const started = Date.now();
  while (Date.now() - started < 5_000 && m.getPoolStats().counters.validationFailures < 2) await new Promise((r) => setTimeout(r, 20));
  expect(m.getPoolStats().counters.validationFailures).toBeGreaterThanOrEqual(2);
  faults.clear();
});

test('the entry point resolves from the built package, and not from the main entry', async () => {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: 240_000 });
  const testing = require(path.join(ROOT, 'dist/testing/index.js')) as { injectFaults?: unknown };
  expect(typeof testing.injectFaults).toBe('function');
  const resolved = require.resolve('knex-connection-manager/testing', { paths: [ROOT] });
  expect(resolved).toBe(path.join(ROOT, 'dist/testing/index.js'));
  const main = require(path.join(ROOT, 'dist/index.js')) as Record<string, unknown>;
  expect(main.injectFaults).toBeUndefined();
}, 300_000);
