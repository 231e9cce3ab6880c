/** The `statementCache` option and the `pgbouncer` key that changes its default. */
import { isConnectionManagerError } from '../../lib';
import { resolveOptions } from '../../lib/options';

const connection = 'postgres://u@localhost/db';

function refusal(config: Record<string, unknown>): string {
  try {
    resolveOptions({ connection, ...config });
  } catch (error) {
    if (isConnectionManagerError(error, 'E_INVALID_CONFIG')) return error.message;
    throw error;
  }
  throw new Error('accepted');
}

test('on by default with 100 statements per connection; false turns it off; a size is taken', () => {
  expect(resolveOptions({ connection }).statementCache).toEqual({ size: 100 });
  expect(resolveOptions({ connection, statementCache: false }).statementCache).toBe(false);
  expect(resolveOptions({ connection, statementCache: { size: 7 } }).statementCache).toEqual({ size: 7 });
  expect(resolveOptions({ connection, statementCache: {} }).statementCache).toEqual({ size: 100 });
});

test('pgbouncer transaction mode turns it off unless asked for; session mode leaves it on', () => {
  expect(resolveOptions({ connection, pgbouncer: 'transaction' }).statementCache).toBe(false);
  expect(resolveOptions({ connection, pgbouncer: 'transaction', statementCache: { size: 50 } }).statementCache).toEqual({ size: 50 });
  expect(resolveOptions({ connection, pgbouncer: 'session' }).statementCache).toEqual({ size: 100 });
  expect(resolveOptions({ connection, pgbouncer: 'session' }).pgbouncer).toBe('session');
  expect(resolveOptions({ connection }).pgbouncer).toBeUndefined();
});

test('bad values are refused, naming the option and the fix', () => {
  expect(refusal({ statementCache: { size: 0 } })).toMatch(/"statementCache\.size".*whole number from 1 to 10000/);
  expect(refusal({ statementCache: { size: 2.5 } })).toMatch(/statementCache\.size/);
  expect(refusal({ statementCache: { size: 10_001 } })).toMatch(/statementCache\.size/);
  expect(refusal({ statementCache: { max: 5 } })).toMatch(/"statementCache\.max": unknown option.*size/);
  expect(refusal({ statementCache: 100 })).toMatch(/"statementCache": expected an object or false.*\{ size: 100 \}/);
  expect(refusal({ pgbouncer: 'statement' })).toMatch(/"pgbouncer": expected 'transaction' or 'session', got "statement"/);
  expect(refusal({ pgbouncer: true })).toMatch(/"pgbouncer"/);
});
