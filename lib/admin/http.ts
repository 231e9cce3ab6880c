/**
 * The admin endpoint's HTTP plumbing: route paths, JSON answers, and request bodies read within a
 * limit (the triggers take a small JSON body naming a pool; refused requests have theirs dropped).
 * These keep a refused or oversized request from holding a connection or reaching a handler.
 */
import type * as http from 'node:http';

/** The path of a request target (`/stats?x=1` → `/stats`), or undefined when it is not a path. */
export function routePath(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('/') || url.startsWith('//')) return undefined;
  const end = url.search(/[?#]/);
  const path = end === -1 ? url : url.slice(0, end);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The body of every error answer: `{ ok: false, error: { code, message } }`. */
export function errorBody(code: string, message: string): { ok: false; error: { code: string; message: string } } {
  return { ok: false, error: { code, message } };
}

/** Answers `body` as JSON with `status` and its length. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers 413 and closes the connection rather than read the rest of the body. */
export function tooLarge(res: http.ServerResponse, maxBody: number): void {
  res.setHeader('Connection', 'close');
  sendJson(res, 413, errorBody('payload_too_large', `Request bodies are limited to ${maxBody} bytes; only the triggers take one, a small JSON object such as {"pool":"analytics"}.`));
  res.once('finish', () => res.req.socket.destroySoon());
}

/** A request body read within the limit, or why it was not. */
export type BodyOutcome = { kind: 'ok'; text: string } | { kind: 'tooLarge' } | { kind: 'aborted' };

/** Reads the body, at most `maxBody` bytes: `ok` with its text once it ended within the limit. */
export function readBody(req: http.IncomingMessage, maxBody: number): Promise<BodyOutcome> {
  const chunks: Buffer[] = [];
  let received = 0;
  const take = (chunk: Buffer): boolean => {
    received += chunk.length;
    if (received > maxBody) return false;
    chunks.push(chunk);
    return true;
  };
  const text = (): BodyOutcome => ({ kind: 'ok', text: Buffer.concat(chunks).toString('utf8') });
  if (req.complete) {
    // The parser has pushed the whole body into the stream's buffer: take it now, so a client that
    // goes away right after its request still gets the pool it named.
    for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) {
      if (!take(chunk)) return Promise.resolve({ kind: 'tooLarge' });
    }
    return Promise.resolve(text());
  }
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      if (!take(chunk)) {
        req.off('data', onData);
        req.pause();
        resolve({ kind: 'tooLarge' });
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve(text()));
    req.once('close', () => resolve(req.complete ? text() : { kind: 'aborted' }));
  });
}

/**
 * Discards the body of a request that is refused, so a keep-alive connection stays usable; a body
 * over the limit ends the connection instead.
 */
export function drain(req: http.IncomingMessage, maxBody: number): void {
  void readBody(req, maxBody).then((outcome) => {
    if (outcome.kind === 'tooLarge') req.socket.destroySoon();
  });
}

/** One route of the admin endpoint. */
export type Route = {
  methods: readonly string[];
  /** Whether the route needs the token (when one is configured). */
  auth: boolean;
  handle(context: RequestContext): Promise<void> | void;
};

/** What a route's handler gets. */
export interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The request body as text (empty without one). */
  body: string;
}

/** A pool's gauges, as a trigger's answer reports them. */
export function gauges(stats: { total: number; idle: number; inUse: number; pending: number; waiting: number }): { total: number; idle: number; inUse: number; pending: number; waiting: number } {
  return { total: stats.total, idle: stats.idle, inUse: stats.inUse, pending: stats.pending, waiting: stats.waiting };
}

