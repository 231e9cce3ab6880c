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
    ['knex option the manager owns', { connection, knex: { pool: { max: 2 } } }, 'knex.pool.max'],
    ['max beyond a safe integer', { connection, pool: { max: 1e20 } }, 'pool.max'],
    ['port not a number', { connection: { host: '127.0.0.1', port: 'abc' } }, 'connection.port'],
    ['negative port', { connection: { host: '127.0.0.1', port: -1 } }, 'connection.port'],
    ['port above 65535', { connection: { host: '127.0.0.1', port: 70000 } }, 'connection.port'],
    ['host not a string', { connection: { host: 127 } }, 'connection.host'],
    ['ssl a string', { connection: { host: 'db', ssl: 'require' } }, 'connection.ssl'],
    ['unparseable connectionString', { connection: { connectionString: 'postgres://db:abc/x' } }, 'connection.connectionString'],
    ['URL with a bad port', { connection: 'postgres://user@127.0.0.1:99999/db' }, 'connection'],
    ['replica with a bad port', { connection, replicas: [{ name: 'r1', connection: { host: 'r', port: 0 } }] }, 'replicas[0].connection.port'],
    ['admin port above 65535', { connection, admin: { port: 70000 } }, 'admin.port'],
    ['unknown routing key', { connection, routing: { primaryFunction: ['f'] } }, 'routing.primaryFunction'],
    ['primaryFunctions not an array', { connection, routing: { primaryFunctions: 'make_table' } }, 'routing.primaryFunctions'],
    ['primaryFunctions entry with parentheses', { connection, routing: { primaryFunctions: ['ok', 'audit.log', 'make_table()'] } }, 'routing.primaryFunctions[2]'],
    ['primaryFunctions entry not a string', { connection, routing: { primaryFunctions: [42] } }, 'routing.primaryFunctions[0]'],
    ['primaryRelations entry with three parts', { connection, routing: { primaryRelations: ['db.audit.locks'] } }, 'routing.primaryRelations[0]'],
    ['primaryRelations entry empty', { connection, routing: { primaryRelations: [''] } }, 'routing.primaryRelations[0]'],
    ['learnFromReadOnlyErrors not a boolean', { connection, routing: { learnFromReadOnlyErrors: 'yes' } }, 'routing.learnFromReadOnlyErrors'],
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

describe('each message speaks the option\'s unit', () => {
  const messageOf = (config: unknown): string => (thrownBy(config) as Error).message;

  test('counts are counts: no timers, no "0 disables"', () => {
    for (const pool of [{ max: 1e20 }, { min: 1.5 }, { maxWaiting: -1 }]) {
      const message = messageOf({ connection, pool });
      expect(message).toMatch(/whole number from \d+ to \d+ \((connections|waiting callers)\)/);
      expect(message).not.toMatch(/timer|milliseconds|disables/);
    }
    expect(messageOf({ connection, pool: { maxWaiting: -1 } })).toContain('or Infinity for no limit');
  });

  test('times are milliseconds; "0 disables it" only where 0 does; too long names the timer limit', () => {
    expect(messageOf({ connection, pool: { idleTimeoutMs: -1 } })).toContain('milliseconds from 0 to 2147483647; 0 disables it');
    expect(messageOf({ connection, pool: { createTimeoutMs: 0 } })).toMatch(/milliseconds from 1 to 2147483647, got 0/);
    expect(messageOf({ connection, pool: { closeTimeoutMs: -1 } })).not.toContain('disables');
    expect(messageOf({ connection, pool: { maxLifetimeMs: 3e9 } })).toContain('longer than the longest timer Node supports');
  });

  test('a bad value is shown, never a whole object or a connection string', () => {
    expect(messageOf({ connection, pool: { max: '10' } })).toContain('got "10"');
    expect(messageOf({ connection, pool: { max: 10n } })).toContain('got 10n (a bigint)');
    expect(messageOf({ connection, pool: { max: { n: 10 } } })).toContain('got an object');
    expect(messageOf({ connection: 'postgres://me:hunter2@127.0.0.1:99999/db' })).not.toContain('hunter2');
  });
});

