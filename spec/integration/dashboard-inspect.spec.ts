/**
 * The dashboard's server columns in a real browser (headless Chromium, spec/helpers/browser.ts):
 * each connection's pid, server state and statement from /inspect, and a session idle in
 * transaction highlighted.
 */
import type { Browser } from 'playwright-core';
import { ConnectionManager, resolveOptions } from '../../lib';
import { launchChromium } from '../helpers/browser';
import { testConfig } from '../helpers/database';

const TOKEN = 'dashboard-inspect-token-0123456789abcdef';
let browser: Browser;
let manager: ConnectionManager | undefined;

beforeAll(async () => {
  browser = await launchChromium();
}, 120_000); // the first run on a machine extracts the npm Chromium

afterAll(async () => {
  await browser?.close();
  await manager?.close();
});

test('shows each connection\'s server state and statement, and highlights idle in transaction', async () => {
  manager = new ConnectionManager(resolveOptions(testConfig('kcm-spec-dash-inspect', { min: 2, max: 3 }, { admin: { port: 0, token: TOKEN } })));
  await manager.ready();
  const held = await manager.getConnection();
  await held.query('BEGIN');
  await held.query('SELECT 11 AS kcm_dashboard_marker');
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  try {
    await page.goto(`${(await manager.adminReady()).url}/?interval=250&inspect=2000`);
    await page.waitForSelector('#login:not(.hidden)', { timeout: 10_000 });
    await page.fill('#token', TOKEN);
    await page.click('#login-submit');
    // The row is highlighted once /inspect answered (the first read follows the first /stats).
    const row = await page.waitForSelector(`#rows tr.xact[data-id="${held.id}"]`, { timeout: 15_000 });
    const cells = await row.$$eval('td', (tds) => tds.map((td) => td.textContent ?? ''));
    expect(cells[7]).toBe('idle in transaction');
    expect(cells[10]).toBe('SELECT 11 AS kcm_dashboard_marker');
    expect(Number(cells[6])).toBe((await manager.inspect()).connections.find((c) => c.id === held.id)?.backendPid);
    // The other connection is idle on the server and not highlighted.
    const others = await page.$$eval('#rows tr:not(.xact)', (rows) => rows.map((r) => r.querySelectorAll('td')[7]?.textContent));
    expect(others).toEqual(['idle']);
    expect(pageErrors).toEqual([]);
  } finally {
    await page.close();
    await held.query('ROLLBACK');
    await manager.releaseConnection(held);
  }
});
