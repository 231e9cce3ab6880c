/**
 * The admin endpoint against a real server: every route, the token (none → 401, wrong → 403,
 * right → 200), methods (405 with Allow), unknown routes (404), malformed and hostile requests (a
 * garbage request line, bad headers, oversized headers and bodies, a client too slow to finish its
 * headers, cross-site browser requests), and the configuration it refuses. A refused request must
 * never touch the pool: the tests compare the connection ids and counters before and after.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import winston from 'winston';
import {
  closeConnectionInstance,
  ConnectionManager,
  getConnectionInstance,
  resolveOptions,
  type ConnectionManagerConfig,
  type ManagerPoolStats,
} from '../../lib';
import { startAdminServer } from '../../lib/admin/server';
import { testDatabaseUrl } from '../helpers/database';
import { until } from '../helpers/poll';

const url = testDatabaseUrl();
const silent = winston.createLogger({ silent: true });
const TOKEN = 'admin-spec-token-0123456789abcdef';

function config(appName: string, admin: ConnectionManagerConfig['admin'] = { port: 0, token: TOKEN }): ConnectionManagerConfig {
  return { connection: { connectionString: url, application_name: appName }, pool: { min: 2, max: 4 }, logger: silent, admin };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One HTTP request to 127.0.0.1:`port` on a fresh connection. */
function call(
  port: number,
  method: string,
  path: string,
  options: { token?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes `text` on a raw TCP connection and collects everything the server sends until it closes. */
function raw(port: number, text: string | Buffer, options: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may reset a connection it refused while we were still writing.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
      reject(error);
    });
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(text);
    if (options.end) socket.end();
  });
}

function ids(stats: ManagerPoolStats): string[] {
  return stats.connections.map((c) => c.id);
}

/** The pool's identity and activity: what a refused request must leave unchanged. */
function fingerprint(manager: ConnectionManager): { ids: string[]; created: number; destroyed: number; acquired: number } {
  const s = manager.getPoolStats();
  return { ids: ids(s), created: s.counters.created, destroyed: s.counters.destroyed, acquired: s.counters.acquired };
}

