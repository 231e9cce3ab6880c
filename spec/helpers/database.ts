/** Helpers for integration tests that talk to the PostgreSQL server of the test run. */
import { Client } from 'pg';
import winston from 'winston';
import type { ConnectionManagerConfig } from '../../lib';

/** The server of this test run: TEST_DATABASE_URL, which the jest global setup provides. */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      'TEST_DATABASE_URL is not set. `npm test` starts PostgreSQL automatically through the jest global ' +
        'setup (spec/helpers/global-setup.ts); when running tests another way, set ' +
        'TEST_DATABASE_URL=postgres://user:password@host:port/database.',
    );
  }
  return url;
}

/** Opens a plain pg.Client (outside any pool under test), runs fn with it, and closes it. */
export async function withAdminClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'kcm-test-admin' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Counts the client backends connected to the server other than the one counting, optionally only
 * those of the manager whose application_name prefix is applicationName (`<prefix>` while a
 * session opens, `<prefix>:<N>` once its record is attached).
 */
export async function countBackends(url: string, applicationName?: string): Promise<number> {
  return withAdminClient(url, async (client) => {
    const filter = applicationName === undefined ? '' : " AND split_part(application_name, ':', 1) = $1";
    const { rows } = await client.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()${filter}`,
      applicationName === undefined ? [] : [applicationName],
    );
    return rows[0].count;
  });
}

/** A logger that writes nothing, for managers under test. */
export const silentLogger = winston.createLogger({ silent: true });

/**
 * A manager configuration for the test server, with its own `application_name` so backend counts
 * in pg_stat_activity are per test, and a silent logger.
 */
export function testConfig(
  appName: string,
  pool: ConnectionManagerConfig['pool'] = { min: 2, max: 4 },
  overrides: Partial<ConnectionManagerConfig> = {},
): ConnectionManagerConfig {
  return { connection: { connectionString: testDatabaseUrl(), application_name: appName }, pool, logger: silentLogger, ...overrides };
}
