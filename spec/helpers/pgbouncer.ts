/**
 * The PgBouncer suites: a throwaway PostgreSQL of their own (so it can be restarted behind a running
 * PgBouncer without disturbing the other suites) and a PgBouncer in front of it, started by
 * scripts/pgbouncer.ts.
 *
 * Without a pgbouncer binary the suites say so and skip on a developer's machine; under `CI=true`
 * they fail instead, so that CI never passes without having run them (.ci/run installs it).
 */
import { Client } from 'pg';
import { closeConnectionInstance } from '../../lib';
import { findPgBouncer, startPgBouncer, type PgBouncerPoolMode, type TestPgBouncer } from '../../scripts/pgbouncer';
import { startPostgres, type TestPostgres } from '../../scripts/test-db';

export interface PgBouncerSetup {
  server: TestPostgres;
  bouncer: TestPgBouncer;
}

/** Whether a pgbouncer binary is there; logs why the suites skip when it is not (outside CI). */
function pgBouncerPresent(): boolean {
  if (findPgBouncer() !== undefined) return true;
  if (process.env.CI === 'true') return false;
  console.warn(
    'pgbouncer is not installed (or PGBOUNCER_BIN names no file): the PgBouncer suites are skipped. ' +
      '`apt-get install pgbouncer` runs them; under CI=true they fail instead.',
  );
  return false;
}

/**
 * `describe` for a suite that needs PgBouncer: runs `body` with a server and a PgBouncer in `mode`
 * started before its tests (the process's manager is closed and both are removed after them). Without
 * pgbouncer it is skipped, except under CI=true, where one failing test says what is missing.
 */
export function describeWithPgBouncer(title: string, mode: PgBouncerPoolMode, body: (setup: () => PgBouncerSetup) => void): void {
  if (!pgBouncerPresent()) {
    if (process.env.CI === 'true') {
      describe(title, () => {
        test('needs pgbouncer', () => {
          throw new Error('pgbouncer is not installed and CI=true: install it (`apt-get install pgbouncer`; .ci/run does) so the PgBouncer suites run.');
        });
      });
    } else {
      describe.skip(title, () => body(() => undefined as never));
    }
    return;
  }
  describe(title, () => {
    let current: PgBouncerSetup | undefined;
    let server: TestPostgres | undefined;
    beforeAll(async () => {
      server = await startPostgres();
      const bouncer = await startPgBouncer({ targetPort: server.port, mode });
      current = { server, bouncer };
    }, 60_000);
    afterAll(async () => {
      await closeConnectionInstance();
      await current?.bouncer.stop();
      await server?.remove();
    }, 60_000);
    body(() => {
      if (!current) throw new Error('the PgBouncer set-up did not start (see beforeAll)');
      return current;
    });
  });
}

/** Runs a statement on PgBouncer's admin console (`SHOW …`) and returns the rows. */
export async function pgBouncerAdmin<R>(bouncer: TestPgBouncer, sql: string): Promise<R[]> {
  const client = new Client({ connectionString: bouncer.url.replace(/\/[^/]*$/, '/pgbouncer') });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows as R[];
  } finally {
    await client.end().catch(() => undefined);
  }
}
