import { startPostgres, type TestPostgres } from '../../scripts/test-db';
import { withAdminClient } from '../helpers/database';

const selectOne = (url: string) => withAdminClient(url, async (client) => (await client.query('SELECT 1 AS one')).rows[0].one);

describe('scripts/test-db', () => {
  let pg: TestPostgres | undefined;

  afterEach(async () => {
    await pg?.remove();
    pg = undefined;
  });

  test('the harness can stop and restart a server', async () => {
    pg = await startPostgres({ extraConf: { max_connections: '20' } });
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    expect(await selectOne(pg.url)).toBe(1);
    expect(await withAdminClient(pg.url, async (c) => (await c.query('SHOW max_connections')).rows[0].max_connections)).toBe('20');

    await pg.stop('fast');
    await pg.stop('fast'); // stopping a stopped server is a no-op
    await expect(selectOne(pg.url)).rejects.toThrow();

    await pg.start();
    expect(await selectOne(pg.url)).toBe(1);

    await pg.stop('immediate');
    await pg.start();
    await pg.start(); // starting a running server only waits for it
    expect(await selectOne(pg.url)).toBe(1);

    await pg.pgCtl(['stop', '-m', 'fast']);
    await expect(selectOne(pg.url)).rejects.toThrow();
    await pg.start();
    expect(await selectOne(pg.url)).toBe(1);

    await pg.remove();
    await pg.remove(); // removing twice is a no-op
    await expect(pg.start()).rejects.toThrow(/removed/);
  });
});
