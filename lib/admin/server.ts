/**
 * The admin endpoint: a small HTTP server (Node's `http`, no framework) through which an operator,
 * from another process, sees and steers the live pool.
 *
 *   GET  /         the dashboard (a static page; it asks for the token itself)
 *   GET  /stats    getPoolStats() as JSON, every pool; `?pool=NAME` that pool's stats
 *   GET  /metrics  Prometheus text format
 *   GET  /inspect  `manager.inspect()`: each connection joined with pg_stat_activity, and unowned sessions
 *   POST /reset    resetPool()                  → { ok: true, action: 'reset', evicted }
 *   POST /expire   triggerExpireConnections()   → { ok: true, action: 'expire', retired }
 *   POST /renew    triggerRenewConnections()    → { ok: true, action: 'renew', renewed }
 *   POST /resize   resize({ min, max })         → { ok: true, action: 'resize', closed, retiring, min, max }
 *
 * The triggers run on the default pool, on the open pool named by `?pool=NAME` or the JSON body
 * `{ "pool": "NAME" }`, or on every open pool with `allPools` (see pools.ts).
 *
 * Safety, in the order a request meets it: bounded headers and request time (slow clients are
 * dropped), a bounded body (413), a known route (404) and method (405 with `Allow`), a bearer token
 * compared in constant time (401 without one, 403 with a wrong one; /metrics only with
 * `metricsAuth`), and, without a token, no cross-site browser request (403). Malformed requests get a 4xx from the
 * HTTP parser and never reach the pool; an error inside a handler answers 500 and is logged. The
 * server refuses to listen on a non-loopback address without a token.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'winston';
import { invalidConfig, isConnectionManagerError } from '../errors';
import { dashboardPage } from './dashboard/page';
import { exposureError } from '../net';
import { crossSiteReason, TokenChecker } from './auth';
import { resizeRoute } from './resize';
import { drain, errorBody, gauges, readBody, routePath, sendJson, tooLarge, type Route } from './http';
import { PoolMetrics } from './metrics';
import { errorMessage } from '../pool/messages';
import { openPool, openPoolNames, poolStatsOf, SelectionError, statsSelection, triggerSelection, type AdminPool, type PoolSelection } from './pools';

export type { AdminPool } from './pools';

/** What the admin endpoint needs of a manager: its default pool's methods, and its other pools. */
export interface AdminTarget extends AdminPool {
  /** The pool named `name` (`ConnectionManager.pool`); the endpoint asks only for pools open now. */
  pool(name: string): AdminPool;
  /** `ConnectionManager.resize`: the default pool's min and max. */
  resize(limits: { min?: number; max?: number }): Promise<{ closed: number; retiring: number }>;
  /** `ConnectionManager.inspect()`, for `GET /inspect` (404 without it). */
  inspect?(): Promise<unknown>;
}

/** Settings of the admin endpoint (the `admin` option, with defaults filled in). */
export interface AdminServerOptions {
  /** TCP port; `0` picks a free one (read it from the returned handle). */
  port: number;
  /** Address to listen on. Default `127.0.0.1`. A non-loopback address requires `token`. */
  host?: string;
  /** Bearer token required by every route but `/` (and `/metrics` unless `metricsAuth`). */
  token?: string;
  /** Require the token for `/metrics` too. Default false. */
  metricsAuth?: boolean;
  /** The metrics to serve; by default a registry without histogram feeds is made. */
  metrics?: PoolMetrics;
  /** Where to log the endpoint's start, the actions it runs and refused requests. */
  logger?: Logger;
  /** Longest a client may take to send its headers. Default 10000 ms. */
  headersTimeoutMs?: number;
  /** Longest a client may take to send a whole request. Default 15000 ms. */
  requestTimeoutMs?: number;
  /** Largest request body accepted. Default 4096 bytes. */
  maxBodyBytes?: number;
}

