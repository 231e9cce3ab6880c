/**
 * The live dashboard served at `GET /` of the admin endpoint: one self-contained HTML page (inline
 * CSS and JavaScript, no libraries). The script is `render.js` (the drawing helpers) then
 * `client.js` (the rest), next to this file, read once and served as written in one inline
 * `<script>` (the build copies both into `dist/`); the style and markup are here.
 *
 * The page itself holds no data, so it is served without a token; it asks for the token once
 * (kept in sessionStorage, so it is gone when the tab closes) and sends it with every call to
 * `/stats`, `/reset`, `/expire` and `/renew` (with named pools, `?pool=` the one selected). It polls `/stats` once a second (`?interval=ms`
 * changes that, never below 250 ms; it pauses while the tab is hidden), keeps five minutes of
 * in-use / waiting history for the chart, and draws the connection table with one `innerHTML`
 * assignment per poll, which stays quick at a thousand connections.
 *
 * The script and style are allowed by hash in the page's Content-Security-Policy, so nothing else
 * can run or load in it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const STYLE = String.raw`
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d232b; --muted:#6a7380; --line:#dde1e6; --blue:#2f6fde; --orange:#e07b12; --red:#c8362d; --green:#1f8a4c; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:12px; padding:10px 20px; background:#1d232b; color:#fff; }
header h1 { font-size:16px; margin:0; font-weight:600; }
header .grow { flex:1; }
#status { font-size:12px; color:#c9d1db; }
#status.error { color:#ffb4ad; }
button { font:inherit; padding:5px 12px; border-radius:5px; border:1px solid var(--line); background:#fff; color:var(--ink); cursor:pointer; }
button:disabled { opacity:.5; cursor:default; }
header button { background:#2c343e; color:#fff; border-color:#46515e; }
header button:hover:not(:disabled) { background:#3a4451; }
main { padding:16px 20px; max-width:1400px; margin:0 auto; }
.hidden { display:none !important; }
#login { max-width:380px; margin:60px auto; background:var(--card); padding:20px; border-radius:8px; border:1px solid var(--line); }
#login h2 { margin:0 0 8px; font-size:16px; }
#login input { width:100%; padding:7px; margin:8px 0 12px; font:inherit; border:1px solid var(--line); border-radius:5px; }
#login .msg { color:var(--red); min-height:1.4em; margin:0; }
#tabs { display:flex; gap:6px; margin-bottom:12px; }
#tabs button.active { background:var(--ink); color:#fff; border-color:var(--ink); }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:10px; margin-bottom:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.card .label { color:var(--muted); font-size:12px; }
.card .value { font-size:20px; font-weight:600; font-variant-numeric:tabular-nums; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.card .value.warn { color:var(--orange); }
.card .value.bad { color:var(--red); }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; margin-bottom:14px; }
.panel h2 { font-size:13px; margin:0 0 6px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.04em; }
.legend { display:flex; gap:16px; font-size:12px; color:var(--muted); }
.legend i { display:inline-block; width:14px; height:3px; vertical-align:middle; margin-right:5px; }
#chart { width:100%; height:160px; display:block; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:3px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:12px; position:sticky; top:0; background:var(--card); }
td.num, th.num { text-align:right; }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px; }
.badge.use { background:#dde8fb; color:#1c4fa8; }
.badge.idle { background:#e6efe9; color:#1f6b3f; }
.badge.ok { background:#e6efe9; color:#1f6b3f; }
.badge.down { background:#fbe3e1; color:#9c2a22; }
#conn-wrap { max-height:560px; overflow:auto; }
.toolbar { display:flex; align-items:center; gap:10px; margin-bottom:6px; }
.toolbar h2 { margin:0; }
.toolbar .grow { flex:1; }
#pools tr { cursor:pointer; }
#pools tr:hover td { background:#f1f4f8; }
#pools tr.active td { background:#e4ecfb; font-weight:600; }
#budget { margin:0 0 6px; color:var(--muted); font-variant-numeric:tabular-nums; }
#budget.warn { color:var(--orange); }
#message { margin:0 0 12px; color:var(--green); }
#message:empty { display:none; }
#message.error { color:var(--red); }
#connections tr.xact td { background:#fff1d6; }
#connections tr.xact .srv-state { color:var(--orange); font-weight:600; }
#connections td.query { max-width:360px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.mono { font-family:ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12.5px; }
`;

const BODY = String.raw`
<header>
  <h1>knex-connection-manager</h1>
  <span id="status">connecting…</span>
  <span class="grow"></span>
  <button data-action="reset" data-label="Reset" id="btn-reset" title="Close every connection (checked-out ones on release) and refill to min">Reset</button>
  <button data-action="expire" data-label="Expire" id="btn-expire" title="Run the expiry sweep now: max lifetime and idle timeout">Expire</button>
  <button data-action="renew" data-label="Renew" id="btn-renew" title="Replace every connection without lowering capacity">Renew</button>
  <button id="logout" title="Forget the token in this tab">Sign out</button>
</header>
<section id="login" class="hidden">
  <h2>Admin token</h2>
  <form id="login-form" autocomplete="off">
    <label for="token">This endpoint needs its admin token. It is kept in this tab only.</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit" id="login-submit">Open dashboard</button>
    <p class="msg" id="login-msg"></p>
  </form>
</section>
<main id="app">
  <p id="message"></p>
  <div class="panel hidden" id="pools-panel">
    <h2>Pools</h2>
    <p id="budget"></p>
    <table><thead><tr><th>name</th><th class="num">open / max</th><th class="num">in use</th><th class="num">idle</th><th class="num">pending</th><th class="num">waiting</th><th>circuit</th></tr></thead>
    <tbody id="pools"></tbody></table>
  </div>
  <div id="tabs" class="hidden"></div>
  <div class="cards" id="cards"></div>
  <div class="panel">
    <div class="toolbar"><h2 id="chart-title">Last 5 min</h2><span class="grow"></span>
      <span class="legend"><span><i style="background:#2f6fde"></i>in use</span><span><i style="background:#e07b12"></i>waiting</span><span><i style="background:#9aa3ad"></i>open</span><span><i style="background:#c8362d"></i>max</span></span>
    </div>
    <svg id="chart" preserveAspectRatio="none" role="img" aria-label="in use and waiting over the last five minutes"></svg>
  </div>
  <div class="panel hidden" id="replicas-panel">
    <h2>Replicas</h2>
    <table><thead><tr><th>name</th><th>health</th><th class="num">lag</th><th class="num">open / max</th><th class="num">in use</th><th class="num">waiting</th><th class="num">health changes</th><th>reason</th></tr></thead>
    <tbody id="replicas"></tbody></table>
  </div>
  <div class="panel">
    <div class="toolbar"><h2>Connections</h2><span id="conn-count"></span><span class="grow"></span>
      <label>show <select id="filter"><option value="all">all</option><option value="inUse">in use</option><option value="idle">idle</option></select></label>
    </div>
    <div id="conn-wrap"><table id="connections"><thead><tr><th class="num">#</th><th>id</th><th>state</th><th class="num">age</th><th class="num">idle for</th><th class="num">in use for</th><th class="num">pid</th><th>server state</th><th>wait</th><th class="num">in xact</th><th>statement</th></tr></thead>
    <tbody id="rows"></tbody></table></div>
  </div>
</main>
`;

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page and the Content-Security-Policy header that goes with it. */
export interface DashboardPage {
  readonly html: string;
  readonly csp: string;
}

