/**
 * The admin endpoint: a small HTTP server (Node's `http`, no framework) through which an operator,
 * from another process, sees and steers the live pool.
 *
 *   GET  /         the dashboard (a static page; it asks for the token itself)
 *   GET  /stats    getPoolStats() as JSON, every pool
 *   GET  /metrics  Prometheus text format
 *   POST /reset    resetPool()                  → { ok: true, action: 'reset', evicted }
 *   POST /expire   triggerExpireConnections()   → { ok: true, action: 'expire', retired }
 *   POST /renew    triggerRenewConnections()    → { ok: true, action: 'renew', renewed }
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
import type { ManagerPoolStats } from '../pool/stats';
import { dashboardPage } from './dashboard/page';
import { exposureError } from '../net';
import { crossSiteReason, TokenChecker } from './auth';
import { drain, errorBody, readBody, routePath, sendJson, tooLarge } from './http';
import { PoolMetrics } from './metrics';
import { errorMessage } from '../pool/messages';

/** What the admin endpoint needs of a manager. */
export interface AdminTarget {
  getPoolStats(): ManagerPoolStats;
  resetPool(): Promise<number | void>;
  triggerExpireConnections(): Promise<number>;
  triggerRenewConnections(): Promise<number>;
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

type Route = {
  methods: readonly string[];
  /** Whether the route needs the token (when one is configured). */
  auth: boolean;
  handle(context: RequestContext): Promise<void> | void;
};

interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

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

  const trigger = (action: string, field: string, run: () => Promise<number | void>): Route => ({
    methods: ['POST'],
    auth: true,
    async handle({ req, res }) {
      const started = Date.now();
      log?.info(`Admin endpoint: ${action} requested`, { remote: req.socket.remoteAddress });
      const count = (await run()) ?? 0;
      const stats = target.getPoolStats();
      sendJson(res, 200, {
        ok: true,
        action,
        [field]: count,
        durationMs: Date.now() - started,
        pool: { total: stats.total, idle: stats.idle, inUse: stats.inUse, pending: stats.pending, waiting: stats.waiting },
      });
    },
  });

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
      handle({ res }) {
        sendJson(res, 200, target.getPoolStats());
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
    '/reset': trigger('reset', 'evicted', () => target.resetPool()),
    '/expire': trigger('expire', 'retired', () => target.triggerExpireConnections()),
    '/renew': trigger('renew', 'renewed', () => target.triggerRenewConnections()),
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
    // No route takes a body; read (and drop) what came, within the limit. A request whose client
    // went away (or was dropped at the request deadline) before it was complete is not acted on.
    const body = await readBody(req, maxBody);
    if (body === 'tooLarge') return tooLarge(res, maxBody);
    if (body === 'aborted') return;
    try {
      await route.handle({ req, res });
    } catch (error) {
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