/** A running admin endpoint. */
export interface AdminServer {
  /** `http://host:port` of the endpoint. */
  readonly url: string;
  /** The port it listens on (the one picked when `port` was 0). */
  readonly port: number;
  /** Stops listening and drops open connections; resolves when the server is closed. */
  close(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_MAX_BODY = 4096;
const MAX_HEADER_BYTES = 8192;
const MAX_CONNECTIONS = 64;

type TriggerMethod = 'resetPool' | 'triggerExpireConnections' | 'triggerRenewConnections';


function describeSelection(selection: PoolSelection): string {
  return selection.kind === 'all' ? ' on every pool' : selection.kind === 'one' ? ` on pool ${JSON.stringify(selection.name)}` : '';
}

/** Failures a trigger may meet that are the database's or the manager's state, not a bug. */
const SERVICE_CODES = ['E_POOL_CLOSED', 'E_CONNECT'] as const;

/**
 * Starts the admin endpoint for `target` and resolves once it listens.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` (as a rejection) when `host` is not a loopback
 *   address and no token is set, or for a bad port; an Error when the dashboard's script is missing
 *   from the package (see `dashboardPage`); the listen error (`EADDRINUSE`, …) otherwise.
 */
export async function startAdminServer(target: AdminTarget, options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? DEFAULT_HOST;
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw invalidConfig('admin.port', `expected a whole number from 0 to 65535, got ${String(options.port)}`, 'Set admin.port to a free TCP port, or 0 to pick one.');
  }
  const exposed = exposureError(host, options.token);
  if (exposed) throw exposed;
  const dashboard = dashboardPage();
  const log = options.logger;
  const tokens = new TokenChecker(options.token);
  const metrics = options.metrics ?? new PoolMetrics(() => target.getPoolStats());
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;

  const trigger = (action: string, field: string, method: TriggerMethod): Route => ({
    methods: ['POST'],
    auth: true,
    async handle({ req, res, body }) {
      const selection = triggerSelection(req.url, body);
      const started = Date.now();
      log?.info(`Admin endpoint: ${action} requested${describeSelection(selection)}`, { remote: req.socket.remoteAddress });
      if (selection.kind === 'all') return everyPool(res, action, field, method, started);
      const name = selection.kind === 'one' ? selection.name : 'primary';
      const pool = selection.kind === 'one' ? openPool(target, name) : target;
      const count = (await pool[method]()) ?? 0;
      sendJson(res, 200, { ok: true, action, poolName: name, [field]: count, durationMs: Date.now() - started, pool: gauges(pool.getPoolStats()) });
    },
  });

  /**
   * Runs a trigger on every open pool, one after another (all at once, every pool would reconnect
   * together), and on the rest when one fails; answers each pool's count, or 503 naming the failures.
   */
  async function everyPool(res: http.ServerResponse, action: string, field: string, method: TriggerMethod, started: number): Promise<void> {
    const pools: Record<string, Record<string, unknown>> = {};
    const failed: string[] = [];
    let total = 0;
    let worst: { code: string; status: 503 | 500 } | undefined;
    for (const name of openPoolNames(target.getPoolStats())) {
      let pool: AdminPool;
      try {
        pool = openPool(target, name);
      } catch (error) {
        if (error instanceof SelectionError) continue; // closed as idle while the others ran
        throw error;
      }
      try {
        const count = (await pool[method]()) ?? 0;
        total += count;
        pools[name] = { [field]: count, pool: gauges(pool.getPoolStats()) };
      } catch (error) {
        const known = SERVICE_CODES.find((code) => isConnectionManagerError(error, code));
        if (!known) log?.error(`Admin endpoint: ${action} on pool ${JSON.stringify(name)} failed: ${errorMessage(error)}`);
        pools[name] = { error: { code: known ?? 'internal_error', message: known ? errorMessage(error) : 'The trigger failed; see the service log.' } };
        failed.push(name);
        if (worst === undefined || (!known && worst.status === 503)) worst = { code: known ?? 'internal_error', status: known ? 503 : 500 };
      }
    }
    const durationMs = Date.now() - started;
    if (worst === undefined) return sendJson(res, 200, { ok: true, action, [field]: total, durationMs, pools });
    const message = `${action} failed on ${failed.length} of ${Object.keys(pools).length} pools (${failed.map((n) => JSON.stringify(n)).join(', ')}); the others ran. See "pools" for each one.`;
    sendJson(res, worst.status, { ...errorBody(worst.code, message), action, [field]: total, durationMs, pools });
  }

  const routes: Record<string, Route> = {
    '/': {
      methods: ['GET', 'HEAD'],
      auth: false, // a static page without data; it sends the token with its own calls
      handle({ res }) {
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': dashboard.csp,
          'X-Frame-Options': 'DENY',
        });
        res.end(dashboard.html);
      },
    },
    '/stats': {
      methods: ['GET', 'HEAD'],
      auth: true,
      handle({ req, res }) {
        const name = statsSelection(req.url);
        const stats = target.getPoolStats();
        sendJson(res, 200, name === undefined ? stats : poolStatsOf(stats, name));
      },
    },
    '/metrics': {
      methods: ['GET', 'HEAD'],
      auth: options.metricsAuth === true,
      async handle({ res }) {
        const text = await metrics.scrape();
        res.writeHead(200, { 'Content-Type': metrics.contentType });
        res.end(text);
      },
    },
    '/inspect': {
      methods: ['GET', 'HEAD'],
      auth: true,
      async handle({ res }) {
        if (target.inspect === undefined) return sendJson(res, 404, errorBody('not_found', 'This endpoint\'s target has no inspect().'));
        try {
          sendJson(res, 200, await target.inspect());
        } catch (error) {
          const known = SERVICE_CODES.find((code) => isConnectionManagerError(error, code));
          if (!known) throw error;
          sendJson(res, 503, errorBody(known, errorMessage(error)));
        }
      },
    },
    '/reset': trigger('reset', 'evicted', 'resetPool'),
    '/expire': trigger('expire', 'retired', 'triggerExpireConnections'),
    '/renew': trigger('renew', 'renewed', 'triggerRenewConnections'),
    '/resize': resizeRoute(target, log),
  };

  const server = http.createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: options.requestTimeoutMs ?? 15_000,
    keepAliveTimeout: 5_000,
    // How often the header/request deadlines above are checked (Node's default is 30 s).
    connectionsCheckingInterval: Math.min(1_000, options.headersTimeoutMs ?? 1_000),
  });
  server.maxHeadersCount = 64;
  server.maxConnections = MAX_CONNECTIONS;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      log?.error(`Admin endpoint: ${req.method ?? '?'} ${req.url ?? '?'} failed: ${errorMessage(error)}`);
      if (!res.headersSent) sendJson(res, 500, errorBody('internal_error', 'The request failed; see the service log.'));
      else res.destroy();
    });
  });
  // Requests the HTTP parser refuses (a garbage request line, oversized or bad headers, a client
  // too slow to send them) never become requests: answer 4xx and drop the connection.
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');

    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBody) return tooLarge(res, maxBody);

    const path = routePath(req.url);
    const route = path === undefined ? undefined : Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!route) {
      drain(req, maxBody);
      return sendJson(res, 404, errorBody('not_found', `No such route. Routes: ${Object.keys(routes).join(', ')}.`));
    }
    const method = req.method ?? '';
    if (!route.methods.includes(method)) {
      drain(req, maxBody);
      res.setHeader('Allow', route.methods.join(', '));
      return sendJson(res, 405, errorBody('method_not_allowed', `${path} accepts ${route.methods.join(', ')} only.`));
    }
    const crossSite = crossSiteReason(req, tokens.enabled);
    if (crossSite) {
      drain(req, maxBody);
      log?.warn(`Admin endpoint: refused ${method} ${path}: ${crossSite}`, { remote: req.socket.remoteAddress });
      return sendJson(res, 403, errorBody('forbidden', crossSite));
    }
    if (route.auth) {
      const result = tokens.check(req.headers.authorization);
      if (result !== 'ok') {
        drain(req, maxBody);
        log?.warn(`Admin endpoint: refused ${method} ${path}: ${result === 'missing' ? 'no token' : 'wrong token'}`, { remote: req.socket.remoteAddress });
        if (result === 'missing') {
          res.setHeader('WWW-Authenticate', 'Bearer realm="knex-connection-manager admin"');
          return sendJson(res, 401, errorBody('unauthorized', 'Send the admin token: Authorization: Bearer <token>.'));
        }
        return sendJson(res, 403, errorBody('forbidden', 'The token is not valid for this endpoint.'));
      }
    }
    // Only the triggers read a body (the pool it names); read what came, within the limit. A request
    // whose client went away (or was dropped at the request deadline) before it was complete is not
    // acted on.
    const body = await readBody(req, maxBody);
    if (body.kind === 'tooLarge') return tooLarge(res, maxBody);
    if (body.kind === 'aborted') return;
    try {
      await route.handle({ req, res, body: body.text });
    } catch (error) {
      // A bad pool selection (400) or a pool that is not open (404): refused before any pool ran.
      if (error instanceof SelectionError) return sendJson(res, error.status, errorBody(error.code, error.message));
      // resize() refused the limits: the caller's mistake, not the server's.
      if (isConnectionManagerError(error, 'E_INVALID_CONFIG')) return sendJson(res, 400, errorBody('E_INVALID_CONFIG', error.message));
      if (isConnectionManagerError(error, 'E_POOL_CLOSED')) {
        return sendJson(res, 503, errorBody('E_POOL_CLOSED', error.message));
      }
      // A reset or renewal whose replacement connections the server refused.
      if (isConnectionManagerError(error, 'E_CONNECT')) {
        return sendJson(res, 503, errorBody('E_CONNECT', error.message));
      }
      throw error;
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ port: options.port, host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => log?.error(`Admin endpoint error: ${error.message}`));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info(`Admin endpoint listening on ${url}${tokens.enabled ? '' : ' (no token: any local process may use it)'}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