describe('admin endpoint with a token', () => {
  let manager: ConnectionManager;
  let port: number;

  beforeAll(async () => {
    manager = getConnectionInstance(config('kcm-spec-admin'));
    await manager.ready();
    port = (await manager.adminReady()).port;
  });

  afterAll(async () => {
    await closeConnectionInstance();
  });

  test('listens on a free loopback port and answers /stats with the pool', async () => {
    const endpoint = await manager.adminReady();
    expect(endpoint.url).toBe(`http://127.0.0.1:${endpoint.port}`);
    expect(endpoint.port).toBeGreaterThan(0);
    expect(manager.admin).toEqual(endpoint);

    const reply = await call(port, 'GET', '/stats', { token: TOKEN });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.headers['cache-control']).toBe('no-store');
    const stats = JSON.parse(reply.text) as ManagerPoolStats;
    expect(stats).toMatchObject({ min: 2, max: 4, total: 2, idle: 2, inUse: 0, waiting: 0 });
    expect(stats.connections.map((c) => c.id)).toEqual(ids(manager.getPoolStats()));
    expect(stats.replicas).toBeUndefined();
    // A trailing slash and a query string name the same route.
    expect((await call(port, 'GET', '/stats/?x=1', { token: TOKEN })).status).toBe(200);
  });

  test('no token → 401, a wrong token → 403, the right one → 200, on every protected route', async () => {
    const before = fingerprint(manager);
    const routes: Array<[string, string]> = [['GET', '/stats'], ['POST', '/reset'], ['POST', '/expire'], ['POST', '/renew']];
    for (const [method, path] of routes) {
      const none = await call(port, method, path);
      expect([path, none.status]).toEqual([path, 401]);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(JSON.parse(none.text)).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
      // Another scheme, or a bearer header without a token, is no token either.
      expect((await call(port, method, path, { headers: { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } })).status).toBe(401);
      expect((await call(port, method, path, { headers: { Authorization: 'Bearer' } })).status).toBe(401);
      // Wrong tokens: same length, shorter, longer, a prefix.
      for (const wrong of [TOKEN.replace(/.$/, 'X'), 'short', `${TOKEN}${TOKEN}`, TOKEN.slice(0, -1)]) {
        expect([path, wrong, (await call(port, method, path, { token: wrong })).status]).toEqual([path, wrong, 403]);
      }
    }
    expect(fingerprint(manager)).toEqual(before);
    // The scheme is case-insensitive.
    expect((await call(port, 'GET', '/stats', { headers: { Authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  test('/metrics needs no token by default', async () => {
    const reply = await call(port, 'GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain/);
    expect(reply.text).toContain('kcm_pool_connections{pool="primary"} 2');
  });

  test('GET / serves the dashboard page without a token, under a strict content security policy', async () => {
    const reply = await call(port, 'GET', '/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.text).toContain('<title>');
    const csp = String(reply.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    // The page holds no data: the stats come from /stats, with the token.
    expect(reply.text).not.toContain(manager.getPoolStats().connections[0].id);
  });

  test('POST /reset, /expire and /renew run the trigger and say what they did', async () => {
    const before = ids(manager.getPoolStats());
    const reset = await call(port, 'POST', '/reset', { token: TOKEN });
    expect(reset.status).toBe(200);
    expect(JSON.parse(reset.text)).toMatchObject({ ok: true, action: 'reset', evicted: 2, pool: { total: 2, idle: 2, inUse: 0 } });
    const afterReset = ids(manager.getPoolStats());
    expect(afterReset).toHaveLength(2);
    for (const id of afterReset) expect(before).not.toContain(id);

    const expire = await call(port, 'POST', '/expire', { token: TOKEN });
    expect(expire.status).toBe(200);
    expect(JSON.parse(expire.text)).toMatchObject({ ok: true, action: 'expire', retired: 0 });
    expect(ids(manager.getPoolStats())).toEqual(afterReset);

    const renew = await call(port, 'POST', '/renew', { token: TOKEN });
    expect(renew.status).toBe(200);
    expect(JSON.parse(renew.text)).toMatchObject({ ok: true, action: 'renew', renewed: 2 });
    await until(() => {
      const now = ids(manager.getPoolStats());
      return now.length === 2 && now.every((id) => !afterReset.includes(id));
    }, { description: 'renewed connections replace the old ones' });
    expect(manager.getPoolStats().counters.renewed).toBe(2);
  });

  test('the wrong method → 405 with Allow; an unknown route → 404', async () => {
    const before = fingerprint(manager);
    for (const [method, path, allow] of [
      ['GET', '/reset', 'POST'],
      ['GET', '/expire', 'POST'],
      ['PUT', '/renew', 'POST'],
      ['DELETE', '/reset', 'POST'],
      ['POST', '/stats', 'GET, HEAD'],
      ['POST', '/metrics', 'GET, HEAD'],
    ]) {
      const reply = await call(port, method, path, { token: TOKEN });
      expect([method, path, reply.status, reply.headers.allow]).toEqual([method, path, 405, allow]);
    }
    for (const path of ['/nope', '/stats/extra', '/admin/stats', '//stats', '/%2e%2e/stats']) {
      const reply = await call(port, 'GET', path, { token: TOKEN });
      expect([path, reply.status]).toEqual([path, 404]);
    }
    expect(fingerprint(manager)).toEqual(before);
  });

  test('malformed requests get a 4xx, and the service and the pool carry on', async () => {
    const before = fingerprint(manager);
    // A garbage request line.
    expect(await raw(port, 'HELLO WORLD\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // Binary noise.
    expect(await raw(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]))).toMatch(/^HTTP\/1\.1 400 /);
    // A method HTTP does not know.
    expect(await raw(port, 'BREW /reset HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // A header with a control character in its name, and one without a colon.
    expect(await raw(port, 'POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nX-B\x01d: 1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(port, 'POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // Headers larger than the server accepts.
    expect(await raw(port, `GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ${'a'.repeat(16_384)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    // Contradictory framing (both Content-Length and chunked).
    expect(await raw(port, 'POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // A request cut off half-way through its headers, then the client goes away.
    const cut = await raw(port, 'GET /stats HTTP/1.1\r\nHost: 127.', { end: true });
    expect(cut === '' || cut.startsWith('HTTP/1.1 400 ')).toBe(true);

    expect(fingerprint(manager)).toEqual(before);
    expect((await call(port, 'GET', '/stats', { token: TOKEN })).status).toBe(200);
    expect(await manager.withConnection(async (conn) => (await conn.query('select 1 as one')).rows[0])).toEqual({ one: 1 });
  });

  test('a body over the limit → 413 before anything runs; a small one is fine', async () => {
    const before = fingerprint(manager);
    // Declared too large: refused from the headers alone.
    const declared = await raw(port, `POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1048576\r\n\r\n${'x'.repeat(1024)}`);
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared).toMatch(/\r\nConnection: close\r\n/i);
    // Chunked, with no length up front: refused once the limit is passed.
    const chunk = 'y'.repeat(8192);
    const chunked = await raw(
      port,
      `POST /renew HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(8) + '0\r\n\r\n',
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    // Without a token, too.
    expect((await call(port, 'POST', '/expire', { body: Buffer.alloc(64 * 1024, 0x7a) })).status).toBe(413);
    expect(fingerprint(manager)).toEqual(before);

    const small = await call(port, 'POST', '/expire', { token: TOKEN, body: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(small.status).toBe(200);
  });

  test('a request with the token is served whatever its Origin (a proxy in front may change it)', async () => {
    const viaProxy = await call(port, 'POST', '/expire', { token: TOKEN, headers: { Origin: 'https://admin.example', Host: 'admin.example', 'Sec-Fetch-Site': 'same-origin' } });
    expect(viaProxy.status).toBe(200);
    // Without the token it is still refused.
    expect((await call(port, 'POST', '/expire', { headers: { Origin: 'https://admin.example' } })).status).toBe(401);
  });

  test('a client too slow to send its headers is dropped, and the endpoint keeps serving', async () => {
    // A second endpoint on the same manager, with a short header deadline.
    const server = await startAdminServer(manager, { port: 0, token: TOKEN, headersTimeoutMs: 200, requestTimeoutMs: 400 });
    try {
      const before = fingerprint(manager);
      // Sends part of its headers and then nothing: the server answers 408 and closes.
      const slow = await raw(server.port, 'GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n');
      expect(slow).toMatch(/^HTTP\/1\.1 408 /);
      // Headers in time, but a body that never comes: dropped at the request deadline.
      const stalled = await raw(server.port, `POST /reset HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\nabc`);
      expect(stalled === '' || stalled.startsWith('HTTP/1.1 408 ')).toBe(true);
      expect((await call(server.port, 'GET', '/stats', { token: TOKEN })).status).toBe(200);
      // The reset whose body never came did not run.
      expect(fingerprint(manager)).toEqual(before);
      expect(manager.getPoolStats().connections.every((c) => !c.inUse)).toBe(true);
    } finally {
      await server.close();
    }
  });

  test('a trigger on a closing manager answers 503, not a crash', async () => {
    // The endpoint only needs the manager's methods; use one that is already closed.
    const closed = new ConnectionManager(resolveOptions({ connection: url, pool: { min: 0, max: 1 }, logger: silent }));
    await closed.close();
    const server = await startAdminServer(closed, { port: 0, token: TOKEN });
    try {
      const reply = await call(server.port, 'POST', '/reset', { token: TOKEN });
      expect(reply.status).toBe(503);
      expect(JSON.parse(reply.text)).toMatchObject({ ok: false, error: { code: 'E_POOL_CLOSED' } });
      // Named, or every pool: the same.
      for (const path of ['/reset?pool=primary', '/renew?allPools']) {
        const named = await call(server.port, 'POST', path, { token: TOKEN });
        expect([path, named.status]).toEqual([path, 503]);
        expect(JSON.parse(named.text)).toMatchObject({ ok: false, error: { code: 'E_POOL_CLOSED' } });
      }
      expect((await call(server.port, 'GET', '/stats', { token: TOKEN })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('admin endpoint configuration', () => {
  const direct: ConnectionManager[] = [];

  afterEach(async () => {
    await closeConnectionInstance();
    await Promise.all(direct.splice(0).map((m) => m.close()));
  });

  test('refuses a non-loopback host without a token, naming admin.token', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'db-admin.example']) {
      expect(() => getConnectionInstance(config('kcm-spec-admin-host', { port: 0, host }))).toThrow(
        expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('admin.token') }),
      );
      // The server itself refuses too, before it binds anything.
      const pool = { getPoolStats: () => { throw new Error('unused'); }, resetPool: async () => 0, triggerExpireConnections: async () => 0, triggerRenewConnections: async () => 0 };
      const target = { ...pool, pool: () => pool, resize: async () => ({ closed: 0, retiring: 0 }) };
      await expect(startAdminServer(target, { port: 0, host })).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('admin.token') });
    }
  });

  test('refuses bad admin options, naming the option', () => {
    const cases: Array<[unknown, string]> = [
      [{ port: 0, token: 'too-short' }, 'admin.token'],
      [{ port: 0, token: 'has spaces in the middle of it' }, 'admin.token'],
      [{ port: 0, token: 42 }, 'admin.token'],
      [{ port: -1 }, 'admin.port'],
      [{ port: 70000 }, 'admin.port'],
      [{ port: 1.5 }, 'admin.port'],
      [{}, 'admin.port'],
      [{ port: 0, metricsAuth: 'yes' }, 'admin.metricsAuth'],
      [{ port: 0, host: '' }, 'admin.host'],
      [{ port: 0, tls: true }, 'admin.tls'],
      ['9187', 'admin'],
    ];
    for (const [admin, option] of cases) {
      expect(() => resolveOptions({ connection: url, admin })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_CONFIG', message: expect.stringContaining(`"${option}"`) }),
      );
    }
    expect(resolveOptions({ connection: url }).admin).toBeUndefined();
    expect(resolveOptions({ connection: url, admin: { port: 0 } }).admin).toEqual({ port: 0, host: '127.0.0.1', token: undefined, metricsAuth: false });
  });

  test('without a token it serves loopback callers only, and refuses other Host names (DNS rebinding)', async () => {
    const manager = getConnectionInstance(config('kcm-spec-admin-open', { port: 0 }));
    await manager.ready();
    const { port } = await manager.adminReady();
    expect((await call(port, 'GET', '/stats')).status).toBe(200);
    expect((await call(port, 'GET', '/stats', { headers: { Host: `localhost:${port}` } })).status).toBe(200);
    const before = fingerprint(manager);
    expect((await call(port, 'GET', '/stats', { headers: { Host: `attacker.example:${port}` } })).status).toBe(403);
    expect((await call(port, 'POST', '/reset', { headers: { Host: 'attacker.example' } })).status).toBe(403);
    // A page on another site (or another local port) POSTing to the loopback endpoint.
    expect((await call(port, 'POST', '/reset', { headers: { Origin: 'https://attacker.example' } })).status).toBe(403);
    expect((await call(port, 'POST', '/reset', { headers: { Origin: 'http://localhost:3000' } })).status).toBe(403);
    expect((await call(port, 'POST', '/reset', { headers: { Origin: 'null' } })).status).toBe(403);
    expect((await call(port, 'POST', '/reset', { headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    expect(fingerprint(manager)).toEqual(before);
    // The dashboard's own calls come from the endpoint's origin.
    const own = await call(port, 'POST', '/expire', { headers: { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'same-origin' } });
    expect(own.status).toBe(200);
    expect(JSON.parse((await call(port, 'POST', '/expire')).text)).toMatchObject({ ok: true, retired: 0 });
  });

  test('close() stops the endpoint', async () => {
    const manager = getConnectionInstance(config('kcm-spec-admin-close'));
    const { port } = await manager.adminReady();
    // Keep a connection to the endpoint open: close() must not wait for it.
    const idle = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve) => idle.once('connect', resolve));
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    idle.on('error', () => undefined);
    await closeConnectionInstance();
    await idleClosed;
    await expect(call(port, 'GET', '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('adminReady() rejects when the endpoint is off, or when its port is taken (the pool still works)', async () => {
    const off = getConnectionInstance({ connection: url, pool: { min: 0, max: 1 }, logger: silent });
    await expect(off.adminReady()).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('admin') });
    expect(off.admin).toBeUndefined();
    await closeConnectionInstance();

    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const manager = new ConnectionManager(resolveOptions(config('kcm-spec-admin-taken', { port: taken, token: TOKEN })));
      direct.push(manager);
      await expect(manager.adminReady()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(manager.admin).toBeUndefined();
      await manager.ready();
      expect(await manager.withConnection(async (conn) => (await conn.query('select 1 as one')).rows[0])).toEqual({ one: 1 });
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
