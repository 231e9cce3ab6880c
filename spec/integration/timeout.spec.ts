/**
 * How a wait ends when no connection comes: E_ACQUIRE_TIMEOUT with the pool's state in the message,
 * E_ABORTED when the caller's signal fires, and E_CONNECT (with the driver's error as cause) when
 * the server cannot be reached at all.
 */
import * as net from 'node:net';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance } from '../../lib';
import { testConfig as config } from '../helpers/database';
import { until } from '../helpers/poll';

const silent = winston.createLogger({ silent: true });

afterEach(async () => {
  await closeConnectionInstance();
});

test('a caller that gets nothing within timeoutMs fails with E_ACQUIRE_TIMEOUT describing the pool', async () => {
  const manager = getConnectionInstance(config('kcm-spec-timeout-acquire', { min: 1, max: 1 }));
  await manager.ready();
  const held = await manager.getConnection();

  const error = await manager.getConnection({ timeoutMs: 200 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_ACQUIRE_TIMEOUT' });
  const message = (error as Error).message;
  expect(message).toContain('200 ms');
  expect(message).toContain('total=1');
  expect(message).toContain('idle=0');
  expect(message).toContain('inUse=1');
  expect(message).toMatch(/waiting=\d+/);
  // The longest-held connection is named, so the holder can be found.
  expect(message).toContain(held.id);
  // No connection ever failed to open, so there is no cause.
  expect((error as Error).cause).toBeUndefined();

  const stats = manager.getPoolStats();
  expect(stats).toMatchObject({ total: 1, inUse: 1, waiting: 0, counters: { timedOut: 1 } });

  // The pool carries on: the connection is handed out once it is released.
  await manager.releaseConnection(held);
  await manager.withConnection((conn) => conn.query('select 1'), { timeoutMs: 200 });
  expect(manager.getPoolStats().counters.timedOut).toBe(1);
});

test('a timed-out caller does not take a connection released afterwards', async () => {
  const manager = getConnectionInstance(config('kcm-spec-timeout-order', { min: 1, max: 1 }));
  await manager.ready();
  const held = await manager.getConnection();
  const late = manager.getConnection({ timeoutMs: 20_000 });
  await expect(manager.getConnection({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'E_ACQUIRE_TIMEOUT' });
  expect(manager.getPoolStats().waiting).toBe(1);
  await manager.releaseConnection(held);
  const next = await late;
  expect(next.id).toBe(held.id);
  await manager.releaseConnection(next);
  expect(manager.getPoolStats()).toMatchObject({ inUse: 0, idle: 1, waiting: 0 });
});

test('aborting the signal while waiting fails the caller with E_ABORTED', async () => {
  const manager = getConnectionInstance(config('kcm-spec-timeout-abort', { min: 1, max: 1 }));
  await manager.ready();
  const held = await manager.getConnection();

  const controller = new AbortController();
  const waiting = manager.getConnection({ signal: controller.signal, timeoutMs: 20_000 });
  waiting.catch(() => undefined);
  await until(() => manager.getPoolStats().waiting === 1);
  const reason = new Error('request cancelled');
  controller.abort(reason);
  const error = await waiting.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: 'ConnectionManagerError', code: 'E_ABORTED' });
  expect((error as Error).cause).toBe(reason);
  expect(manager.getPoolStats()).toMatchObject({ waiting: 0, counters: { aborted: 1, timedOut: 0 } });

  // An already-aborted signal fails at once, even with an idle connection available.
  await manager.releaseConnection(held);
  await expect(manager.getConnection({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'E_ABORTED' });
  expect(manager.getPoolStats()).toMatchObject({ idle: 1, inUse: 0, counters: { aborted: 2 } });

  // The aborted callers took nothing: the connection is still there for the next one.
  const next = await manager.getConnection({ timeoutMs: 200 });
  expect(next.id).toBe(held.id);
  await manager.releaseConnection(next);
});

/** A TCP port on 127.0.0.1 with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('an unreachable server: ready() fails with E_CONNECT whose cause is the refused connection', async () => {
  const port = await closedPort();
  const manager = getConnectionInstance({
    connection: { host: '127.0.0.1', port, user: 'postgres', database: 'postgres', application_name: 'kcm-spec-timeout-refused' },
    pool: { min: 1, max: 2 },
    retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
    logger: silent,
  });

  const readyError = await manager.ready().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(readyError).toMatchObject({ name: 'ConnectionManagerError', code: 'E_CONNECT' });
  expect((readyError as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  expect((readyError as Error).message).toContain('ECONNREFUSED');
  expect(manager.getPoolStats().counters.createErrors).toBeGreaterThanOrEqual(2);

  const acquireError = await manager.getConnection({ timeoutMs: 500 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  // E_DB_UNAVAILABLE once the circuit is open (the default breaker): at once, same refusal as cause.
  expect(['E_CONNECT', 'E_ACQUIRE_TIMEOUT', 'E_DB_UNAVAILABLE']).toContain((acquireError as { code?: unknown }).code);
  expect((acquireError as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });

  const stats = manager.getPoolStats();
  expect(stats).toMatchObject({ total: 0, idle: 0, inUse: 0, waiting: 0 });
  expect(stats.counters.created).toBe(0);
});
