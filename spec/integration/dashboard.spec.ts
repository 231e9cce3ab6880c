/**
 * The dashboard in a real browser (headless Chromium through playwright-core; spec/helpers/browser.ts
 * says which binary): it asks for the token, lists the connections in creation order, a click on
 * Reset brings new connection ids, it keeps up with a thousand connections, and under load (200
 * connections, callers waiting) it draws the picture saved as the screenshot
 * (KCM_DASHBOARD_SCREENSHOT names the file; by default .tmp/dashboard.png — docs/dashboard.png is
 * made this way).
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import winston from 'winston';
import { closeConnectionInstance, getConnectionInstance, type ConnectionManager, type ManagerPoolStats, type PooledConnection } from '../../lib';
import { launchChromium } from '../helpers/browser';
import { testConfig, testDatabaseUrl } from '../helpers/database';
import { until } from '../helpers/poll';
import { createDatabase, databaseUrl, dropDatabase } from '../helpers/second-database';

const url = testDatabaseUrl();
const silent = winston.createLogger({ silent: true });
const TOKEN = 'dashboard-spec-token-0123456789abcdef';
const SCREENSHOT = path.resolve(process.env.KCM_DASHBOARD_SCREENSHOT ?? path.join(__dirname, '../../.tmp/dashboard.png'));

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 120_000); // the first run on a machine extracts the npm Chromium

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  await closeConnectionInstance();
});

function start(appName: string, pool: { min: number; max: number }): ConnectionManager {
  return getConnectionInstance({
    connection: { connectionString: url, application_name: appName },
    pool: { ...pool, acquireTimeoutMs: 60_000 },
    logger: silent,
    admin: { port: 0, token: TOKEN },
  });
}

/** The connection ids in the table, top to bottom. */
function rowIds(page: Page): Promise<string[]> {
  return page.$$eval('#rows tr', (rows) => rows.map((r) => r.getAttribute('data-id') ?? ''));
}

function seq(id: string): number {
  return Number(/^conn_(\d+)_\d+$/.exec(id)?.[1] ?? NaN);
}

async function openDashboard(page: Page, endpoint: string): Promise<void> {
  await page.goto(`${endpoint}/?interval=250`);
  await page.waitForSelector('#login:not(.hidden)', { timeout: 10_000 });
  await page.fill('#token', TOKEN);
  await page.click('#login-submit');
  await page.waitForSelector('#rows tr', { timeout: 10_000 });
}

test('asks for the token, lists the connections in creation order, and Reset brings new ones', async () => {
  const manager = start('kcm-spec-dashboard', { min: 3, max: 6 });
  await manager.ready();
  const endpoint = (await manager.adminReady()).url;
  const held = await manager.getConnection();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // The 401 and 403 answers the page asks for are logged by the browser as failed loads.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 40[13] /.test(m.text())) pageErrors.push(m.text());
  });
  try {
    // A wrong token is refused and asked for again.
    await page.goto(`${endpoint}/?interval=250`);
    await page.waitForSelector('#login:not(.hidden)', { timeout: 10_000 });
    await page.fill('#token', 'not-the-right-token-000000');
    await page.click('#login-submit');
    await until(async () => (await page.textContent('#login-msg')) === 'That token was refused.', { timeoutMs: 10_000, description: 'the wrong token is refused' });

    await page.fill('#token', TOKEN);
    await page.click('#login-submit');
    const expected = manager.getPoolStats().connections.map((c) => c.id);
    await until(async () => JSON.stringify(await rowIds(page)) === JSON.stringify(expected), { timeoutMs: 10_000, description: 'the rows show the pool' });
    expect(await page.getAttribute(`#rows tr[data-id="${held.id}"]`, 'data-state')).toBe('inUse');
    expect(await page.textContent('#conn-count')).toContain('3 of 3 connections (1 in use, 2 idle)');
    expect(await page.isVisible('#login')).toBe(false);
    // Without named pools there is no pool list: the page is as it always was.
    expect(await page.isVisible('#pools-panel')).toBe(false);

    // The token lives in this tab's session: a reload does not ask again.
    await page.reload();
    await page.waitForSelector('#rows tr', { timeout: 10_000 });
    expect(await page.isVisible('#login')).toBe(false);

    // Reset (confirmed): the idle connections are replaced at once, the held one on release.
    const highest = Math.max(...expected.map(seq));
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#btn-reset');
    await until(async () => /Reset done: 3 connection\(s\) evicted/.test((await page.textContent('#message')) ?? ''), { timeoutMs: 10_000, description: 'the reset is reported' });
    await until(async () => (await rowIds(page)).filter((id) => seq(id) > highest).length === 2, { timeoutMs: 10_000, description: 'new connection ids appear' });
    await manager.releaseConnection(held);
    await until(async () => {
      const ids = await rowIds(page);
      return ids.length === 3 && ids.every((id) => seq(id) > highest);
    }, { timeoutMs: 10_000, description: 'every connection is new once the held one is released' });
    expect(pageErrors).toEqual([]);
  } finally {
    if (held.inUse) await manager.releaseConnection(held);
    await page.close();
  }
});

