/**
 * Configuration validation: bad values and unknown keys are refused up front with E_INVALID_CONFIG
 * naming the option. No database needed: validation happens before any connection is opened.
 */
import { closeConnectionInstance, ConnectionManagerError, getConnectionInstance, resolveOptions } from '../../lib';

const connection = 'postgres://user@127.0.0.1:1/db';

// Should a case wrongly be accepted, do not leave its manager retrying in the background.
afterEach(async () => {
  await closeConnectionInstance();
});

/** The error getConnectionInstance(config) throws, or undefined if it did not throw. */
function thrownBy(config: unknown): unknown {
  try {
    getConnectionInstance(config as never);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('invalid configurations throw E_INVALID_CONFIG naming the option', () => {
  const cases: Array<[string, unknown, string]> = [
    ['min > max', { connection, pool: { min: 5, max: 2 } }, 'pool.min'],
    ['max < 1', { connection, pool: { max: 0 } }, 'pool.max'],
    ['negative max', { connection, pool: { max: -3 } }, 'pool.max'],
    ['fractional max', { connection, pool: { max: 2.5 } }, 'pool.max'],
    ['negative min', { connection, pool: { min: -1 } }, 'pool.min'],
    ['negative acquire timeout', { connection, pool: { acquireTimeoutMs: -1 } }, 'pool.acquireTimeoutMs'],
    ['zero acquire timeout', { connection, pool: { acquireTimeoutMs: 0 } }, 'pool.acquireTimeoutMs'],
    ['negative idle timeout', { connection, pool: { idleTimeoutMs: -5 } }, 'pool.idleTimeoutMs'],
    ['negative max lifetime', { connection, pool: { maxLifetimeMs: -1 } }, 'pool.maxLifetimeMs'],
    ['non-numeric create timeout', { connection, pool: { createTimeoutMs: '100' } }, 'pool.createTimeoutMs'],
    ['NaN validation timeout', { connection, pool: { validationTimeoutMs: Number.NaN } }, 'pool.validationTimeoutMs'],
    ['infinite acquire timeout', { connection, pool: { acquireTimeoutMs: Number.POSITIVE_INFINITY } }, 'pool.acquireTimeoutMs'],
    ['non-numeric retry attempts', { connection, retry: { attempts: 'three' } }, 'retry.attempts'],
    ['zero retry attempts', { connection, retry: { attempts: 0 } }, 'retry.attempts'],
    ['negative retry delay', { connection, retry: { initialDelayMs: -10 } }, 'retry.initialDelayMs'],
    ['unknown top-level key', { connection, poool: { max: 3 } }, 'poool'],
    ['unknown pool key', { connection, pool: { maxx: 3 } }, 'pool.maxx'],
    ['unknown retry key', { connection, retry: { tries: 3 } }, 'retry.tries'],
    ['unknown logger key', { connection, logger: { level: 'info', colour: true } }, 'logger.colour'],
    ['bad log level', { connection, logger: { level: 'loud' } }, 'logger.level'],
    ['pool not an object', { connection, pool: 10 }, 'pool'],
    ['missing connection', { pool: { max: 2 } }, 'connection'],
    ['empty connection string', { connection: '  ' }, 'connection'],
    ['knex option the manager owns', { connection, knex: { pool: { max: 2 } } }, 'knex.pool'],
  ];

  test.each(cases)('%s', (_name, config, option) => {
    const error = thrownBy(config);
    expect(error).toBeInstanceOf(ConnectionManagerError);
    expect(error).toMatchObject({ code: 'E_INVALID_CONFIG' });
    expect((error as Error).message).toContain(`"${option}"`);
    // resolveOptions is what getConnectionInstance validates with.
    expect(() => resolveOptions(config)).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }));
  });

  test('the message says how to fix it', () => {
    const error = thrownBy({ connection, pool: { min: 5, max: 2 } }) as Error;
    expect(error.message).toMatch(/min \(5\) is greater than max \(2\)/);
    expect(error.message).toMatch(/Lower pool\.min or raise pool\.max/);
  });
});

describe('valid configurations', () => {
  test('fill in defaults and keep given values', () => {
    const resolved = resolveOptions({ connection, pool: { min: 0, max: 1, maxWaiting: Number.POSITIVE_INFINITY, idleTimeoutMs: 0 } });
    expect(resolved.pool).toMatchObject({ min: 0, max: 1, idleTimeoutMs: 0, maxWaiting: Number.POSITIVE_INFINITY });
    expect(resolved.pool.acquireTimeoutMs).toBeGreaterThan(0);
    expect(resolved.retry.attempts).toBeGreaterThanOrEqual(1);
  });

  test('min equal to max is allowed', () => {
    expect(resolveOptions({ connection, pool: { min: 3, max: 3 } }).pool).toMatchObject({ min: 3, max: 3 });
  });
});
