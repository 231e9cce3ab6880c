// @ts-check
/**
 * The dashboard's browser script, served inline in the page (lib/admin/dashboard/page.ts) exactly as
 * written here and allowed by its hash in the Content-Security-Policy. Plain JavaScript without a
 * build step; `npm run typecheck` checks it (tsconfig.dashboard.json: DOM, strict, JSDoc types) and
 * `npm run lint` lints it with browser globals.
 *
 * It asks for the token once (kept in sessionStorage), polls /stats, keeps five minutes of history
 * per pool for the chart, and draws the tables with one innerHTML assignment each per poll.
 *
 * With named pools (`stats.pools`) it lists them with the budget; the one selected there (the
 * default pool, `primary`, at first) is what the cards, chart, tabs, replicas and connections show
 * and what the buttons act on (`?pool=NAME`). Without them the page is as it always was.
 */
/** @typedef {import('../../pool/stats').ManagerPoolStats} ManagerPoolStats */
/** @typedef {import('../../pool/stats').PoolStats} PoolStats */
/** @typedef {import('../../pool/stats').ReplicaPoolStats} ReplicaPoolStats */
/** @typedef {import('../../pool/stats').ConnectionStats} ConnectionStats */
/** @typedef {{ t: number, inUse: number, waiting: number, total: number }} Sample */
/** @typedef {Error & { auth?: number }} ApiError */
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var POLL_MS = Math.max(250, Number(params.get('interval')) || 1000);
  var HISTORY_MS = 5 * 60 * 1000;
  var TOKEN_KEY = 'kcm.adminToken';
  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  /** The named pool shown (a key of stats.pools; `primary` is the default pool). */
  var group = 'primary';
  /** The pool of that group shown: the group itself, or one of its replicas (by its label). */
  var selected = 'primary';
  var filter = 'all';
  /** @type {Record<string, Sample[]>} */
  var history = {};
  /** @type {ManagerPoolStats | null} */
  var last = null;
  /** @type {number | undefined} */
  var timer = undefined;
  var busy = false;
  /** @param {string} id @returns {HTMLElement} */
  var $ = function (id) {
    var el = document.getElementById(id);
    if (!el) throw new Error('The page has no #' + id);
    return el;
  };
  /** @param {string} id */
  var input = function (id) { return /** @type {HTMLInputElement} */ ($(id)); };
  var actionButtons = function () { return /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('[data-action]')); };

  /** @type {Record<string, string>} */
  var ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  /** @param {unknown} s */
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  }
  /** @param {number | null | undefined} ms */
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
  /** @param {string} text @param {boolean} isError */
  function setStatus(text, isError) {
    var el = $('status');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }
  /** @param {string} text @param {boolean} isError */
  function setMessage(text, isError) {
    var el = $('message');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }

  /** @param {'GET' | 'POST'} method @param {string} path @returns {Promise<any>} the JSON body of a 2xx answer */
  function api(method, path) {
    /** @type {Record<string, string>} */
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, { method: method, headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        var denied = /** @type {ApiError} */ (new Error(res.status === 401 ? 'This endpoint needs its admin token.' : 'That token was refused.'));
        denied.auth = res.status;
        throw denied;
      }
      return res.json().then(function (body) {
        if (!res.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + res.status));
        return body;
      });
    });
  }

  /** @param {string} message */
  function showLogin(message) {
    $('login').classList.remove('hidden');
    $('app').classList.add('hidden');
    $('login-msg').textContent = message || '';
    input('token').focus();
  }
  function showApp() {
    $('login').classList.add('hidden');
    $('app').classList.remove('hidden');
  }

  /** @param {number} ms */
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }
  function poll() {
    if (document.hidden) { schedule(POLL_MS); return; }
    api('GET', '/stats').then(/** @param {ManagerPoolStats} stats */ function (stats) {
      showApp();
      last = stats;
      record(stats);
      render();
      setStatus('live · updated ' + new Date().toLocaleTimeString(), false);
      schedule(POLL_MS);
    }, /** @param {ApiError} err */ function (err) {
      if (err.auth) {
        if (err.auth === 403) { token = ''; sessionStorage.removeItem(TOKEN_KEY); }
        showLogin(err.message);
        return; // polling resumes once a token is entered
      }
      setStatus('cannot reach the service: ' + err.message, true);
      schedule(Math.max(POLL_MS, 2000));
    });
  }

  /**
   * A named pool and its replicas, by the names metrics and logs give them: the default pool's
   * replicas by their own names, a named pool's as `name/replica`.
   * @param {ManagerPoolStats} stats @param {string} name @returns {Array<[string, PoolStats]>}
   */
  function pools(stats, name) {
    /** @type {Array<[string, PoolStats]>} */
    var out = [[name, stats]];
    var r = stats.replicas || {};
    Object.keys(r).forEach(function (replica) { out.push([name === 'primary' ? replica : name + '/' + replica, r[replica]]); });
    return out;
  }
  /** Every named pool by name, just `primary` without them; the default pool is the top level. @param {ManagerPoolStats} stats @returns {Array<[string, ManagerPoolStats]>} */
  function groups(stats) {
    var all = stats.pools || { primary: stats };
    return Object.keys(all).map(function (name) { return /** @type {[string, ManagerPoolStats]} */ ([name, name === 'primary' ? stats : all[name]]); });
  }
  /** @param {ManagerPoolStats} stats */
  function record(stats) {
    var now = Date.now();
    /** @type {Record<string, Sample[]>} */
    var kept = {};
    groups(stats).forEach(function (g) {
      pools(g[1], g[0]).forEach(function (p) {
        var h = kept[p[0]] = history[p[0]] || [];
        h.push({ t: now, inUse: p[1].inUse, waiting: p[1].waiting, total: p[1].total });
        while (h.length && h[0].t < now - HISTORY_MS) h.shift();
      });
    });
    // A pool that closed takes its history with it.
    history = kept;
  }

  function render() {
    if (!last) return;
    var all = groups(last);
    var shown = all.filter(function (g) { return g[0] === group; })[0];
    if (!shown) { group = 'primary'; shown = all[0]; }
    var list = pools(shown[1], group);
    if (!list.some(function (p) { return p[0] === selected; })) selected = group;
    var current = list.filter(function (p) { return p[0] === selected; })[0][1];
    renderPools(last, all);
    renderTabs(list);
    renderCards(current);
    renderChart(history[selected] || [], current.max);
    renderReplicas(shown[1].replicas);
    renderConnections(current);
  }

  /** The named pools, one row each, and the budget (hidden without named pools). @param {ManagerPoolStats} stats @param {Array<[string, ManagerPoolStats]>} all */
  function renderPools(stats, all) {
    $('pools-panel').classList.toggle('hidden', !stats.pools);
    if (!stats.pools) return;
    var b = stats.budget, t = stats.totals;
    $('budget').textContent = (b ? 'budget: ' + b.open + ' / ' + b.maxConnections + ' connections, ' + b.reclaimed + ' reclaimed, ' +
      (b.waitingPools.length ? 'waiting: ' + b.waitingPools.join(', ') : 'no pool waiting') : 'no budget') +
      (t ? ' · ' + t.pools + ' pools open, ' + t.made + ' made, ' + t.closed + ' closed' : '');
    $('budget').className = b && b.waitingPools.length ? 'warn' : '';
    $('pools').innerHTML = all.map(function (g) {
      var s = g[1], state = s.circuit ? s.circuit.state : 'closed';
      return '<tr data-group="' + esc(g[0]) + '" class="' + (g[0] === group ? 'active' : '') + '"><td>' + esc(g[0]) + '</td>' +
        '<td class="num">' + s.total + ' / ' + s.max + '</td><td class="num">' + s.inUse + '</td><td class="num">' + s.idle + '</td>' +
        '<td class="num">' + s.pending + '</td><td class="num">' + s.waiting + '</td>' +
        '<td><span class="badge ' + (state === 'closed' ? 'ok' : 'down') + '">' + esc(state) + '</span></td></tr>';
    }).join('');
  }

  /** @param {Array<[string, PoolStats]>} list */
  function renderTabs(list) {
    var tabs = $('tabs');
    if (list.length < 2) { tabs.classList.add('hidden'); return; }
    tabs.classList.remove('hidden');
    tabs.innerHTML = list.map(function (p) {
      return '<button data-pool="' + esc(p[0]) + '" class="' + (p[0] === selected ? 'active' : '') + '">' + esc(p[0]) + '</button>';
    }).join('');
  }

  /** @param {string} label @param {string | number} value @param {string} [cls] */
  function card(label, value, cls) {
    return '<div class="card"><div class="label">' + esc(label) + '</div><div class="value ' + (cls || '') + '">' + esc(value) + '</div></div>';
  }
  /** @param {PoolStats} s */
  function renderCards(s) {
    var c = s.counters;
    var avg = s.wait.count ? s.wait.totalMs / s.wait.count : null;
    $('cards').innerHTML = [
      card('total / max', s.total + ' / ' + s.max, s.total + s.pending >= s.max ? 'warn' : ''),
      card('in use', s.inUse),
      card('idle', s.idle),
      card('pending', s.pending),
      card('waiting', s.waiting, s.waiting > 0 ? 'warn' : ''),
      // Older servers send no circuit: shown as closed.
      card('circuit', s.circuit ? s.circuit.state : 'closed', s.circuit && s.circuit.state !== 'closed' ? 'bad' : ''),
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

  /** @param {number} v */
  function niceCeil(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  /** @param {Sample[]} samples @param {number} max */
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
    /** @param {number} t */
    var x = function (t) { return L + (W - L - R) * (t - from) / span; };
    /** @param {number} v */
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    /** @param {'inUse' | 'waiting' | 'total'} key @param {string} color @param {boolean} [dash] */
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

  /** @param {Record<string, ReplicaPoolStats> | undefined} replicas */
  function renderReplicas(replicas) {
    var all = replicas || {};
    var names = Object.keys(all);
    $('replicas-panel').classList.toggle('hidden', names.length === 0);
    if (!names.length) return;
    $('replicas').innerHTML = names.map(function (name) {
      var r = all[name];
      return '<tr><td>' + esc(name) + '</td><td><span class="badge ' + (r.healthy ? 'ok">healthy' : 'down">out of rotation') + '</span></td>' +
        '<td class="num">' + (r.lagMs == null ? '–' : dur(r.lagMs)) + '</td><td class="num">' + r.total + ' / ' + r.max + '</td>' +
        '<td class="num">' + r.inUse + '</td><td class="num">' + r.waiting + '</td><td class="num">' + r.healthChanges + '</td>' +
        '<td>' + esc(r.unhealthyReason || '') + '</td></tr>';
    }).join('');
  }

  // How long ago, by the server clock, c was last checked out or returned.
  /** @param {ConnectionStats} c */
  function sinceLastUse(c) {
    // createdAt + ageMs is the server's "now" when it took the snapshot (in JSON the dates are strings).
    return Math.max(0, new Date(c.createdAt).getTime() + c.ageMs - new Date(c.lastUsed).getTime());
  }
  /** The holder's tags, as `tenant=acme, feature=checkout` (admission). @param {Readonly<Record<string, string>>} tags */
  function tagText(tags) {
    return Object.keys(tags).map(function (k) { return k + '=' + tags[k]; }).join(', ');
  }
  /** @param {PoolStats} s */
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
        '</span>' + (c.tags ? ' <span class="mono tags">' + esc(tagText(c.tags)) + '</span>' : '') + '</td><td class="num">' + dur(c.ageMs) + '</td><td class="num">' + (c.inUse ? '–' : dur(c.idleMs)) +
        '</td><td class="num">' + (c.inUse ? dur(sinceLastUse(c)) : '–') + '</td></tr>');
    }
    $('rows').innerHTML = rows.join('');
    $('conn-count').textContent = shown + ' of ' + conns.length + ' connection' + (conns.length === 1 ? '' : 's') + ' (' + s.inUse + ' in use, ' + s.idle + ' idle)';
  }

  /** @param {string} name @param {string} label */
  function act(name, label) {
    if (busy) return;
    // With named pools the buttons act on the one selected; without, on the pool, as always.
    var named = !!(last && last.pools);
    var target = named ? ' the pool "' + group + '"' : ' the pool';
    if (!confirm(label + target + ' now?')) return;
    busy = true;
    actionButtons().forEach(function (b) { b.disabled = true; });
    setMessage(label + '…', false);
    api('POST', '/' + name + (named ? '?pool=' + encodeURIComponent(group) : '')).then(function (body) {
      /** @type {string[]} */
      var parts = [];
      ['evicted', 'retired', 'renewed'].forEach(function (k) { if (k in body) parts.push(body[k] + ' connection(s) ' + k); });
      setMessage(label + ' done' + (named ? ' on "' + group + '"' : '') + ': ' + (parts.join(', ') || 'ok'), false);
    }, /** @param {ApiError} err */ function (err) {
      if (err.auth) { showLogin(err.message); return; }
      setMessage(label + ' failed: ' + err.message, true);
    }).then(function () {
      busy = false;
      actionButtons().forEach(function (b) { b.disabled = false; });
      schedule(0);
    });
  }

  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = input('token').value.trim();
    input('token').value = '';
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
    var pool = e.target instanceof Element && e.target.getAttribute('data-pool');
    if (pool) { selected = pool; render(); }
  });
  $('pools').addEventListener('click', function (e) {
    var row = e.target instanceof Element && e.target.closest('tr[data-group]');
    var name = row && row.getAttribute('data-group');
    if (name) { group = name; selected = name; render(); }
  });
  $('filter').addEventListener('change', function () { filter = /** @type {HTMLSelectElement} */ ($('filter')).value; render(); });
  actionButtons().forEach(function (b) {
    b.addEventListener('click', function () { act(b.getAttribute('data-action') || '', b.getAttribute('data-label') || ''); });
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) schedule(0); });
  window.addEventListener('resize', function () { render(); });
  poll();
})();
