/**
 * The fleet across processes: 4 Node processes (spec/fixtures/fleet-instance.ts), each with its own
 * manager of service "orders" under a steady load, against one server. A fleet renew replaces every
 * connection of all 4 without a failed query; a fleet resize under load leaves no process above the
 * new max in pg_stat_activity terms; a frozen process shows up as not answering, and once it dies its
 * sessions disappear and the next command expects only the living. Every process is bounded in time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { sendFleetCommand } from '../../lib/fleet/send';
import { testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';

const TOKEN = 'fleet-secret-processes-0123456789';
const CHANNEL = 'kcm_fleet_processes';
const FIXTURE = path.resolve(__dirname, '..', '..', 'scripts', 'fleet-instance.ts');

interface Instance {
  child: ChildProcess;
  app: string;
  instance: string;
  next<T>(kind: string): Promise<T>;
}

const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function start(i: number): Promise<Instance> {
  const app = `kcm-fleet-proc-${i}`;
  const child = fork(FIXTURE, [testDatabaseUrl(), 'orders', CHANNEL, TOKEN, app], { execArgv: ['-r', 'ts-node/register/transpile-only'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const next = <T>(kind: string): Promise<T> => new Promise((resolve) => {
    const on = (message: { kind: string }): void => {
      if (message.kind !== kind) return;
      child.off('message', on);
      resolve(message as T);
    };
    child.on('message', on);
  });
  return next<{ instance: string }>('ready').then(({ instance }) => ({ child, app, instance, next }));
}

interface Stats {
  ids: string[];
  queries: number;
  failures: number;
  max: number;
}

function stats(p: Instance): Promise<Stats> {
  const reply = p.next<Stats>('stats');
  p.child.send({ kind: 'stats' });
  return reply;
}

async function sessions(app: string): Promise<number> {
  return withAdminClient(testDatabaseUrl(), async (c) =>
    (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend'", [app])).rows[0].n);
}

const send = (command: 'renew' | 'resize', args?: { max: number }, timeoutMs = 15_000) =>
  sendFleetCommand({ connection: testDatabaseUrl(), service: 'orders', channel: CHANNEL, token: TOKEN, command, args, timeoutMs });

test('4 processes: renew all, resize all under load, a frozen one does not answer, a dead one leaves no session', async () => {
  const instances = await Promise.all([0, 1, 2, 3].map(start));
  const before = await Promise.all(instances.map(stats));

  const renew = await send('renew');
  if (process.env.KCM_REPORT) console.log(`fleet renew: 4 instances answered in ${renew.durationMs.toFixed(1)} ms`);
  expect(renew.expected.sort()).toEqual(instances.map((p) => p.instance).sort());
  expect(renew.missing).toEqual([]);
  expect(renew.replies.every((r) => r.ok)).toBe(true);
  // Every connection id of every process changes; no query failed meanwhile.
  await until(async () => {
    const now = await Promise.all(instances.map(stats));
    return now.every((s, i) => s.ids.length > 0 && s.ids.every((id) => !before[i].ids.includes(id)));
  }, { timeoutMs: 10_000, intervalMs: 20, description: 'every connection of every process replaced' });

  const resize = await send('resize', { max: 2 });
  expect(resize.replies.filter((r) => r.ok)).toHaveLength(4);
  await until(async () => (await Promise.all(instances.map((p) => sessions(p.app)))).every((n) => n <= 2), { timeoutMs: 10_000, intervalMs: 20, description: 'every process down to 2 sessions' });
  for (let k = 0; k < 10; k++) for (const p of instances) expect(await sessions(p.app)).toBeLessThanOrEqual(2);
  const after = await Promise.all(instances.map(stats));
  expect(after.map((s) => s.max)).toEqual([2, 2, 2, 2]);
  expect(after.map((s) => s.failures)).toEqual([0, 0, 0, 0]);
  expect(after.every((s, i) => s.queries > before[i].queries)).toBe(true);

  // Frozen: its sessions stay, it does not answer.
  const frozen = instances[3];
  frozen.child.kill('SIGSTOP');
  const partial = await send('renew', undefined, 1_500);
  expect(partial.missing).toEqual([frozen.instance]);
  expect(partial.replies).toHaveLength(3);
  // Dead: the server drops its sessions; the next command expects only the living.
  frozen.child.kill('SIGKILL');
  await until(async () => (await sessions(frozen.app)) === 0, { timeoutMs: 10_000, intervalMs: 20, description: 'the dead process\'s sessions gone' });
  await until(async () => withAdminClient(testDatabaseUrl(), async (c) =>
    (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(application_name, $1)', [`kcm-fleet:orders:${frozen.instance}`])).rows[0].n === 0),
  { timeoutMs: 10_000, intervalMs: 20, description: 'its listener gone' });
  const living = await send('renew');
  expect(living.expected.sort()).toEqual(instances.slice(0, 3).map((p) => p.instance).sort());
  expect(living.missing).toEqual([]);

  await Promise.all(instances.slice(0, 3).map((p) => new Promise<void>((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.send({ kind: 'stop' });
  })));
  for (const p of instances) expect(await sessions(p.app)).toBe(0);
}, 120_000);
