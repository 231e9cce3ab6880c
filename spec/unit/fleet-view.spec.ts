/**
 * The fleet view (lib/fleet/view.ts) on rows of pg_stat_activity: instances found by their listener
 * and pool sessions, session states counted, the oldest transaction, totals per service, a filter
 * by service, and sessions of anything else ignored.
 */
import { fleetView, type SessionRow } from '../../lib/fleet/view';

const row = (name: string, state: string | null = 'idle', xactStart: Date | null = null): SessionRow => ({ name, state, xactStart });
const T1 = new Date('2026-01-01T10:00:00Z');
const T2 = new Date('2026-01-01T10:05:00Z');

test('instances with their sessions, per service, against max_connections', () => {
  const rows = [
    row('kcm-fleet:orders:web1:101:ab12'),
    row('orders@web1:101:ab12:1', 'active', T2),
    row('orders@web1:101:ab12:2', 'idle in transaction', T1),
    row('orders@web1:101:ab12:3'),
    row('kcm-fleet:orders:web2:202:cd34'),
    row('orders@web2:202:cd34:7'),
    row('billing@web3:303:ef56:1', 'idle in transaction (aborted)'),
    row('psql'),
    row('knex-connection-manager:4'),
  ];
  const view = fleetView(rows, 100);
  expect(view.totalSessions).toBe(9);
  expect(view.instances.map((v) => [v.service, v.instance, v.listening, v.sessions, v.active, v.idle, v.idleInTransaction])).toEqual([
    ['billing', 'web3:303:ef56', false, 1, 0, 0, 1],
    ['orders', 'web1:101:ab12', true, 3, 1, 1, 1],
    ['orders', 'web2:202:cd34', true, 1, 0, 1, 0],
  ]);
  expect(view.instances[1]).toMatchObject({ host: 'web1', pid: 101, oldestTransaction: T1 });
  expect(view.services).toEqual([{ service: 'billing', instances: 1, sessions: 1 }, { service: 'orders', instances: 2, sessions: 6 }]);
  expect(fleetView(rows, 100, 'orders').instances).toHaveLength(2);
  expect(fleetView([], 100)).toMatchObject({ instances: [], services: [] });
});