test('with named pools: lists them and the budget, shows the selected one, and acts on it', async () => {
  const DB = 'kcm_spec_dashboard_analytics';
  await createDatabase(DB);
  const manager = getConnectionInstance(
    testConfig('kcm-spec-dashboard-pools', { min: 1, max: 4 }, {
      pools: { analytics: { connection: databaseUrl(DB), pool: { min: 2, max: 3 } } },
      budget: { maxConnections: 10 },
      admin: { port: 0, token: TOKEN },
    }),
  );
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 401 /.test(m.text())) pageErrors.push(m.text());
  });
  const analyticsIds = () => manager.pool('analytics').getPoolStats().connections.map((c) => c.id);
  const primaryIds = () => manager.getPoolStats().connections.map((c) => c.id);
  try {
    await manager.ready();
    await openDashboard(page, (await manager.adminReady()).url);
    await page.waitForSelector('#pools-panel:not(.hidden)', { timeout: 10_000 });
    expect(await page.$$eval('#pools tr', (rows) => rows.map((r) => r.getAttribute('data-group')))).toEqual(['primary', 'analytics']);
    const cells = async (name: string) => page.$$eval(`#pools tr[data-group="${name}"] td`, (tds) => tds.map((td) => td.textContent));
    expect(await cells('analytics')).toEqual(['analytics', '2 / 3', '0', '2', '0', '0', 'closed']);
    expect(await page.getAttribute('#pools tr[data-group="primary"]', 'class')).toBe('active');
    expect(await page.textContent('#budget')).toMatch(/^budget: 3 \/ 10 connections, 0 reclaimed, no pool waiting · 2 pools open, 0 made, 0 closed$/);
    // The default pool is shown first.
    expect(await rowIds(page)).toEqual(primaryIds());

    // Selecting a pool shows its connections and figures.
    await page.click('#pools tr[data-group="analytics"]');
    await until(async () => JSON.stringify(await rowIds(page)) === JSON.stringify(analyticsIds()), { timeoutMs: 10_000, description: 'the rows show analytics' });
    expect(await page.getAttribute('#pools tr[data-group="analytics"]', 'class')).toBe('active');
    expect((await page.textContent('#cards'))?.replace(/\s+/g, '')).toContain('total/max2/3');

    // The buttons act on the selected pool only.
    const before = { analytics: analyticsIds(), primary: primaryIds() };
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await page.click('#btn-reset');
    await until(async () => /Reset done on "analytics": 2 connection\(s\) evicted/.test((await page.textContent('#message')) ?? ''), { timeoutMs: 10_000, description: 'the reset is reported' });
    expect(asked).toBe('Reset the pool "analytics" now?');
    expect(primaryIds()).toEqual(before.primary);
    for (const id of analyticsIds()) expect(before.analytics).not.toContain(id);
    await until(async () => JSON.stringify(await rowIds(page)) === JSON.stringify(analyticsIds()), { timeoutMs: 10_000, description: 'the new analytics connections are shown' });

    // Back to the default pool.
    await page.click('#pools tr[data-group="primary"] td');
    await until(async () => JSON.stringify(await rowIds(page)) === JSON.stringify(primaryIds()), { timeoutMs: 10_000, description: 'the rows show primary again' });
    expect(pageErrors).toEqual([]);
  } finally {
    await page.close();
    await closeConnectionInstance();
    await dropDatabase(DB);
  }
});

