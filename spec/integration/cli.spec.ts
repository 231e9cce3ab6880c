/**
 * The `kcm` command line against a running manager's admin endpoint, each run a separate process
 * (ts-node, as `npm run kcm` runs it): the stats table in creation order, --json, --watch, the
 * triggers, metrics, and the exit codes and messages for a refused token, a refused connection,
 * a timeout and bad usage.
 */
import * as net from 'node:net';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type ManagerPoolStats, type PooledConnection } from '../../lib';
import { testDatabaseUrl } from '../helpers/database';
import { kcm } from '../helpers/kcm';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
const silent = winston.createLogger({ silent: true });
const TOKEN = 'cli-spec-token-0123456789abcdef';

/** A loopback port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('kcm', () => {
  let manager: ConnectionManager;
  let endpoint: string;
  let held: PooledConnection;

  beforeAll(async () => {
    manager = getConnectionInstance({
      connection: { connectionString: url, application_name: 'kcm-spec-cli' },
      pool: { min: 3, max: 5 },
      logger: silent,
      admin: { port: 0, token: TOKEN },
    });
    await manager.ready();
    endpoint = (await manager.adminReady()).url;
    held = await manager.getConnection();
  });

  afterAll(async () => {
    if (held.inUse) await manager.releaseConnection(held);
    await closeConnectionInstance();
  });

  test('stats prints the pool and every connection in creation order, with state, age and idle time', async () => {
    const run = await kcm(['stats', '--url', endpoint], { KCM_ADMIN_TOKEN: TOKEN });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('primary');
    expect(run.stdout).toMatch(/open 3\/5 \(min 3\) +in use 1 +idle 2 +pending 0 +waiting 0/);
    const header = lines.findIndex((l) => /^\s+#\s+ID\s+STATE\s+AGE\s+IDLE FOR\s+IN USE FOR$/.test(l));
    expect(header).toBeGreaterThan(0);
    const rows = lines.slice(header + 1).filter((l) => l.trim() !== '');
    const expected = manager.getPoolStats().connections;
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const cells = row.trim().split(/\s{2,}/);
      expect(cells[0]).toBe(String(i + 1));
      expect(cells[1]).toBe(expected[i].id);
      expect(cells[2]).toBe(expected[i].inUse ? 'in use' : 'idle');
      expect(cells[3]).toMatch(/^\d+(\.\d)? (ms|s)$|^\d+m \d{2}s$/);
    });
    const heldRow = rows.find((r) => r.includes(held.id)) as string;
    expect(heldRow).toMatch(/in use\s+\S+ \S+\s+-\s+\S+ \S+$/);
  });

  test('stats --json is the endpoint\'s JSON, for scripts', async () => {
    const run = await kcm(['--url', endpoint, '--token', TOKEN, 'stats', '--json']);
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout) as ManagerPoolStats;
    expect(stats).toMatchObject({ min: 3, max: 5, total: 3, inUse: 1 });
    expect(stats.connections.map((c) => c.id)).toEqual(manager.getPoolStats().connections.map((c) => c.id));
  });

  test('stats --watch refreshes, and --count ends it', async () => {
    const env = { KCM_ADMIN_URL: endpoint, KCM_ADMIN_TOKEN: TOKEN };
    const [run, json] = await Promise.all([
      kcm(['stats', '--watch', '--interval', '250', '--count', '2'], env),
      kcm(['stats', '--watch', '--json', '--interval', '250', '--count', '2'], env),
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout.match(/^primary$/gm)).toHaveLength(2);
    expect(run.stdout).toContain('Ctrl-C to stop');
    const snapshots = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as ManagerPoolStats);
    expect(snapshots).toHaveLength(2);
    for (const s of snapshots) expect(s.total).toBe(3);
  });

  test('reset, expire and renew run the triggers and say what they did', async () => {
    const before = manager.getPoolStats().connections.map((c) => c.id);
    const env = { KCM_ADMIN_URL: endpoint, KCM_ADMIN_TOKEN: TOKEN };
    const reset = await kcm(['reset'], env);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toMatch(/^Reset: 3 connection\(s\) evicted/);
    expect(reset.stdout).toMatch(/Pool now: \d+ open \(1 in use, \d+ idle\)/);
    const idleAfter = manager.getPoolStats().connections.filter((c) => !c.inUse).map((c) => c.id);
    for (const id of idleAfter) expect(before).not.toContain(id);
    // The checked-out connection is retired on release, and replaced.
    await manager.releaseConnection(held);
    await until(() => !manager.getPoolStats().connections.some((c) => c.id === held.id), { description: 'the held connection closes on release' });
    held = await manager.getConnection();

    const expire = await kcm(['expire', '--json'], env);
    expect(expire.code).toBe(0);
    expect(JSON.parse(expire.stdout)).toMatchObject({ ok: true, action: 'expire', retired: 0 });

    const renew = await kcm(['renew'], env);
    expect(renew.code).toBe(0);
    expect(renew.stdout).toMatch(/^Renewal: 3 connection\(s\) being replaced/);
  });

  test('metrics prints the Prometheus text', async () => {
    const run = await kcm(['metrics', '--url', endpoint]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('# TYPE kcm_pool_connections gauge');
    expect(run.stdout).toContain('kcm_pool_max{pool="primary"} 5');
  });

  test('a missing token exits 3 (401), a wrong one exits 3 (403), with a clear message', async () => {
    const [none, wrong] = await Promise.all([
      kcm(['stats', '--url', endpoint]),
      kcm(['reset', '--url', endpoint, '--token', 'wrong-token-0123456789']),
    ]);
    expect(none.code).toBe(3);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^kcm: Authentication required \(401\).*KCM_ADMIN_TOKEN/);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/^kcm: Access refused \(403\)/);
  });

  test('a refused connection exits 4; no answer within --timeout exits 5', async () => {
    const port = await closedPort();
    const refused = await kcm(['stats', '--url', `http://127.0.0.1:${port}`, '--token', TOKEN]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^kcm: Connection refused by 127\.0\.0\.1:\d+/);

    // A server that accepts connections and never answers.
    const sockets = new Set<net.Socket>();
    const silentServer = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    try {
      const silentPort = (silentServer.address() as net.AddressInfo).port;
      const timedOut = await kcm(['stats', '--url', `http://127.0.0.1:${silentPort}`, '--timeout', '300']);
      expect(timedOut.code).toBe(5);
      expect(timedOut.stderr).toMatch(/^kcm: No answer from http:\/\/127\.0\.0\.1:\d+ within 300 ms/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silentServer.close(resolve));
    }
  });

  test('bad usage exits 2', async () => {
    const [noUrl, unknown, badTimeout, help] = await Promise.all([
      kcm(['stats']),
      kcm(['frobnicate', '--url', endpoint]),
      kcm(['stats', '--url', endpoint, '--timeout', 'soon']),
      kcm(['--help']),
    ]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/--url.*KCM_ADMIN_URL/);
    expect(unknown.code).toBe(2);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain('--timeout must be a whole number');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
  });
});
