/**
 * The fleet across processes: 4 Node processes (spec/fixtures/fleet-instance.ts), each with its own
 * manager of service "orders" under a steady load, against one server. A fleet renew replaces every
 * connection of all 4 without a failed query; a fleet resize under load leaves no process above the
 * new max in pg_stat_activity terms; a frozen process shows up as not answering, and once it dies its
 * sessions disappear and the next command expects only the living. Every process is bounded in time.
 */
import { sendFleetCommand } from '../../lib/fleet/send';
import { testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';
import { kcm } from '../helpers/kcm';
import { readFleet } from '../../lib/fleet/view';
import { instanceStats as stats, killInstances, startInstance, stopInstance, untilAllReplaced, type Instance } from '../helpers/fleet-processes';

const TOKEN = 'fleet-secret-processes-0123456789';
const CHANNEL = 'kcm_fleet_processes';

/** The pool sessions of the process whose connection is named `app`: `<app>@<instance>:<N>` with `fleet`. */
async function sessions(app: string): Promise<number> {
  return withAdminClient(testDatabaseUrl(), async (c) =>
    (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(application_name, $1) AND backend_type = 'client backend'", [`${app}@`])).rows[0].n);
}

afterAll(killInstances);

const send = (command: 'renew' | 'resize', args?: { max: number }, timeoutMs = 15_000) =>
  sendFleetCommand({ connection: testDatabaseUrl(), service: 'orders', channel: CHANNEL, token: TOKEN, command, args, timeoutMs });

test('4 processes: renew all, resize all under load, a frozen one does not answer, a dead one leaves no session', async () => {
  const instances: Instance[] = await Promise.all([0, 1, 2, 3].map((i) => startInstance(i, testDatabaseUrl(), CHANNEL, TOKEN)));
  const before = await Promise.all(instances.map(stats));
  // kcm fleet's view, from pg_stat_activity alone: the 4 instances, each with its pool's sessions.
  await until(async () => {
    const view = await readFleet(testDatabaseUrl(), 'orders');
    const now = await Promise.all(instances.map(stats));
    return view.instances.length === 4 && instances.every((p, i) => {
      const seen = view.instances.find((v) => v.instance === p.instance);
      return seen !== undefined && seen.listening && seen.sessions === now[i].ids.length && seen.pid === p.child.pid;
    });
  }, { timeoutMs: 10_000, intervalMs: 50, description: 'kcm fleet lists the 4 instances with their sessions' });
  const listed = await kcm(['fleet', '--service', 'orders', '--json'], { KCM_FLEET_DATABASE_URL: testDatabaseUrl() });
  expect(listed.code).toBe(0);
  expect((JSON.parse(listed.stdout) as { instances: unknown[] }).instances).toHaveLength(4);

  const renew = await send('renew');
  if (process.env.KCM_REPORT) console.log(`fleet renew: 4 instances answered in ${renew.durationMs.toFixed(1)} ms`);
  expect(renew.expected.sort()).toEqual(instances.map((p) => p.instance).sort());
  expect(renew.missing).toEqual([]);
  expect(renew.replies.every((r) => r.ok)).toBe(true);
  // Every connection id of every process changes; no query failed meanwhile.
  await untilAllReplaced(instances, before);

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

  await Promise.all(instances.slice(0, 3).map(stopInstance));
  for (const p of instances) expect(await sessions(p.app)).toBe(0);
}, 120_000);