describe('valid configurations', () => {
  test('fill in defaults and keep given values', () => {
    const resolved = resolveOptions({ connection, pool: { min: 0, max: 1, maxWaiting: Number.POSITIVE_INFINITY, idleTimeoutMs: 0 } });
    expect(resolved.pool).toMatchObject({ min: 0, max: 1, idleTimeoutMs: 0, maxWaiting: Number.POSITIVE_INFINITY });
    expect(resolved.pool.acquireTimeoutMs).toBeGreaterThan(0);
    expect(resolved.retry.attempts).toBeGreaterThanOrEqual(1);
  });

  test('connection objects pg accepts pass as they are (numeric-string port, password function, ssl options)', () => {
    const object = { host: '127.0.0.1', port: '5433', user: 'u', password: () => 'p', ssl: { rejectUnauthorized: false }, statement_timeout: false, somePgOption: 1 };
    expect(resolveOptions({ connection: object }).connection).toBe(object);
    expect(resolveOptions({ connection: 'postgres://u:p%40ss@127.0.0.1:5433/db' }).connection).toBe('postgres://u:p%40ss@127.0.0.1:5433/db');
  });

  test('min equal to max is allowed', () => {
    expect(resolveOptions({ connection, pool: { min: 3, max: 3 } }).pool).toMatchObject({ min: 3, max: 3 });
  });
});

describe('routing: declared write names and learning', () => {
  test('default to none declared and learning on, in arrays of their own', () => {
    const a = resolveOptions({ connection });
    const b = resolveOptions({ connection, routing: {} });
    expect(a.routing).toMatchObject({ primaryFunctions: [], primaryRelations: [], learnFromReadOnlyErrors: true });
    expect(b.routing).toMatchObject({ primaryFunctions: [], primaryRelations: [], learnFromReadOnlyErrors: true });
    expect(a.routing.primaryFunctions).not.toBe(b.routing.primaryFunctions);
  });

  test('keep the names as given, in a copy the caller cannot change afterwards', () => {
    const primaryFunctions = ['make_table', 'audit.log_event', '"DoGrant"'];
    const resolved = resolveOptions({ connection, routing: { primaryFunctions, primaryRelations: ['reports."Daily Totals"'], learnFromReadOnlyErrors: false } });
    primaryFunctions.push('not(valid)');
    expect(resolved.routing).toMatchObject({
      primaryFunctions: ['make_table', 'audit.log_event', '"DoGrant"'],
      primaryRelations: ['reports."Daily Totals"'],
      learnFromReadOnlyErrors: false,
    });
  });

  test('the message of a bad entry names it and says how to write one', () => {
    const error = thrownBy({ connection, routing: { primaryFunctions: ['ok', 'audit.log', 'make_table()'] } }) as Error;
    expect(error.message).toContain('"make_table()"');
    expect(error.message).toMatch(/without parentheses or arguments/);
  });

  test('the same names in new arrays are the same configuration; other names conflict, naming the option', () => {
    const routing = () => ({ primaryFunctions: ['make_table'], primaryRelations: ['my_locks'] });
    const manager = getConnectionInstance({ connection, logger: { level: 'error' }, routing: routing() });
    expect(getConnectionInstance({ connection, logger: { level: 'error' }, routing: routing() })).toBe(manager);
    expect(() => getConnectionInstance({ connection, logger: { level: 'error' }, routing: { ...routing(), primaryFunctions: ['other'] } })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_CONFLICT', message: expect.stringContaining('routing.primaryFunctions') }),
    );
    expect(() => getConnectionInstance({ connection, logger: { level: 'error' }, routing: { ...routing(), learnFromReadOnlyErrors: false } })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_CONFLICT', message: expect.stringContaining('routing.learnFromReadOnlyErrors') }),
    );
  });
});
