/** A second database on the test server, for named pools whose connection differs from the default pool's. */
import { testDatabaseUrl, withAdminClient } from './database';

/** The test server's URL, on `database`. */
export function databaseUrl(database: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates `database` (a plain identifier) afresh on the test server. */
export async function createDatabase(database: string): Promise<void> {
  await withAdminClient(testDatabaseUrl(), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${database}`);
  });
}

/** Drops `database`, ending any session still on it. */
export async function dropDatabase(database: string): Promise<void> {
  await withAdminClient(testDatabaseUrl(), (client) => client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
}
