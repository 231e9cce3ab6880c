/**
 * Fleet-wide triggers on the real server: managers of one service (and one of another) each LISTEN
 * on the fleet channel; a signed command sent with NOTIFY runs on every instance of its service, each
 * replies, and the sender sees who answered. Forged, stale and replayed commands are refused; a lost
 * listening session comes back; a closed manager leaves no listening session.
 */
import { ConnectionManager } from '../../lib/manager';
import { resolveOptions } from '../../lib/options';
import { sendFleetCommand } from '../../lib/fleet/send';
import { signCommand } from '../../lib/fleet/protocol';
import { silentLogger, testDatabaseUrl, withAdminClient } from '../helpers/database';
import { until } from '../helpers/poll';
import { kcm } from '../helpers/kcm';

const TOKEN = 'fleet-secret-0123456789abcdef';
// A service name of its own: the multi-process spec's instances of "orders" may listen on the same
// server at the same time, and a command expects every listener of its service to answer.
const CHANNEL = 'kcm_fleet_test';
const live: ConnectionManager[] = [];

function instance(service: string, appName: string): ConnectionManager {
  const manager = new ConnectionManager(resolveOptions({
    connection: { connectionString: testDatabaseUrl(), application_name: appName },
    pool: { min: 2, max: 4 },
    fleet: { service, channel: CHANNEL, token: TOKEN },
    logger: silentLogger,
  }));
  live.push(manager);
  return manager;
}

const ids = (m: ConnectionManager): string[] => m.getPoolStats().connections.map((c) => c.id);
const listening = (m: ConnectionManager): boolean => m.getPoolStats().fleet?.listening === true;

afterEach(async () => {
  await Promise.all(live.splice(0).map((m) => m.close()));
});

async function notifyRaw(payload: string): Promise<void> {
  await withAdminClient(testDatabaseUrl(), (client) => client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]));
}

test('renew runs on every instance of the service, each replies; the other service is untouched', async () => {
  const a = instance('shop', 'kcm-fleet-a');
  const b = instance('shop', 'kcm-fleet-b');
  const other = instance('billing', 'kcm-fleet-c');
  await Promise.all([a, b, other].map((m) => m.ready()));
  await until(() => [a, b, other].every(listening), { timeoutMs: 10_000, description: 'every listener up' });
  const before = { a: ids(a), b: ids(b), other: ids(other) };
  const result = await sendFleetCommand({ connection: testDatabaseUrl(), service: 'shop', channel: CHANNEL, token: TOKEN, command: 'renew', timeoutMs: 10_000 });
  if (process.env.KCM_REPORT) console.log(`fleet renew of 2 instances answered in ${result.durationMs.toFixed(1)} ms`);
  expect(result.expected.sort()).toEqual([a.getPoolStats().fleet?.instance, b.getPoolStats().fleet?.instance].sort());
  expect(result.missing).toEqual([]);
  expect(result.replies.map((r) => ({ ok: r.ok, count: r.count }))).toEqual([{ ok: true, count: 2 }, { ok: true, count: 2 }]);
  for (const [m, old] of [[a, before.a], [b, before.b]] as const) {
    await until(() => ids(m).length === 2 && ids(m).every((id) => !old.includes(id)), { timeoutMs: 5_000, description: 'every connection replaced' });
    expect(m.getPoolStats().fleet).toMatchObject({ commands: 1, refused: 0, last: { command: 'renew', ok: true } });
  }
  expect(ids(other)).toEqual(before.other);
  expect(other.getPoolStats().fleet).toMatchObject({ commands: 0, refused: 0 });
});

