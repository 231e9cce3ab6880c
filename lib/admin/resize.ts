/**
 * The limits of a `POST /resize` request: `?min=&max=` or the JSON body `{ "min": 5, "max": 40 }`
 * (not both). Only the shape is checked here; `manager.resize()` checks the values (its
 * `E_INVALID_CONFIG` becomes a 400 naming `resize.min` or `resize.max`).
 */
import type { Logger } from 'winston';
import { SelectionError } from './pools';
import { gauges, sendJson, type Route } from './http';
import type { ManagerPoolStats } from '../pool/stats';

/** What `POST /resize` needs of the manager. */
export interface ResizeTarget {
  getPoolStats(): ManagerPoolStats;
  resize(limits: { min?: number; max?: number }): Promise<{ closed: number; retiring: number }>;
}

/** `POST /resize`: `manager.resize()` with the request's limits; answers the counts and the new limits. */
export function resizeRoute(target: ResizeTarget, log: Logger | undefined): Route {
  return {
    methods: ['POST'],
    auth: true,
    async handle({ req, res, body }) {
      const limits = resizeLimits(req.url, body);
      const started = Date.now();
      log?.info(`Admin endpoint: resize to ${JSON.stringify(limits)} requested`, { remote: req.socket.remoteAddress });
      const result = await target.resize(limits);
      const stats = target.getPoolStats();
      sendJson(res, 200, { ok: true, action: 'resize', ...result, min: stats.min, max: stats.max, durationMs: Date.now() - started, pool: gauges(stats) });
    },
  };
}

function badRequest(message: string): SelectionError {
  return new SelectionError(400, 'bad_request', message);
}

/** `{ min?, max? }` of a resize request. @throws SelectionError 400 for an unreadable one. */
export function resizeLimits(url: string | undefined, body: string): { min?: number; max?: number } {
  const index = url?.indexOf('?') ?? -1;
  const query = new URLSearchParams(index >= 0 && url !== undefined ? url.slice(index + 1) : '');
  const limits: Record<string, unknown> = {};
  for (const key of new Set(query.keys())) {
    if (key !== 'min' && key !== 'max') throw badRequest(`Unknown parameter ${JSON.stringify(key.slice(0, 64))}: resize takes min and max.`);
    const values = query.getAll(key);
    if (values.length > 1) throw badRequest(`The parameter ${key} is given ${values.length} times; give it once.`);
    limits[key] = values[0].trim() === '' ? Number.NaN : Number(values[0]);
  }
  if (body.trim() !== '') {
    if (Object.keys(limits).length > 0) throw badRequest('Give the limits in the query or in the body, not both.');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw badRequest('The body is not JSON: send { "min": N, "max": N }.');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('The body must be a JSON object: { "min": N, "max": N }.');
    for (const [key, value] of Object.entries(parsed)) {
      if (key !== 'min' && key !== 'max') throw badRequest(`Unknown key ${JSON.stringify(key.slice(0, 64))}: resize takes min and max.`);
      limits[key] = value;
    }
  }
  if (limits.min === undefined && limits.max === undefined) throw badRequest('Give min, max or both: POST /resize?max=40 or { "min": 5, "max": 40 }.');
  return limits as { min?: number; max?: number };
}