/**
 * The browser script's files, in the order they are inlined (the helpers first, since client.js
 * uses them as it starts). They live beside this module, in `lib/` and in `dist/` alike.
 */
export const DASHBOARD_SCRIPT_FILES: readonly string[] = ['render.js', 'client.js'];

/** Where the browser script's files live, in the order of {@link DASHBOARD_SCRIPT_FILES}. */
export const DASHBOARD_SCRIPT_PATHS: readonly string[] = DASHBOARD_SCRIPT_FILES.map((file) => join(__dirname, file));

/**
 * The inline script: the files' text joined by a newline, so a file whose last line is a comment
 * cannot swallow the first line of the next.
 */
export function joinDashboardScripts(texts: readonly string[]): string {
  return texts.join('\n');
}

let page: DashboardPage | undefined;

/**
 * The dashboard page, built on first use (the admin endpoint asks when it starts, so a missing
 * script fails the start instead of the first visit, and a process without the endpoint never
 * reads the file).
 * @throws Error when `render.js` or `client.js` is missing or could end the inline `<script>`
 * element early.
 */
export function dashboardPage(): DashboardPage {
  page ??= buildPage(joinDashboardScripts(DASHBOARD_SCRIPT_PATHS.map(readScript)));
  return page;
}

function readScript(path: string): string {
  let script: string;
  try {
    script = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `A file of the admin dashboard's script is missing (${(error as Error).message}); a build must copy ${DASHBOARD_SCRIPT_FILES.map((file) => `lib/admin/dashboard/${file}`).join(' and ')} to dist/admin/dashboard/ (npm run build does).`,
    );
  }
  // Inline, the text ends at the first `</script`; the hash would then allow a truncated script.
  if (/<\/script/i.test(script)) throw new Error(`${path} contains "</script", which would end the inline script early.`);
  return script;
}

function buildPage(script: string): DashboardPage {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Connection pool · knex-connection-manager</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${script}</script>
</body>
</html>
`;
  // Only its own inline script and style (by hash) run, it may only call back to the endpoint it
  // came from, and no other site may frame it.
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(script)}`,
    // The legend's colour swatches use style attributes.
    `style-src ${cspHash(STYLE)} 'unsafe-hashes' ${cspHash('background:#2f6fde')} ${cspHash('background:#e07b12')} ${cspHash('background:#9aa3ad')} ${cspHash('background:#c8362d')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  return { html, csp };
}
