/**
 * A throwaway PgBouncer in front of a PostgreSQL server, for the tests and the measurements.
 *
 * startPgBouncer() writes an ini, an auth file, a log file and a pid file into a fresh temporary
 * directory, starts the system's `pgbouncer` (Debian's package) in the foreground on 127.0.0.1 on a
 * free port, with no unix socket, in the pooling mode asked for, and waits until `SELECT 1` succeeds
 * through it. The handle stops it (SIGINT, then SIGKILL if it lingers) and removes the directory;
 * should the process end first, an 'exit' hook kills it and removes the directory.
 *
 * PgBouncer refuses to run as root: when this process is root it runs as the PostgreSQL server's OS
 * user (scripts/pg-binaries.ts: `postgres`, else `nobody`, or PG_OS_USER), which owns the directory.
 *
 * Authentication is `trust` on both sides, as the throwaway server's: the auth file only lists the
 * user. pg sends no startup parameter PgBouncer does not know (user, database, application_name,
 * and the session timeouts and `options` when configured); `extra_float_digits` (sent by other
 * drivers and by older pg) is ignored rather than refused, as is usual.
 *
 * CLI:
 *   npx ts-node --transpile-only scripts/pgbouncer.ts --target-port 5432 [--mode transaction|session]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { serverOsUser } from './pg-binaries';
import { findFreePort, waitForSelect1 } from './test-db';

/** PgBouncer's `pool_mode` (statement mode is not supported by the manager). */
export type PgBouncerPoolMode = 'transaction' | 'session';

export interface StartPgBouncerOptions {
  /** Port of the PostgreSQL server on 127.0.0.1 that PgBouncer forwards to. */
  targetPort: number;
  mode: PgBouncerPoolMode;
  /** Database name clients use and the server has (default `postgres`). */
  database?: string;
  /** User clients and PgBouncer log in as (default `postgres`). */
  user?: string;
  /** Server connections per user and database (`default_pool_size`, default 20). */
  defaultPoolSize?: number;
  /** Extra `[pgbouncer]` settings, e.g. `{ server_check_delay: '0' }`. */
  extraConf?: Record<string, string>;
  /** How long to wait for PgBouncer to answer `SELECT 1`, in ms (default 15 000). */
  readyTimeoutMs?: number;
}

export interface TestPgBouncer {
  /** `postgres://<user>@127.0.0.1:<port>/<database>`. */
  url: string;
  port: number;
  mode: PgBouncerPoolMode;
  /** `pgbouncer --version`'s number, e.g. `1.18.0`. */
  version: string;
  /** The temporary directory holding the ini, auth, log and pid files. */
  dir: string;
  logFile: string;
  /** Stops PgBouncer and deletes its directory; safe to call twice. */
  stop(): Promise<void>;
}

const INSTALL_HINT = 'Install it (Debian/Ubuntu: `apt-get install pgbouncer`) or put a pgbouncer binary on PATH (or set PGBOUNCER_BIN).';

/**
 * The pgbouncer binary: PGBOUNCER_BIN, else on PATH, else /usr/sbin/pgbouncer; undefined when there
 * is none (also when PGBOUNCER_BIN names a file that does not exist).
 */
export function findPgBouncer(): string | undefined {
  const given = process.env.PGBOUNCER_BIN;
  if (given) return existsSync(given) ? given : undefined;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, 'pgbouncer');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The version of the pgbouncer binary, e.g. `1.18.0`. */
export function pgBouncerVersion(binary: string): string {
  const out = execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  const match = /PgBouncer\s+(\d+\.\d+(?:\.\d+)?)/i.exec(out);
  if (!match) throw new Error(`could not read the version in \`${binary} --version\`: ${out.trim()}`);
  return match[1];
}