test('forged, stale and replayed commands are refused and counted; resize reaches every instance', async () => {
  const a = instance('shop', 'kcm-fleet-d');
  await a.ready();
  await until(() => listening(a), { timeoutMs: 10_000, description: 'listener up' });
  // Wrong token: nobody runs it, nobody answers.
  const forged = await sendFleetCommand({ connection: testDatabaseUrl(), service: 'shop', channel: CHANNEL, token: 'not-the-secret-0123456789', command: 'reset', timeoutMs: 300 });
  expect(forged.replies).toEqual([]);
  expect(forged.missing).toHaveLength(1);
  await until(() => a.getPoolStats().fleet?.refused === 1, { timeoutMs: 5_000, description: 'the forged command refused' });
  // Stale: signed a minute ago.
  await notifyRaw(JSON.stringify(signCommand(TOKEN, 'reset', 'shop', undefined, Date.now() - 60_000)));
  await until(() => a.getPoolStats().fleet?.refused === 2, { timeoutMs: 5_000, description: 'the stale command refused' });
  // Replayed: a genuine command, sent twice.
  const genuine = JSON.stringify(signCommand(TOKEN, 'resize', 'shop', { max: 6 }, Date.now()));
  await notifyRaw(genuine);
  await until(() => a.getPoolStats().max === 6, { timeoutMs: 5_000, description: 'resize applied' });
  await notifyRaw(genuine);
  await until(() => a.getPoolStats().fleet?.refused === 3, { timeoutMs: 5_000, description: 'the replay refused' });
  await notifyRaw('{"v":1,"cmd":"reset"');
  await until(() => a.getPoolStats().fleet?.refused === 4, { timeoutMs: 5_000, description: 'garbage refused' });
  expect(a.getPoolStats().fleet).toMatchObject({ commands: 1 });
});

test('a listening session killed on the server comes back; a closed manager leaves none', async () => {
  const a = instance('shop', 'kcm-fleet-e');
  await a.ready();
  await until(() => listening(a), { timeoutMs: 10_000, description: 'listener up' });
  const name = `kcm-fleet:shop:${a.getPoolStats().fleet?.instance}`;
  const sessions = (): Promise<number> => withAdminClient(testDatabaseUrl(), async (c) =>
    (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name])).rows[0].n);
  expect(await sessions()).toBe(1);
  await withAdminClient(testDatabaseUrl(), (c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [name]));
  await until(() => a.getPoolStats().fleet?.reconnects === 1 && listening(a), { timeoutMs: 10_000, description: 'the listener back' });
  const result = await sendFleetCommand({ connection: testDatabaseUrl(), service: 'shop', channel: CHANNEL, token: TOKEN, command: 'expire', timeoutMs: 10_000 });
  expect(result.replies.map((r) => r.ok)).toEqual([true]);
  await a.close();
  expect(await sessions()).toBe(0);
});

test('kcm fleet renew and resize: a line per instance, exit 0; a wrong token: no answer, exit 1; usage errors exit 2', async () => {
  const a = instance('shop', 'kcm-fleet-f');
  const b = instance('shop', 'kcm-fleet-g');
  await Promise.all([a, b].map((m) => m.ready()));
  await until(() => [a, b].every(listening), { timeoutMs: 10_000, description: 'listeners up' });
  const env = { KCM_FLEET_TOKEN: TOKEN, KCM_FLEET_DATABASE_URL: testDatabaseUrl() };
  const renew = await kcm(['fleet', 'renew', '--service', 'shop', '--channel', CHANNEL], env);
  expect(renew).toMatchObject({ code: 0, stderr: '' });
  for (const m of [a, b]) expect(renew.stdout).toContain(m.getPoolStats().fleet?.instance as string);
  expect(renew.stdout).toMatch(/renew: 2 of 2 instance\(s\) done in/);
  const resize = await kcm(['fleet', 'resize', '--service', 'shop', '--channel', CHANNEL, '--max', '7', '--json'], env);
  expect(resize.code).toBe(0);
  expect(JSON.parse(resize.stdout)).toMatchObject({ command: 'resize', missing: [] });
  for (const m of [a, b]) expect(m.getPoolStats().max).toBe(7);
  const forged = await kcm(['fleet', 'reset', '--service', 'shop', '--channel', CHANNEL, '--timeout', '300'], { ...env, KCM_FLEET_TOKEN: 'not-the-secret-0123456789' });
  expect(forged.code).toBe(1);
  expect(forged.stdout).toMatch(/no answer/);
  expect((await kcm(['fleet', 'resize', '--service', 'shop'], env)).code).toBe(2);
  expect((await kcm(['fleet', 'renew'], env)).code).toBe(2);
  const nobody = await kcm(['fleet', 'renew', '--service', 'nobody', '--channel', CHANNEL], env);
  expect(nobody).toMatchObject({ code: 1, stdout: expect.stringContaining('No instance of service nobody') });
}, 60_000);

