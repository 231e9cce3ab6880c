/**
 * The manager behind a real PgBouncer in transaction mode (`pgbouncer: 'transaction'`): the shared
 * scenarios (pgbouncer-scenarios.ts), the once-per-kind warning about session state outside a
 * transaction, and why the statement cache stays off with a PgBouncer older than 1.21.
 */
import { closeConnectionInstance, getConnectionInstance, type ConnectionManagerConfig } from '../../lib';
import { injectFaults } from '../../lib/testing';
import { startPgBouncer, versionAtLeast } from '../../scripts/pgbouncer';
import { describeWithPgBouncer } from '../helpers/pgbouncer';
import { capturingLogger } from '../helpers/silent-logger';
import { pgBouncerScenarios } from './pgbouncer-scenarios';

describeWithPgBouncer('behind PgBouncer in transaction mode', 'transaction', (setup) => {
  pgBouncerScenarios('transaction', setup);

  describe('session state outside a transaction', () => {
    afterEach(async () => {
      await closeConnectionInstance();
    });

    const config = (logger: ConnectionManagerConfig['logger'], pgbouncer?: 'transaction' | 'session'): ConnectionManagerConfig => ({
      connection: { connectionString: setup().bouncer.url, application_name: 'kcm-pgb-warn' },
      pool: { min: 1, max: 2 },
      logger,
      ...(pgbouncer === undefined ? {} : { pgbouncer }),
    });

    test('conn.query and conn.db warn once per kind outside a transaction; SET LOCAL and transaction-scoped locks and tables do not', async () => {
      const { logger, lines } = capturingLogger('warn');
      const manager = getConnectionInstance(config(logger, 'transaction'));
      const warned = () => lines.filter((l) => l.meta.pgbouncer === 'transaction').map((l) => l.meta.sessionState);
      await manager.withConnection(async (conn) => {
        // Inside a transaction the server session is the lease's until COMMIT; what ends with the
        // transaction is safe. (A plain SET or a session lock taken there outlives it: docs/fleet.md.)
        await conn.query('BEGIN');
        await conn.query('SET LOCAL search_path TO public');
        await conn.query('CREATE TEMP TABLE kcm_in_trx (a int) ON COMMIT DROP');
        await conn.query('SELECT pg_advisory_xact_lock(42)');
        await conn.query('COMMIT');
        await conn.query('SELECT pg_advisory_xact_lock(7)');
        await conn.query('SET LOCAL statement_timeout = 1000');
        await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        expect(warned()).toEqual([]);

        await conn.query(`SET statement_timeout = 5000`);
        await conn.query(`SET statement_timeout = 6000`);
        await conn.db.raw(`SET lock_timeout = 1000`);
        await conn.db.raw('CREATE TEMP TABLE kcm_outside (a int)');
        await conn.query('LISTEN kcm_channel');
        await conn.query('UNLISTEN kcm_channel');
        await conn.query('PREPARE kcm_p AS SELECT 1');
        await conn.query('DEALLOCATE kcm_p');
        await conn.query('SELECT pg_advisory_lock(43)');
        await conn.query('SELECT pg_advisory_unlock(43)');
        await conn.query('BEGIN');
        await conn.query('DECLARE kcm_c CURSOR WITH HOLD FOR SELECT 1');
        await conn.query('COMMIT');
        await conn.query('CLOSE kcm_c');
      });
      expect(warned()).toEqual(['set', 'temp-table', 'listen', 'prepare', 'advisory-lock', 'cursor']);
      expect(lines.find((l) => l.meta.sessionState === 'advisory-lock')?.message).toMatch(/pg_advisory_xact_lock/);
      // Every kind warned about: later statements are not even looked at.
      await manager.withConnection((conn) => conn.query('SET statement_timeout = 0'));
      expect(warned()).toHaveLength(6);
    });

    test('the check sits under injectFaults query latency and survives its removal', async () => {
      const { logger, lines } = capturingLogger('warn');
      const manager = getConnectionInstance({ ...config(logger, 'transaction'), pool: { min: 1, max: 1 } });
      await manager.ready();
      const faults = injectFaults(manager, { queryLatencyMs: 1 });
      await manager.withConnection((conn) => conn.query('SET statement_timeout = 5000'));
      faults.clear();
      await manager.withConnection((conn) => conn.query('LISTEN kcm_after_faults'));
      expect(lines.map((l) => l.meta.sessionState)).toEqual(['set', 'listen']);
    });

    test("in session mode (and without pgbouncer) nothing is watched: no warning", async () => {
      for (const mode of ['session', undefined] as const) {
        const { logger, lines } = capturingLogger('warn');
        const manager = getConnectionInstance(config(logger, mode));
        await manager.withConnection(async (conn) => {
          await conn.query('SET statement_timeout = 5000');
          await conn.query('SELECT pg_advisory_lock(44)');
          await conn.query('SELECT pg_advisory_unlock(44)');
        });
        expect(lines.filter((l) => l.meta.pgbouncer !== undefined)).toEqual([]);
        await closeConnectionInstance();
      }
    });

    test('the statement cache turned on in transaction mode: broken before PgBouncer 1.21, so it must stay off there', async () => {
      // Two clients share PgBouncer's one server session; each connection's cache names its first
      // prepared statement kcm_1. PgBouncer 1.21+ (max_prepared_statements) renames them per server
      // session; an older one passes both names to the same server session.
      const { version } = setup().bouncer;
      const tracks = versionAtLeast(version, 1, 21);
      const bouncer = await startPgBouncer({
        targetPort: setup().server.port,
        mode: 'transaction',
        defaultPoolSize: 1,
        ...(tracks ? { extraConf: { max_prepared_statements: '100' } } : {}),
      });
      try {
        const manager = getConnectionInstance({
          connection: { connectionString: bouncer.url, application_name: 'kcm-pgb-cache' },
          pool: { min: 2, max: 2 },
          logger: capturingLogger('error').logger,
          pgbouncer: 'transaction',
          statementCache: { size: 100 },
        });
        const a = await manager.getConnection();
        const b = await manager.getConnection();
        // The second run of a text prepares it (kcm_1 on each connection).
        for (let i = 0; i < 2; i++) await a.query('SELECT $1::int AS n', [i]);
        const secondText = 'SELECT $1::text AS t';
        await b.query(secondText, ['x']);
        const prepared = b.query<{ t: string }>(secondText, ['y']);
        if (tracks) {
          await expect(prepared).resolves.toMatchObject({ rows: [{ t: 'y' }] });
        } else {
          // PgBouncer < 1.21: "prepared statement "kcm_1" already exists" on the shared server session.
          await expect(prepared).rejects.toMatchObject({ code: '42P05' });
        }
        await manager.releaseConnection(a);
        await manager.releaseConnection(b);
      } finally {
        await closeConnectionInstance();
        await bouncer.stop();
      }
    });
  });
});
