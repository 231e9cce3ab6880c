// @ts-check
/**
 * The dashboard's drawing helpers: escaping, durations, the cards, the SVG chart and the rows of
 * the replica and connection tables, each turning stats into HTML or SVG text. They read no DOM
 * and keep no state, so they live apart from client.js (which polls, keeps the history and the
 * selection, and assigns what these return); the split also keeps each file short.
 *
 * page.ts inlines this file before client.js in the same inline script element, so `kcmRender` is
 * defined when client.js runs; the types below are shared with client.js the same way
 * (tsconfig.dashboard.json checks both files together). Plain JavaScript without a build step,
 * served exactly as written and allowed by its hash in the Content-Security-Policy.
 */
/** @typedef {import('../../pool/stats').ManagerPoolStats} ManagerPoolStats */
/** @typedef {import('../../pool/stats').PoolStats} PoolStats */
/** @typedef {import('../../pool/stats').ReplicaPoolStats} ReplicaPoolStats */
/** @typedef {import('../../pool/stats').ConnectionStats} ConnectionStats */
/** @typedef {{ t: number, inUse: number, waiting: number, total: number }} Sample */
/** One row of `GET /inspect` (dates as ISO strings). @typedef {{ id: string, backendPid: number | null, state: string | null, query: string | null, waitEventType: string | null, waitEvent: string | null, xactStart: string | null }} ServerView */
/* exported kcmRender */
var kcmRender = (function () {
  'use strict';

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

  /** @param {string} label @param {string | number} value @param {string} [cls] */
  function card(label, value, cls) {
    return '<div class="card"><div class="label">' + esc(label) + '</div><div class="value ' + (cls || '') + '">' + esc(value) + '</div></div>';
  }
  /** The totals and counters of one pool, one card each. @param {PoolStats} s */
  function cards(s) {
    var c = s.counters;
    var avg = s.wait.count ? s.wait.totalMs / s.wait.count : null;
    return [
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
  /**
   * The chart of in use, waiting and open over the samples kept, with the pool's max as a line.
   * @param {Sample[]} samples @param {number} max @param {number} width the SVG's width in pixels
   * @param {number} historyMs the longest window drawn
   * @returns {{ title: string, viewBox: string, svg: string }} the panel's title and the SVG's viewBox and content
   */
  function chart(samples, max, width, historyMs) {
    var W = width || 800, H = 160, L = 36, R = 8, T = 8, B = 20;
    var now = Date.now();
    // The window grows with the history kept, from 10 s up to 5 minutes.
    var span = samples.length ? Math.min(historyMs, Math.max(10000, now - samples[0].t)) : historyMs;
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
    var maxLine = '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(max) + '" y2="' + y(max) + '" stroke="#c8362d" stroke-dasharray="2 4"/>';
    return {
      title: 'Last ' + (span >= 60000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s'),
      viewBox: '0 0 ' + W + ' ' + H,
      svg: grid + maxLine + line('total', '#9aa3ad', true) + line('waiting', '#e07b12') + line('inUse', '#2f6fde'),
    };
  }

  /** One row per replica, in the order given. @param {Record<string, ReplicaPoolStats>} all */
  function replicaRows(all) {
    return Object.keys(all).map(function (name) {
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
  /**
   * The connection table's rows, numbered in creation order, and the line that counts them.
   * @param {PoolStats} s @param {string} filter `all`, `inUse` or `idle`
   * @param {Record<string, ServerView>} server the last `GET /inspect` rows by connection id
   * @returns {{ rows: string, count: string }}
   */
  function connectionRows(s, filter, server) {
    var rows = [];
    var shown = 0;
    var conns = s.connections;
    var now = Date.now();
    for (var i = 0; i < conns.length; i++) {
      var c = conns[i];
      if (filter === 'inUse' && !c.inUse) continue;
      if (filter === 'idle' && c.inUse) continue;
      shown++;
      var v = server[c.id];
      // Idle in transaction: locks and an old snapshot held while nothing runs; highlighted.
      var xact = !!(v && v.state && v.state.indexOf('idle in transaction') === 0);
      rows.push('<tr data-id="' + esc(c.id) + '" data-state="' + (c.inUse ? 'inUse' : 'idle') + '"' + (xact ? ' class="xact"' : '') + '><td class="num">' + (i + 1) +
        '</td><td class="mono">' + esc(c.id) + '</td><td><span class="badge ' + (c.inUse ? 'use">in use' : 'idle">idle') +
        '</span>' + (c.tags ? ' <span class="mono tags">' + esc(tagText(c.tags)) + '</span>' : '') + '</td><td class="num">' + dur(c.ageMs) + '</td><td class="num">' + (c.inUse ? '–' : dur(c.idleMs)) +
        '</td><td class="num">' + (c.inUse ? dur(sinceLastUse(c)) : '–') + '</td>' + serverCells(v, now) + '</tr>');
    }
    return {
      rows: rows.join(''),
      count: shown + ' of ' + conns.length + ' connection' + (conns.length === 1 ? '' : 's') + ' (' + s.inUse + ' in use, ' + s.idle + ' idle)',
    };
  }
  /** The server's columns of a connection (pid, state, wait, transaction age, statement). @param {ServerView | undefined} v @param {number} now */
  function serverCells(v, now) {
    if (!v) return '<td class="num">–</td><td>–</td><td>–</td><td class="num">–</td><td>–</td>';
    return '<td class="num">' + esc(v.backendPid == null ? '–' : v.backendPid) + '</td><td class="srv-state">' + esc(v.state || 'not found') + '</td><td>' +
      esc(v.waitEventType ? v.waitEventType + ':' + (v.waitEvent || '') : '–') + '</td><td class="num">' + (v.xactStart ? dur(now - new Date(v.xactStart).getTime()) : '–') +
      '</td><td class="mono query" title="' + esc(v.query || '') + '">' + esc(v.query || '–') + '</td>';
  }

  return { esc: esc, cards: cards, chart: chart, replicaRows: replicaRows, connectionRows: connectionRows };
})();