/** Whether `version` is at least `major.minor`. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

async function logTail(logFile: string, lines = 20): Promise<string> {
  try {
    return (await fs.readFile(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function iniFile(opts: Required<Omit<StartPgBouncerOptions, 'extraConf' | 'readyTimeoutMs'>>, port: number, dir: string, extra: Record<string, string>): string {
  const settings: Record<string, string> = {
    listen_addr: '127.0.0.1',
    listen_port: String(port),
    // No unix socket: the tests reach it over TCP only, and nothing is left in /tmp.
    unix_socket_dir: '',
    auth_type: 'trust',
    auth_file: path.join(dir, 'userlist.txt'),
    pool_mode: opts.mode,
    default_pool_size: String(opts.defaultPoolSize),
    max_client_conn: '500',
    logfile: path.join(dir, 'pgbouncer.log'),
    pidfile: path.join(dir, 'pgbouncer.pid'),
    ignore_startup_parameters: 'extra_float_digits',
    // Quick retries after a server restart (the default waits 15 s before reconnecting after a failed login).
    server_login_retry: '1',
    admin_users: opts.user,
    ...extra,
  };
  const database = `${opts.database} = host=127.0.0.1 port=${opts.targetPort} dbname=${opts.database}`;
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}`);
  return `; Written by scripts/pgbouncer.ts.\n[databases]\n${database}\n\n[pgbouncer]\n${lines.join('\n')}\n`;
}

/** Kills `child` (SIGINT: PgBouncer's safe shutdown; SIGKILL after 5 s) and waits for it to exit. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGINT');
  });
}

/** Starts PgBouncer in front of the server on 127.0.0.1:`targetPort`. */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<TestPgBouncer> {
  const binary = findPgBouncer();
  if (!binary) throw new Error(`pgbouncer not found. ${INSTALL_HINT}`);
  const version = pgBouncerVersion(binary);
  const opts = { database: 'postgres', user: 'postgres', defaultPoolSize: 20, ...options };
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kcm-pgbouncer-'));
  const logFile = path.join(dir, 'pgbouncer.log');
  const iniPath = path.join(dir, 'pgbouncer.ini');
  let child: ChildProcess | undefined;
  const onExit = () => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (child) await terminate(child);
      await fs.rm(dir, { recursive: true, force: true });
    } finally {
      process.removeListener('exit', onExit);
    }
  };

  try {
    const port = await findFreePort();
    await fs.writeFile(path.join(dir, 'userlist.txt'), `"${opts.user}" ""\n`);
    await fs.writeFile(iniPath, iniFile(opts, port, dir, options.extraConf ?? {}));
    const user = serverOsUser();
    if (user) {
      for (const name of ['', 'userlist.txt', 'pgbouncer.ini']) await fs.chown(path.join(dir, name), user.uid, user.gid);
    }
    let output = '';
    const started = spawn(binary, [iniPath], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<never>((_resolve, reject) => {
      started.once('error', reject);
      started.once('exit', (code, signal) =>
        reject(new Error(`pgbouncer exited at start (code ${code}, signal ${signal}):\n${output.trim()}`)),
      );
    });
    exited.catch(() => undefined);
    const url = `postgres://${opts.user}@127.0.0.1:${port}/${opts.database}`;
    try {
      await Promise.race([waitForSelect1(url, options.readyTimeoutMs ?? 15_000), exited]);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- pgbouncer log tail ---\n${await logTail(logFile)}`);
    }
    // Its process is not what keeps a test or script alive; stop() or the exit hook ends it.
    started.unref();
    for (const stream of [started.stdout, started.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    return { url, port, mode: opts.mode, version, dir, logFile, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

async function main(argv: string[]): Promise<void> {
  const option = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const targetPort = Number(option('--target-port'));
  const mode = (option('--mode') ?? 'transaction') as PgBouncerPoolMode;
  if (!Number.isInteger(targetPort) || targetPort <= 0 || (mode !== 'transaction' && mode !== 'session')) {
    console.error('usage: pgbouncer.ts --target-port N [--mode transaction|session]');
    process.exitCode = 2;
    return;
  }
  const bouncer = await startPgBouncer({ targetPort, mode });
  console.log(`PgBouncer ${bouncer.version} (${mode} mode) at ${bouncer.url}; files in ${bouncer.dir}. Ctrl-C stops it.`);
  process.stdin.resume();
  process.once('SIGINT', () => void bouncer.stop().then(() => process.exit(0)));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
