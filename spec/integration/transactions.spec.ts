/**
 * manager.transaction() and withRetry() against the real PostgreSQL: two conflicting serializable
 * transactions both succeed through retries; a backend killed before COMMIT is retried; a session
 * lost as COMMIT is written is E_COMMIT_UNKNOWN and not retried; errors of fn pass unchanged.
 */
import type { Knex } from 'knex';
import winston from 'winston';
import { closeConnectionInstance, ConnectionManager, getConnectionInstance, resolveOptions } from '../../lib';
import { testDatabaseUrl, withAdminClient } from '../helpers/database';

const silent = winston.createLogger({ silent: true });
let manager: ConnectionManager;
const table = `kcm_tx_${process.pid}`;

beforeAll(async () => {
  manager = getConnectionInstance({ connection: testDatabaseUrl(), pool: { min: 0, max: 6 }, logger: silent });
  await manager.query(`create table if not exists ${table} (id int primary key, n int not null)`);
});

beforeEach(async () => {
  await manager.query(`truncate ${table}`);
  await manager.query(`insert into ${table} values (1, 0), (2, 0)`);
});

afterAll(async () => {
  await manager.query(`drop table if exists ${table}`);
  await closeConnectionInstance();
});

/** Resolves once `n` calls of `arrive()` were made (a meeting point for the two transactions). */
function barrier(n: number): () => Promise<void> {
  let count = 0;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++count >= n) open();
    return opened;
  };
}

describe('manager.transaction', () => {
  test('two conflicting serializable transactions both succeed, with at least one retry', async () => {
    const before = manager.getPoolStats().counters.transactionRetries;
    const attempts = [0, 0];
    const met = barrier(2);
    // Each reads both rows, then writes the sum into its own: a write skew that serializable refuses.
    const run = (mine: number, i: number) =>
      manager.transaction(async (trx) => {
        attempts[i]++;
        const rows = await trx(table).select('n');
        if (attempts[i] === 1) await met();
        const sum = rows.reduce((s: number, r: { n: number }) => s + r.n, 0);
        await trx(table).where({ id: mine }).update({ n: sum + 1 });
      }, { isolationLevel: 'serializable', attempts: 5, initialDelayMs: 5, maxDelayMs: 50 });
    await Promise.all([run(1, 0), run(2, 1)]);
    const retries = manager.getPoolStats().counters.transactionRetries - before;
    process.stdout.write(`[resilience] serialization test: attempts per transaction ${JSON.stringify(attempts)}, transactionRetries +${retries}\n`);
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(attempts[0] + attempts[1]).toBe(2 + retries);
    const { rows } = await manager.query<{ id: number; n: number }>(`select id, n from ${table} order by id`);
    // Serial outcome: one saw (0,0) and wrote 1, the other then saw the 1 and wrote 2.
    expect(rows.map((r) => r.n).sort()).toEqual([1, 2]);
  });

  test('a backend killed mid-transaction, before COMMIT, is retried on a new connection', async () => {
    let attempt = 0;
    const result = await manager.transaction(async (trx) => {
      attempt++;
      await trx(table).where({ id: 1 }).update({ n: 10 });
      if (attempt === 1) {
        const { rows } = await trx.raw<{ rows: Array<{ pid: number }> }>('select pg_backend_pid() as pid');
        await withAdminClient(testDatabaseUrl(), (admin) => admin.query('select pg_terminate_backend($1)', [rows[0].pid]));
        await trx.raw('select 1');
      }
      return 'done';
    }, { initialDelayMs: 5 });
    expect(result).toBe('done');
    expect(attempt).toBe(2);
    const { rows } = await manager.query<{ n: number }>(`select n from ${table} where id = 1`);
    expect(rows[0].n).toBe(10);
  });

  test('a session lost as COMMIT is written: E_COMMIT_UNKNOWN, never retried', async () => {
    let attempts = 0;
    const before = manager.getPoolStats().counters.transactionRetries;
    const error = await manager.transaction(async (trx) => {
      attempts++;
      await trx(table).where({ id: 2 }).update({ n: 99 });
      // The socket is destroyed the moment knex announces COMMIT, before it is written.
      const raw = (await (trx.client as { acquireConnection(): Promise<{ connection: { stream: { destroy(): void } } }> }).acquireConnection());
      trx.on('query', (q: { sql: string }) => {
        if (q.sql.startsWith('COMMIT')) raw.connection.stream.destroy();
      });
    }).then(() => undefined, (e: unknown) => e as { code?: string; message: string; cause?: unknown });
    expect(error?.code).toBe('E_COMMIT_UNKNOWN');
    expect(error?.message).toContain('may or may not have committed');
    expect(error?.cause).toBeInstanceOf(Error);
    expect(attempts).toBe(1);
    expect(manager.getPoolStats().counters.transactionRetries - before).toBe(0);
  });

  test('errors of fn pass through unchanged and are not retried; readOnly is honoured', async () => {
    const mine = new Error('business rule');
    let attempts = 0;
    await expect(manager.transaction(() => {
      attempts++;
      throw mine;
    })).rejects.toBe(mine);
    expect(attempts).toBe(1);
    await expect(manager.transaction((trx: Knex.Transaction) => trx(table).insert({ id: 3, n: 0 }), { readOnly: true })).rejects.toMatchObject({ code: '25006' });
    await expect(manager.transaction(async () => 1, { isolationLevel: 'sometimes' as never })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
  });
});

describe('manager.withRetry', () => {
  test('retries a deadlock-like failure, passes other errors through', async () => {
    let calls = 0;
    const value = await manager.withRetry(async () => {
      calls++;
      if (calls < 3) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      return 'ok';
    }, { attempts: 3, initialDelayMs: 1 });
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(manager.withRetry(async () => {
      calls++;
      throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
    }, { attempts: 2, initialDelayMs: 1 })).rejects.toMatchObject({ code: '40P01' });
    expect(calls).toBe(2);
    calls = 0;
    await expect(manager.withRetry(async () => {
      calls++;
      throw new TypeError('bug');
    })).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
    await expect(manager.withRetry(async () => 1, { attempts: 0 })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
  });
});

test('each attempt of transaction() carries its tags: admission counts the holder while it runs', async () => {
  // A manager of its own (not the process's), with admission counting the `tenant` tag.
  const tagged = new ConnectionManager(resolveOptions({ connection: testDatabaseUrl(), pool: { min: 0, max: 2 }, logger: silent, admission: { tagKeys: ['tenant'] } }));
  try {
    const seen = await tagged.transaction(async () => tagged.getPoolStats().tags?.tenant?.acme?.inUse, { tags: { tenant: 'acme' } });
    expect(seen).toBe(1);
    expect(tagged.getPoolStats().tags?.tenant?.acme).toMatchObject({ inUse: 0, acquired: 1 });
  } finally {
    await tagged.close();
  }
});