test('keeps up with a thousand connections', async () => {
  const manager = start('kcm-spec-dashboard-1000', { min: 1, max: 2 });
  await manager.ready();
  const endpoint = (await manager.adminReady()).url;
  const page = await browser.newPage();
  try {
    // The page is served by the endpoint; its /stats calls answer with a large synthetic pool.
    let round = 0;
    await page.route('**/stats', async (route) => {
      if (route.request().headers().authorization !== `Bearer ${TOKEN}`) {
        await route.fulfill({ status: 401, contentType: 'application/json', body: '{"ok":false}' });
        return;
      }
      round++;
      const now = Date.now();
      const connections = Array.from({ length: 1000 }, (_, i) => ({
        id: `conn_${i + 1}_${now}000000`,
        createdAt: new Date(now - 60_000).toISOString(),
        lastUsed: new Date(now).toISOString(),
        inUse: (i + round) % 3 === 0,
        ageMs: 60_000 + i,
        idleMs: i,
      }));
      const inUse = connections.filter((c) => c.inUse).length;
      const stats: Partial<ManagerPoolStats> = {
        min: 10, max: 1000, total: 1000, idle: 1000 - inUse, inUse, pending: 0, waiting: 25 + round,
        counters: { created: 1000, destroyed: 0, acquired: 5000, released: 4700, timedOut: 0, aborted: 0, createErrors: 0, validationFailures: 0, expired: 0, idleClosed: 0, renewed: 0, leaksDetected: 0, transactionRetries: 0, reclaimed: 0 },
        wait: { count: 10, totalMs: 100, maxMs: 40 },
      };
      await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...stats, connections }) });
    });
    await page.goto(`${endpoint}/?interval=250`);
    await page.fill('#token', TOKEN);
    await page.click('#login-submit');
    await until(async () => (await rowIds(page)).length === 1000, { timeoutMs: 15_000, description: '1000 rows' });
    const ids = await rowIds(page);
    expect(ids[0]).toMatch(/^conn_1_/);
    expect(ids[999]).toMatch(/^conn_1000_/);
    // It keeps polling and redrawing: the states move on with every round.
    const seen = round;
    await until(() => round >= seen + 2, { timeoutMs: 15_000, description: 'two more polls' });
    await until(async () => (await page.textContent('#conn-count'))?.startsWith('1000 of 1000') === true, { timeoutMs: 5_000 });
    await page.selectOption('#filter', 'inUse');
    const inUseRows = await page.$$eval('#rows tr', (rows) => rows.map((r) => r.getAttribute('data-state')));
    expect(inUseRows.length).toBeGreaterThan(300);
    expect(inUseRows.length).toBeLessThan(400);
    expect(new Set(inUseRows)).toEqual(new Set(['inUse']));
  } finally {
    await page.close();
  }
});

test('under load: 200 connections, callers waiting; the screenshot', async () => {
  const MAX = 200;
  const WORKERS = 260;
  const manager = start('kcm-spec-dashboard-load', { min: 20, max: MAX });
  await manager.ready();
  const endpoint = (await manager.adminReady()).url;
  const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
  let stop = false;
  const deadline = Date.now() + 100_000; // a bound on the load, should the test itself hang
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  // Workers that check a connection out, hold it for a while (as a request would), and give it back.
  const worker = async (n: number): Promise<void> => {
    await pause((n % 40) * 10); // a short ramp rather than one burst
    while (!stop && Date.now() < deadline) {
      const conn: PooledConnection = await manager.getConnection();
      try {
        await pause(200 + ((n * 37) % 500));
      } finally {
        await manager.releaseConnection(conn);
      }
      await pause(20 + ((n * 13) % 60));
    }
  };
  const workers: Array<Promise<void>> = [];
  const chartPoints = async () => ((await page.getAttribute('#chart polyline:last-of-type', 'points')) ?? '').split(' ').filter(Boolean).length;
  try {
    await openDashboard(page, endpoint);
    // The load comes in three steps, each once the chart has drawn a few more points: a pool with
    // room, a pool near its limit, then a full pool with callers waiting.
    for (const [upTo, points] of [[80, 8], [160, 20], [WORKERS, 32]] as const) {
      while (workers.length < upTo) workers.push(worker(workers.length));
      await until(async () => (await chartPoints()) >= points, { timeoutMs: 30_000, description: `${points} chart points` });
    }
    await until(() => {
      const s = manager.getPoolStats();
      return s.total === MAX && s.waiting > 0;
    }, { timeoutMs: 30_000, description: 'the pool is full and callers wait' });
    await until(async () => (await chartPoints()) >= 48, { timeoutMs: 30_000, description: 'chart history at full load' });
    await until(async () => {
      const cards = (await page.textContent('#cards')) ?? '';
      const waiting = /waiting(\d+)/.exec(cards.replace(/\s+/g, ''));
      return (await rowIds(page)).length === MAX && waiting !== null && Number(waiting[1]) > 0;
    }, { timeoutMs: 30_000, description: 'a full table with waiters shown' });
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: false });
    const ids = await rowIds(page);
    expect(ids).toHaveLength(MAX);
    const order = ids.map(seq);
    expect(order).toEqual([...order].sort((a, b) => a - b)); // creation order
  } finally {
    stop = true;
    await Promise.all(workers);
    await page.close();
  }
}, 150_000);
