/**
 * `kcm inspect` and `GET /inspect` against a running manager: a connection held idle in
 * transaction is shown with its statement and marked, and the JSON form carries the same rows.
 */
import { ConnectionManager, resolveOptions, type PooledConnection } from '../../lib';
import { testConfig } from '../helpers/database';
import { kcm } from '../helpers/kcm';

const TOKEN = 'inspect-spec-token-0123456789abcdef';

describe('kcm inspect', () => {
  let manager: ConnectionManager;
  let held: PooledConnection;
  let env: Record<string, string>;

  beforeAll(async () => {
    manager = new ConnectionManager(resolveOptions(testConfig('kcm-spec-inspect-cli', { min: 2, max: 3 }, { admin: { port: 0, token: TOKEN } })));
    await manager.ready();
    held = await manager.getConnection();
    await held.query('BEGIN');
    await held.query('SELECT 7 AS kcm_inspect_marker');
    env = { KCM_ADMIN_URL: (await manager.adminReady()).url, KCM_ADMIN_TOKEN: TOKEN };
  });

  afterAll(async () => {
    await held.query('ROLLBACK');
    await manager.releaseConnection(held);
    await manager.close();
  });

  it('prints each connection with its server state, marking idle in transaction', async () => {
    const run = await kcm(['inspect'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.includes(held.id));
    expect(line).toMatch(/primary\s+inUse\s+\d+\s+idle in transaction !/);
    expect(line).toContain('SELECT 7 AS kcm_inspect_marker');
    expect(run.stdout).toContain('! 1 session(s) idle in transaction');
    expect(run.stdout).toContain('0 session(s) under the manager\'s prefix that no connection owns');
  });

  it('prints the JSON answer of GET /inspect with --json', async () => {
    const run = await kcm(['inspect', '--json'], env);
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout) as { connections: Array<{ id: string; state: string | null }>; unowned: unknown[] };
    expect(body.connections.map((c) => c.id).sort()).toEqual(manager.getPoolStats().connections.map((c) => c.id).sort());
    expect(body.connections.find((c) => c.id === held.id)?.state).toBe('idle in transaction');
    expect(body.unowned).toEqual([]);
  });
});
