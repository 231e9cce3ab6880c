/**
 * The live dashboard served at `GET /` of the admin endpoint: one self-contained HTML page (inline
 * CSS and JavaScript, no libraries, no build step).
 *
 * The page itself holds no data, so it is served without a token; it asks for the token once
 * (kept in sessionStorage, so it is gone when the tab closes) and sends it with every call to
 * `/stats`, `/reset`, `/expire` and `/renew`. It polls `/stats` once a second (`?interval=ms`
 * changes that, never below 250 ms; it pauses while the tab is hidden), keeps five minutes of
 * in-use / waiting history for the chart, and draws the connection table with one `innerHTML`
 * assignment per poll, which stays quick at a thousand connections.
 *
 * The script and style are allowed by hash in the page's Content-Security-Policy, so nothing else
 * can run or load in it.
 */
import { createHash } from 'node:crypto';

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
#message { margin:0 0 12px; color:var(--green); }
#message:empty { display:none; }
#message.error { color:var(--red); }
.mono { font-family:ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12.5px; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var POLL_MS = Math.max(250, Number(params.get('interval')) || 1000);
  var HISTORY_MS = 5 * 60 * 1000;
  var TOKEN_KEY = 'kcm.adminToken';
  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var selected = 'primary';
  var filter = 'all';
  var history = {};
  var last = null;
  var timer = null;
  var busy = false;
  var $ = function (id) { return document.getElementById(id); };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function dur(ms) {
    if (ms == null) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
    var h = Math.floor(m / 60);
    return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  }
  function setStatus(text, isError) {
    var el = $('status');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }
  function setMessage(text, isError) {
    var el = $('message');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }

  function api(method, path) {
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, { method: method, headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        var denied = new Error(res.status === 401 ? 'This endpoint needs its admin token.' : 'That token was refused.');
        denied.auth = res.status;
        throw denied;
      }
      return res.json().then(function (body) {
        if (!res.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + res.status));
        return body;
      });
    });
  }

  function showLogin(message) {
    $('login').classList.remove('hidden');
    $('app').classList.add('hidden');
    $('login-msg').textContent = message || '';
    $('token').focus();
  }
  function showApp() {
    $('login').classList.add('hidden');
    $('app').classList.remove('hidden');
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }
  function poll() {
    if (document.hidden) { schedule(POLL_MS); return; }
    api('GET', '/stats').then(function (stats) {
      showApp();
      last = stats;
      record(stats);
      render();
      setStatus('live · updated ' + new Date().toLocaleTimeString(), false);
      schedule(POLL_MS);
    }, function (err) {
      if (err.auth) {
        if (err.auth === 403) { token = ''; sessionStorage.removeItem(TOKEN_KEY); }
        showLogin(err.message);
        return; // polling resumes once a token is entered
      }
      setStatus('cannot reach the service: ' + err.message, true);
      schedule(Math.max(POLL_MS, 2000));
    });
  }

  function pools(stats) {
    var out = [['primary', stats]];
    var r = stats.replicas || {};
    Object.keys(r).forEach(function (name) { out.push([name, r[name]]); });
    return out;
  }
  function record(stats) {
    var now = Date.now();
    pools(stats).forEach(function (p) {
      var h = history[p[0]] || (history[p[0]] = []);
      h.push({ t: now, inUse: p[1].inUse, waiting: p[1].waiting, total: p[1].total });
      while (h.length && h[0].t < now - HISTORY_MS) h.shift();
    });
  }

  function render() {
    if (!last) return;
    var list = pools(last);
    if (!list.some(function (p) { return p[0] === selected; })) selected = 'primary';
    var current = list.filter(function (p) { return p[0] === selected; })[0][1];
    renderTabs(list);
    renderCards(current);
    renderChart(history[selected] || [], current.max);
    renderReplicas(last.replicas);
    renderConnections(current);
  }

  function renderTabs(list) {
    var tabs = $('tabs');
    if (list.length < 2) { tabs.classList.add('hidden'); return; }
    tabs.classList.remove('hidden');
    tabs.innerHTML = list.map(function (p) {
      return '<button data-pool="' + esc(p[0]) + '" class="' + (p[0] === selected ? 'active' : '') + '">' + esc(p[0]) + '</button>';
    }).join('');
  }

  function card(label, value, cls) {
    return '<div class="card"><div class="label">' + esc(label) + '</div><div class="value ' + (cls || '') + '">' + esc(value) + '</div></div>';
  }
  function renderCards(s) {
    var c = s.counters;
    var avg = s.wait.count ? s.wait.totalMs / s.wait.count : null;
    $('cards').innerHTML = [
      card('total / max', s.total + ' / ' + s.max, s.total + s.pending >= s.max ? 'warn' : ''),
      card('in use', s.inUse),
      card('idle', s.idle),
      card('pending', s.pending),
      card('waiting', s.waiting, s.waiting > 0 ? 'warn' : ''),
      card('min', s.min),
      card('acquired', c.acquired),
      card('timed out', c.timedOut, c.timedOut > 0 ? 'bad' : ''),
      card('waits', s.wait.count),
      card('avg wait', dur(avg)),
      card('max wait', dur(s.wait.count ? s.wait.maxMs : null)),
      card('created', c.created),
      card('destroyed', c.destroyed),
    ].join('');
  }

  function niceCeil(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function renderChart(samples, max) {
    var svg = $('chart');
    var W = svg.clientWidth || 800, H = 160, L = 36, R = 8, T = 8, B = 20;
    var now = Date.now();
    // The window grows with the history kept, from 10 s up to 5 minutes.
    var span = samples.length ? Math.min(HISTORY_MS, Math.max(10000, now - samples[0].t)) : HISTORY_MS;
    var from = now - span;
    var top = Math.max(1, max);
    samples.forEach(function (p) { top = Math.max(top, p.inUse, p.waiting, p.total); });
    top = niceCeil(top * 1.05);
    var x = function (t) { return L + (W - L - R) * (t - from) / span; };
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    var line = function (key, color, dash) {
      if (!samples.length) return '';
      var pts = samples.map(function (p) { return x(p.t).toFixed(1) + ',' + y(p[key]).toFixed(1); }).join(' ');
      return '<polyline fill="none" stroke="' + color + '" stroke-width="2"' + (dash ? ' stroke-dasharray="4 3"' : '') + ' points="' + pts + '"/>';
    };
    var grid = '';
    [0, 0.5, 1].forEach(function (f) {
      var v = Math.round(top * f);
      grid += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#e6e9ed"/>' +
        '<text x="' + (L - 6) + '" y="' + (y(v) + 4) + '" text-anchor="end" font-size="11" fill="#6a7380">' + v + '</text>';
    });
    var step = [5000, 10000, 15000, 30000, 60000].filter(function (st) { return span / st <= 6; })[0] || 60000;
    for (var ago = 0; ago <= span; ago += step) {
      var label = ago === 0 ? 'now' : '-' + (ago >= 60000 ? ago / 60000 + ' min' : ago / 1000 + ' s');
      grid += '<text x="' + x(now - ago) + '" y="' + (H - 4) + '" text-anchor="' + (ago === 0 ? 'end' : 'middle') + '" font-size="11" fill="#6a7380">' + label + '</text>';
    }
    $('chart-title').textContent = 'Last ' + (span >= 60000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s');
    var maxLine = '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(max) + '" y2="' + y(max) + '" stroke="#c8362d" stroke-dasharray="2 4"/>';
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.innerHTML = grid + maxLine + line('total', '#9aa3ad', true) + line('waiting', '#e07b12') + line('inUse', '#2f6fde');
  }

  function renderReplicas(replicas) {
    var names = Object.keys(replicas || {});
    $('replicas-panel').classList.toggle('hidden', names.length === 0);
    if (!names.length) return;
    $('replicas').innerHTML = names.map(function (name) {
      var r = replicas[name];
      return '<tr><td>' + esc(name) + '</td><td><span class="badge ' + (r.healthy ? 'ok">healthy' : 'down">out of rotation') + '</span></td>' +
        '<td class="num">' + (r.lagMs == null ? '–' : dur(r.lagMs)) + '</td><td class="num">' + r.total + ' / ' + r.max + '</td>' +
        '<td class="num">' + r.inUse + '</td><td class="num">' + r.waiting + '</td><td class="num">' + r.healthChanges + '</td>' +
        '<td>' + esc(r.unhealthyReason || '') + '</td></tr>';
    }).join('');
  }

  // How long ago, by the server clock, c was last checked out or returned.
  function sinceLastUse(c) {
    // createdAt + ageMs is the server's "now" when it took the snapshot.
    return Math.max(0, Date.parse(c.createdAt) + c.ageMs - Date.parse(c.lastUsed));
  }
  function renderConnections(s) {
    var rows = [];
    var shown = 0;
    var conns = s.connections;
    for (var i = 0; i < conns.length; i++) {
      var c = conns[i];
      if (filter === 'inUse' && !c.inUse) continue;
      if (filter === 'idle' && c.inUse) continue;
      shown++;
      rows.push('<tr data-id="' + esc(c.id) + '" data-state="' + (c.inUse ? 'inUse' : 'idle') + '"><td class="num">' + (i + 1) +
        '</td><td class="mono">' + esc(c.id) + '</td><td><span class="badge ' + (c.inUse ? 'use">in use' : 'idle">idle') +
        '</span></td><td class="num">' + dur(c.ageMs) + '</td><td class="num">' + (c.inUse ? '–' : dur(c.idleMs)) +
        '</td><td class="num">' + (c.inUse ? dur(sinceLastUse(c)) : '–') + '</td></tr>');
    }
    $('rows').innerHTML = rows.join('');
    $('conn-count').textContent = shown + ' of ' + conns.length + ' connection' + (conns.length === 1 ? '' : 's') + ' (' + s.inUse + ' in use, ' + s.idle + ' idle)';
  }

  function act(name, label) {
    if (busy) return;
    if (!confirm(label + ' the pool now?')) return;
    busy = true;
    document.querySelectorAll('[data-action]').forEach(function (b) { b.disabled = true; });
    setMessage(label + '…', false);
    api('POST', '/' + name).then(function (body) {
      var parts = [];
      ['evicted', 'retired', 'renewed'].forEach(function (k) { if (k in body) parts.push(body[k] + ' connection(s) ' + k); });
      setMessage(label + ' done: ' + (parts.join(', ') || 'ok'), false);
    }, function (err) {
      if (err.auth) { showLogin(err.message); return; }
      setMessage(label + ' failed: ' + err.message, true);
    }).then(function () {
      busy = false;
      document.querySelectorAll('[data-action]').forEach(function (b) { b.disabled = false; });
      schedule(0);
    });
  }

  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    schedule(0);
  });
  $('logout').addEventListener('click', function () {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    showLogin('');
  });
  $('tabs').addEventListener('click', function (e) {
    var pool = e.target && e.target.getAttribute && e.target.getAttribute('data-pool');
    if (pool) { selected = pool; render(); }
  });
  $('filter').addEventListener('change', function (e) { filter = e.target.value; render(); });
  document.querySelectorAll('[data-action]').forEach(function (b) {
    b.addEventListener('click', function () { act(b.getAttribute('data-action'), b.getAttribute('data-label')); });
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) schedule(0); });
  window.addEventListener('resize', function () { render(); });
  poll();
})();
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
    <div id="conn-wrap"><table id="connections"><thead><tr><th class="num">#</th><th>id</th><th>state</th><th class="num">age</th><th class="num">idle for</th><th class="num">in use for</th></tr></thead>
    <tbody id="rows"></tbody></table></div>
  </div>
</main>
`;

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The dashboard page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Connection pool · knex-connection-manager</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * The page's Content-Security-Policy: only its own inline script and style (by hash) run, it may
 * only call back to the endpoint it came from, and no other site may frame it.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${cspHash(SCRIPT)}`,
  // The legend's colour swatches use style attributes.
  `style-src ${cspHash(STYLE)} 'unsafe-hashes' ${cspHash('background:#2f6fde')} ${cspHash('background:#e07b12')} ${cspHash('background:#9aa3ad')} ${cspHash('background:#c8362d')}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');
