/**
 * `kcm` against a live endpoint whose manager has a named pool `analytics` (on a second database)
 * and a budget: the line per pool and the budget line, `stats --pool`, the triggers with `--pool`
 * and `--all-pools` (exclusive: exit 2), and an unknown pool (exit 1, nothing made).
 */
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type ManagerPoolStats } from '../../lib';
import { testConfig } from '../helpers/database';
import { kcm } from '../helpers/kcm';
import { createDatabase, databaseUrl, dropDatabase } from '../helpers/second-database';

const TOKEN = 'named-pools-cli-spec-token-01234';
const DB = 'kcm_spec_cli_analytics';

const ids = (stats: ManagerPoolStats): string[] => stats.connections.map((c) => c.id);

describe('kcm with named pools', () => {
  let manager: ConnectionManager;
  let env: Record<string, string>;
  const analytics = (): ManagerPoolStats => manager.pool('analytics').getPoolStats();

  beforeAll(async () => {
    await createDatabase(DB);
    manager = getConnectionInstance(
      testConfig('kcm-spec-np-cli', { min: 2, max: 4 }, {
        pools: { analytics: { connection: databaseUrl(DB), pool: { min: 1, max: 3 } } },
        poolFactory: (name) => (name.startsWith('tenant-') ? { connection: databaseUrl(DB) } : undefined),
        budget: { maxConnections: 10 },
        admin: { port: 0, token: TOKEN },
      }),
    );
    await manager.ready();
    env = { KCM_ADMIN_URL: (await manager.adminReady()).url, KCM_ADMIN_TOKEN: TOKEN };
  });

  afterAll(async () => {
    await closeConnectionInstance();
    await dropDatabase(DB);
  });

  test('stats starts with a line per pool and the budget, then the default pool as before', async () => {
    const run = await kcm(['stats'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('pools: 2 open, 0 made by poolFactory, 0 closed');
    expect(lines[1].trim().split(/\s+/)).toEqual(['POOL', 'OPEN', 'MAX', 'IN', 'USE', 'IDLE', 'PENDING', 'WAITING', 'CIRCUIT']);
    expect(lines[2].trim().split(/\s+/)).toEqual(['primary', '2', '4', '0', '2', '0', '0', 'closed']);
    expect(lines[3].trim().split(/\s+/)).toEqual(['analytics', '1', '3', '0', '1', '0', '0', 'closed']);
    expect(lines[4]).toMatch(/^budget: 3\/10 connections \(open, opening or closing\), 0 reclaimed, no pool waiting$/);
    expect(lines[5]).toBe('');
    expect(lines[6]).toBe('primary');
    for (const id of ids(manager.getPoolStats())) expect(run.stdout).toContain(id);
    for (const id of ids(analytics())) expect(run.stdout).not.toContain(id);
  });

  test('stats --pool shows that pool alone, titled by its name; --json is its JSON', async () => {
    const [run, json] = await Promise.all([kcm(['stats', '--pool', 'analytics'], env), kcm(['stats', '--pool', 'analytics', '--json'], env)]);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('analytics');
    expect(lines[1]).toMatch(/open 1\/3 \(min 1\) +in use 0 +idle 1/);
    expect(run.stdout).toContain(ids(analytics())[0]);
    expect(run.stdout).not.toContain('budget:');
    expect(json.code).toBe(0);
    expect(ids(JSON.parse(json.stdout) as ManagerPoolStats)).toEqual(ids(analytics()));
  });

  test('reset --pool runs on that pool only; --all-pools on every open pool', async () => {
    const primaryBefore = ids(manager.getPoolStats());
    const analyticsBefore = ids(analytics());
    const one = await kcm(['reset', '--pool', 'analytics'], env);
    expect(one.stderr).toBe('');
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^Reset: 1 connection\(s\) evicted .*\nPool analytics now: 1 open \(0 in use, 1 idle\)/);
    expect(ids(manager.getPoolStats())).toEqual(primaryBefore);
    expect(ids(analytics())).not.toContain(analyticsBefore[0]);

    const all = await kcm(['renew', '--all-pools'], env);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Renewal on every pool \(2\): 3 connection\(s\) being replaced \(checked-out ones when released\) in /);
    expect(lines[1].trim().split(/\s+/)).toEqual(['POOL', 'RENEWED', 'OPEN', 'IN', 'USE', 'IDLE', 'PENDING', 'WAITING']);
    expect(lines[2].trim().split(/\s+/).slice(0, 2)).toEqual(['primary', '2']);
    expect(lines[3].trim().split(/\s+/).slice(0, 2)).toEqual(['analytics', '1']);
    expect(analytics().counters.renewed).toBe(1);
    expect(manager.getPoolStats().counters.renewed).toBe(2);
  });

  test('an unknown pool exits 1 and makes nothing; --pool with --all-pools, or an empty name, exits 2', async () => {
    const [unknown, factoryOnly, both, empty] = await Promise.all([
      kcm(['stats', '--pool', 'nope'], env),
      kcm(['expire', '--pool', 'tenant-q'], env),
      kcm(['reset', '--pool', 'analytics', '--all-pools'], env),
      kcm(['reset', '--pool', ''], env),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^kcm: GET \/stats failed with HTTP 404: No pool named "nope" is open/);
    expect(factoryOnly.code).toBe(1);
    expect(factoryOnly.stderr).toContain('No pool named "tenant-q" is open');
    expect(manager.getPoolStats().totals?.made).toBe(0);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be used with/);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('--pool needs the name of a pool');
  });

  test('--help names the pool options', async () => {
    const [top, reset] = await Promise.all([kcm(['--help']), kcm(['reset', '--help'])]);
    expect(top.stdout).toContain('kcm stats --pool NAME');
    expect(reset.stdout).toMatch(/--pool <name>/);
    expect(reset.stdout).toMatch(/--all-pools/);
  });
});
