/**
 * pool.validate in the connector, on a fake clock and a stand-in pg client: it replaces SELECT 1,
 * only `true` passes, a throw or a verdict later than validationTimeoutMs counts as invalid, and the
 * connection lent to the hook is unusable once it returns.
 */
import knex from 'knex';
import type { Client as PgClient } from 'pg';
import { PgConnector } from '../../lib/driver/pg-connector';
import type { SessionSetupConnection } from '../../lib/options';
import { FakeClock } from '../helpers/fake-clock';
import { observe } from '../helpers/invariants';
import { silentLogger } from '../helpers/silent-logger';

const client = knex({ client: 'pg' }).client;

function setup(validate: (conn: SessionSetupConnection) => Promise<boolean> | boolean) {
  const clock = new FakeClock();
  const sent: string[] = [];
  const raw = { query: (sql: string) => (sent.push(sql), Promise.resolve({ rows: [{ ok: 1 }] })) } as unknown as PgClient;
  const connector = new PgConnector(client, silentLogger(), clock, { validate });
  return { clock, sent, raw, connector };
}

test.each([
  [true, true],
  [false, false],
  [1 as unknown as boolean, false],
])('a hook answering %j validates as %j, and no SELECT 1 is sent', async (verdict, expected) => {
  const { raw, connector, sent } = setup(async (conn) => {
    await conn.query('select health()');
    return verdict;
  });
  expect(await connector.validate(raw, 1_000)).toBe(expected);
  expect(sent).toEqual(['select health()']);
});

test('a throw counts as invalid', async () => {
  const { raw, connector } = setup(() => {
    throw new Error('crashed');
  });
  expect(await connector.validate(raw, 1_000)).toBe(false);
});

test('a verdict later than the timeout counts as invalid', async () => {
  const { raw, connector, clock } = setup(() => new Promise<boolean>((resolve) => clock.setTimer(() => resolve(true), 5_000)));
  const verdict = observe(connector.validate(raw, 200));
  await clock.advanceAsync(199);
  expect(verdict.state).toBe('pending');
  await clock.advanceAsync(1);
  expect(verdict.value).toBe(false);
  await clock.advanceAsync(5_000);
});

test('the connection lent to the hook refuses queries once the hook returned', async () => {
  let kept: SessionSetupConnection | undefined;
  const { raw, connector } = setup((conn) => {
    kept = conn;
    return true;
  });
  expect(await connector.validate(raw, 1_000)).toBe(true);
  await expect(kept?.query('select 1')).rejects.toMatchObject({ code: 'E_NOT_CHECKED_OUT' });
});
