/**
 * The admin endpoint's HTTP plumbing: route paths, JSON answers, and request bodies read (and
 * dropped) within a limit. No route takes a body; these keep a refused or oversized request from
 * holding a connection or reaching a handler.
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
  sendJson(res, 413, errorBody('payload_too_large', `Request bodies are limited to ${maxBody} bytes; these routes take none.`));
  res.once('finish', () => res.req.socket.destroySoon());
}

/** Reads and drops the body: `'ok'` once it ended within `maxBody` bytes. */
export function readBody(req: http.IncomingMessage, maxBody: number): Promise<'ok' | 'tooLarge' | 'aborted'> {
  if (req.complete) return Promise.resolve('ok');
  return new Promise((resolve) => {
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBody) {
        req.off('data', onData);
        req.pause();
        resolve('tooLarge');
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve('ok'));
    req.once('close', () => resolve(req.complete ? 'ok' : 'aborted'));
  });
}

/**
 * Discards the body of a request that is refused, so a keep-alive connection stays usable; a body
 * over the limit ends the connection instead.
 */
export function drain(req: http.IncomingMessage, maxBody: number): void {
  void readBody(req, maxBody).then((outcome) => {
    if (outcome === 'tooLarge') req.socket.destroySoon();
  });
}
