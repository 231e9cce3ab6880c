/**
 * The fleet behind a real PgBouncer in transaction mode: 4 processes whose pools connect through
 * PgBouncer, each fleet listener directly to PostgreSQL (`fleet.directConnection`: LISTEN needs a
 * session of its own). A fleet renew replaces every connection of all 4 without a failed query, and
 * a fleet resize reaches all 4.
 */
import { sendFleetCommand } from '../../lib/fleet/send';
import { describeWithPgBouncer } from '../helpers/pgbouncer';
import { instanceStats as stats, killInstances, startInstance, stopInstance, untilAllReplaced, type Instance } from '../helpers/fleet-processes';

const TOKEN = 'fleet-secret-pgbouncer-0123456789';
const CHANNEL = 'kcm_fleet_pgb';

describeWithPgBouncer('the fleet behind PgBouncer in transaction mode', 'transaction', (setup) => {
  afterAll(killInstances);

  test('4 processes through PgBouncer: renew all without a failed query, resize all', async () => {
    const { server, bouncer } = setup();
    const behind = { mode: 'transaction', directUrl: server.url };
    const instances: Instance[] = await Promise.all([0, 1, 2, 3].map((i) => startInstance(i, bouncer.url, CHANNEL, TOKEN, behind)));
    const before = await Promise.all(instances.map(stats));
    const send = (command: 'renew' | 'resize', args?: { max: number }) =>
      sendFleetCommand({ connection: server.url, service: 'orders', channel: CHANNEL, token: TOKEN, command, args, timeoutMs: 15_000 });
    const renew = await send('renew');
    if (process.env.KCM_REPORT) console.log(`fleet renew behind PgBouncer: 4 instances answered in ${renew.durationMs.toFixed(1)} ms`);
    expect(renew.expected.sort()).toEqual(instances.map((p) => p.instance).sort());
    expect(renew.missing).toEqual([]);
    expect(renew.replies.every((r) => r.ok)).toBe(true);
    await untilAllReplaced(instances, before);
    const resize = await send('resize', { max: 3 });
    expect(resize.replies.filter((r) => r.ok)).toHaveLength(4);
    const after = await Promise.all(instances.map(stats));
    expect(after.map((s) => s.max)).toEqual([3, 3, 3, 3]);
    expect(after.map((s) => s.failures)).toEqual([0, 0, 0, 0]);
    expect(after.every((s, i) => s.queries > before[i].queries)).toBe(true);
    await Promise.all(instances.map(stopInstance));
  }, 120_000);
});
