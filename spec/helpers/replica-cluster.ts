/**
 * A throwaway primary and a hot standby that streams from it, for the read/write routing tests and
 * the routing measurement.
 *
 * The primary is an ordinary scripts/test-db.ts cluster (its initdb pg_hba.conf already trusts
 * replication connections from 127.0.0.1). The standby is a `pg_basebackup -R -X stream` copy of it
 * in a fresh directory, started through the same harness on a port of its own, so it has the same
 * stop/start/remove handle. When this process is root, pg_basebackup runs as the server's OS user,
 * like the server itself, so the copy belongs to that user.
 *
 * startReplicaCluster() returns only once the standby is in recovery and has replayed a row written
 * on the primary after the copy; stopAll() stops both servers and deletes both directories (also
 * done when the start fails, and at process exit should the caller never get there).
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killPostgresSync, startPostgres, type TestPostgres } from '../../scripts/test-db';
import { withAdminClient } from './database';
import { until } from './poll';

export interface ReplicaCluster {
  primary: TestPostgres;
  /** The hot standby: the same handle as the primary's (stop/start/remove/pgCtl). */
  replica: TestPostgres;
  primaryUrl: string;
  replicaUrl: string;
  /** Stops both servers and deletes their directories; safe to call twice. */
  stopAll(): Promise<void>;
}

export interface ReplicaClusterOptions {
  /** Extra postgresql.conf settings for both servers. */
  extraConf?: Record<string, string>;
  /** Bound on each step that waits for a server (default 60 000 ms). */
  timeoutMs?: number;
}

/** Settings every server of the cluster gets: enough WAL senders, and WAL kept for a stopped standby. */
const REPLICATION_CONF: Record<string, string> = {
  wal_level: 'replica',
  max_wal_senders: '5',
  wal_keep_size: '64MB',
  hot_standby: 'on',
  // Queries on the standby are never cancelled for conflicting with replay in these tests.
  max_standby_streaming_delay: '-1',
  hot_standby_feedback: 'on',
};

interface OsUser {
  uid: number;
  gid: number;
}

/** The OS user the servers run as when this process is root (the rule of scripts/test-db.ts). */
function serverOsUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const candidates = process.env.PG_OS_USER ? [process.env.PG_OS_USER] : ['postgres', 'nobody'];
  for (const name of candidates) {
    try {
      const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const user = { uid: id('-u'), gid: id('-g') };
      if (user.uid !== 0) return user;
    } catch {
      // no such user
    }
  }
  throw new Error(`None of the users ${candidates.join(', ')} exists to run PostgreSQL as; set PG_OS_USER.`);
}

/** Runs `pg_basebackup` (as the server's OS user when root); rejects with its output on failure. */
function baseBackup(binDir: string, args: string[], timeoutMs: number): Promise<void> {
  const user = serverOsUser();
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(binDir, 'pg_basebackup'), args, {
      cwd: os.tmpdir(),
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`pg_basebackup ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** Starts a primary and a hot standby streaming from it. */
export async function startReplicaCluster(options: ReplicaClusterOptions = {}): Promise<ReplicaCluster> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const extraConf = { ...REPLICATION_CONF, ...options.extraConf };
  let primary: TestPostgres | undefined;
  let replica: TestPostgres | undefined;
  let replicaDir: string | undefined;
  let binDir: string | undefined;
  // Should the process end without stopAll(), do not leave servers behind.
  const onExit = () => {
    if (replicaDir && binDir) killPostgresSync(replicaDir, binDir);
    if (primary) killPostgresSync(primary.dataDir, primary.binDir);
  };
  process.once('exit', onExit);
  let stopped = false;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (replica) await replica.remove();
      else if (replicaDir) rmSync(replicaDir, { recursive: true, force: true });
      if (primary) await primary.remove();
    } finally {
      process.removeListener('exit', onExit);
    }
  };

  try {
    primary = await startPostgres({ extraConf, readyTimeoutMs: timeoutMs });
    binDir = primary.binDir;

    replicaDir = await fs.mkdtemp(path.join(os.tmpdir(), 'kcm-replica-'));
    const user = serverOsUser();
    if (user) await fs.chown(replicaDir, user.uid, user.gid);
    await baseBackup(
      binDir,
      ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', replicaDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync'],
      timeoutMs,
    );
    // The copy carries the primary's harness settings (its port) and log; the standby gets its own.
    await fs.rm(path.join(replicaDir, 'kcm-test.conf'), { force: true });
    await fs.rm(path.join(replicaDir, 'server.log'), { force: true });
    replica = await startPostgres({ dataDir: replicaDir, binDir, extraConf, readyTimeoutMs: timeoutMs });

    const inRecovery = await withAdminClient(replica.url, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r);
    if (!inRecovery) throw new Error(`the server on port ${replica.port} is not a standby (pg_is_in_recovery() is false)`);

    // Replication works end to end: a row written on the primary is replayed on the standby.
    const marker = `cluster-${process.pid}-${Date.now()}`;
    await withAdminClient(primary.url, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS kcm_replication_check (marker text PRIMARY KEY)');
      await c.query('INSERT INTO kcm_replication_check VALUES ($1)', [marker]);
    });
    const replicaUrl = replica.url;
    await withAdminClient(replicaUrl, (c) =>
      until(
        async () => {
          const { rows } = await c.query('SELECT 1 FROM pg_class WHERE relname = $1', ['kcm_replication_check']);
          if (rows.length === 0) return false;
          return (await c.query('SELECT 1 FROM kcm_replication_check WHERE marker = $1', [marker])).rows.length === 1;
        },
        { timeoutMs, intervalMs: 20, description: 'a row written on the primary replayed on the standby' },
      ),
    );
    return { primary, replica, primaryUrl: primary.url, replicaUrl, stopAll };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}

/**
 * Starts a cluster, runs `schema` on the primary, and waits until the standby has replayed it
 * (`replayedSql` returns a row there): the shared set-up of the routing specs.
 */
export async function startReplicaClusterWith(schema: readonly string[], replayedSql: string): Promise<ReplicaCluster> {
  const cluster = await startReplicaCluster();
  await withAdminClient(cluster.primaryUrl, async (c) => {
    for (const statement of schema) await c.query(statement);
  });
  await withAdminClient(cluster.replicaUrl, (c) =>
    until(async () => (await c.query(replayedSql)).rows.length === 1, {
      timeoutMs: 30_000,
      description: 'the test schema replayed on the standby',
    }),
  );
  return cluster;
}
