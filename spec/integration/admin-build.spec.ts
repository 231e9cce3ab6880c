/**
 * The built package serves the dashboard: `npm run build` compiles lib/ into dist/ and copies the
 * dashboard's browser script files beside the compiled page, the package's file list ships them,
 * and a manager loaded from dist/ answers `GET /` with the page, their text inline in one script
 * (the helpers first) and allowed by the hash in the Content-Security-Policy.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import winston from 'winston';
import { DASHBOARD_SCRIPT_FILES, joinDashboardScripts } from '../../lib/admin/dashboard/page';
import { testDatabaseUrl } from '../helpers/database';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const TOKEN = 'admin-build-spec-token-0123456789';
const silent = winston.createLogger({ silent: true });

type DistIndex = typeof import('../../lib');

let dist: DistIndex | undefined;

afterAll(async () => {
  await dist?.closeConnectionInstance();
});

test('npm run build puts the dashboard script into dist/ and the built manager serves it', async () => {
  expect(DASHBOARD_SCRIPT_FILES).toEqual(['render.js', 'client.js']);
  await run('npm', ['run', 'build'], { cwd: ROOT, timeout: 240_000 });
  const assets = DASHBOARD_SCRIPT_FILES.map((file) => readFileSync(path.join(ROOT, 'lib/admin/dashboard', file), 'utf8'));
  DASHBOARD_SCRIPT_FILES.forEach((file, i) => {
    expect(readFileSync(path.join(ROOT, 'dist/admin/dashboard', file), 'utf8')).toBe(assets[i]);
  });
  const asset = joinDashboardScripts(assets);
  expect(asset).toBe(`${assets[0]}\n${assets[1]}`);

  const packed = JSON.parse((await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60_000 })).stdout) as Array<{ files: Array<{ path: string }> }>;
  expect(packed[0].files.map((f) => f.path)).toEqual(
    expect.arrayContaining(['dist/admin/dashboard/render.js', 'dist/admin/dashboard/client.js', 'dist/admin/dashboard/page.js', 'dist/index.js']),
  );

  dist = require(path.join(ROOT, 'dist/index.js')) as DistIndex;
  const manager = dist.getConnectionInstance({
    connection: { connectionString: testDatabaseUrl(), application_name: 'kcm-spec-admin-build' },
    pool: { min: 0, max: 1 },
    logger: silent,
    admin: { port: 0, token: TOKEN },
  });
  const { url } = await manager.adminReady();
  const response = await fetch(`${url}/`);
  expect(response.status).toBe(200);
  const html = await response.text();
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
  expect(script).toBe(asset);
  const hash = createHash('sha256').update(asset, 'utf8').digest('base64');
  expect(response.headers.get('content-security-policy')).toContain(`script-src 'sha256-${hash}'`);
}, 300_000);
