// @ts-check
/**
 * The dashboard's browser script, served inline in the page (lib/admin/dashboard/page.ts) exactly as
 * written here, after render.js (the drawing helpers, `kcmRender`) in the same inline script
 * element, and allowed by its hash in the Content-Security-Policy. Plain JavaScript without a build
 * step; `npm run typecheck` checks it (tsconfig.dashboard.json: DOM, strict, JSDoc types, with
 * render.js) and `npm run lint` lints it with browser globals.
 *
 * It asks for the token once (kept in sessionStorage), polls /stats, keeps five minutes of history
 * per pool for the chart, and draws the tables with one innerHTML assignment each per poll. The
 * server's view of each connection (/inspect: one query on a session of its own on the server)
 * is polled apart, every few seconds, not per frame.
 *
 * With named pools (`stats.pools`) it lists them with the budget; the one selected there (the
 * default pool, `primary`, at first) is what the cards, chart, tabs, replicas and connections show
 * and what the buttons act on (`?pool=NAME`). Without them the page is as it always was.
 */
/* global kcmRender */
/** @typedef {Error & { auth?: number }} ApiError */
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var POLL_MS = Math.max(250, Number(params.get('interval')) || 1000);
  var HISTORY_MS = 5 * 60 * 1000;
  var INSPECT_MS = Math.max(2000, Number(params.get('inspect')) || 5000);
  /** The last /inspect rows by connection id. @type {Record<string, ServerView>} */
  var server = {};
  /** @type {number | undefined} */
  var inspectTimer = undefined;
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

  var esc = kcmRender.esc;

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
  /** Reads the server's view of the connections; a failure (no /inspect, server busy) leaves the columns empty. */
  function inspect() {
    clearTimeout(inspectTimer);
    if (document.hidden || last === null) { inspectTimer = setTimeout(inspect, INSPECT_MS); return; }
    api('GET', '/inspect').then(/** @param {{ connections: ServerView[] }} body */ function (body) {
      /** @type {Record<string, ServerView>} */
      var byId = {};
      body.connections.forEach(function (c) { byId[c.id] = c; });
      server = byId;
      render();
    }, function () { server = {}; }).then(function () { inspectTimer = setTimeout(inspect, INSPECT_MS); });
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

  /** @param {PoolStats} s */
  function renderCards(s) {
    $('cards').innerHTML = kcmRender.cards(s);
  }

  /** @param {Sample[]} samples @param {number} max */
  function renderChart(samples, max) {
    var svg = $('chart');
    var drawn = kcmRender.chart(samples, max, svg.clientWidth, HISTORY_MS);
    $('chart-title').textContent = drawn.title;
    svg.setAttribute('viewBox', drawn.viewBox);
    svg.innerHTML = drawn.svg;
  }

  /** @param {Record<string, ReplicaPoolStats> | undefined} replicas */
  function renderReplicas(replicas) {
    var all = replicas || {};
    var names = Object.keys(all);
    $('replicas-panel').classList.toggle('hidden', names.length === 0);
    if (!names.length) return;
    $('replicas').innerHTML = kcmRender.replicaRows(all);
  }

  /** @param {PoolStats} s */
  function renderConnections(s) {
    var table = kcmRender.connectionRows(s, filter, server);
    $('rows').innerHTML = table.rows;
    $('conn-count').textContent = table.count;
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
  inspect();
})();
