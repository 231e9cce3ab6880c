/**
 * The CLI's side of the admin endpoint's HTTP: where the endpoint is, one request with the token and
 * a deadline, and fetch's failures turned into messages an operator can act on, each with its exit
 * code.
 */

/** The exit codes, for scripts. */
export const EXIT_CODES = { ok: 0, error: 1, usage: 2, auth: 3, unreachable: 4, timeout: 5 } as const;

/** An error that ends the program with a message and an exit code. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** Options every command takes: the endpoint, its token and how long to wait. */
export interface GlobalOptions {
  url?: string;
  token?: string;
  timeout: number;
}

/** An answer of the endpoint with a 2xx status. */
export interface Reply {
  status: number;
  text: string;
}

/** The endpoint's URL, from `--url` or KCM_ADMIN_URL; a usage error when missing or not http(s). */
export function endpoint(globals: GlobalOptions): URL {
  const raw = globals.url ?? process.env.KCM_ADMIN_URL;
  if (raw === undefined || raw.trim() === '') {
    throw new CliError('No admin endpoint given: pass --url http://127.0.0.1:<port> or set KCM_ADMIN_URL.', EXIT_CODES.usage);
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new CliError(`Not a URL: ${JSON.stringify(raw)}. Pass --url http://127.0.0.1:<port>.`, EXIT_CODES.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`The admin endpoint URL must start with http:// or https://, got ${url.protocol}`, EXIT_CODES.usage);
  }
  return url;
}

/**
 * Sends one request to `path` under the endpoint, with the token and the `--timeout` deadline.
 * @throws CliError for 401/403 (auth), any other non-2xx answer (error), or no answer (unreachable, timeout).
 */
export async function request(globals: GlobalOptions, method: 'GET' | 'POST', path: string): Promise<Reply> {
  const base = endpoint(globals);
  const url = new URL(path, base.href.endsWith('/') ? base.href : `${base.href}/`);
  const token = globals.token ?? process.env.KCM_ADMIN_TOKEN;
  const headers: Record<string, string> = { Accept: 'application/json, text/plain' };
  if (token !== undefined && token !== '') headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(globals.timeout), redirect: 'error' });
    const text = await response.text();
    if (response.status === 401) {
      throw new CliError(
        `Authentication required (401) by ${base.origin}: ${token ? 'the endpoint did not accept the Authorization header' : 'pass --token or set KCM_ADMIN_TOKEN'}.`,
        EXIT_CODES.auth,
      );
    }
    if (response.status === 403) {
      throw new CliError(`Access refused (403) by ${base.origin}: ${serverMessage(text) ?? 'the token is wrong'}.`, EXIT_CODES.auth);
    }
    if (!response.ok) {
      throw new CliError(`${method} ${url.pathname} failed with HTTP ${response.status}: ${serverMessage(text) ?? text.slice(0, 200)}`, EXIT_CODES.error);
    }
    return { status: response.status, text };
  } catch (error) {
    throw failure(error, base, globals.timeout);
  }
}

/** The `error.message` of a JSON error reply, if it is one. */
function serverMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    return typeof body.error?.message === 'string' ? body.error.message : undefined;
  } catch {
    return undefined;
  }
}

/** Turns fetch's failures into messages an operator can act on, with their exit codes. */
function failure(error: unknown, base: URL, timeoutMs: number): CliError {
  if (error instanceof CliError) return error;
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code;
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new CliError(`No answer from ${base.origin} within ${timeoutMs} ms (--timeout).`, EXIT_CODES.timeout);
  }
  if (code === 'ECONNREFUSED') {
    return new CliError(`Connection refused by ${base.host}: is the service running, with the admin endpoint on this port?`, EXIT_CODES.unreachable);
  }
  if (code !== undefined && /^(ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE|ETIMEDOUT|UND_ERR_SOCKET|EPROTO|ERR_SSL)/.test(code)) {
    return new CliError(`Cannot reach ${base.origin}: ${err.cause?.message ?? code}.`, EXIT_CODES.unreachable);
  }
  return new CliError(`Request to ${base.origin} failed: ${err.cause?.message ?? err.message ?? String(error)}`, EXIT_CODES.unreachable);
}

/** The reply's body as JSON; an error when the endpoint did not answer JSON. */
export function parseJson<T>(reply: Reply): T {
  try {
    return JSON.parse(reply.text) as T;
  } catch {
    throw new CliError('The endpoint did not answer JSON: is this URL a knex-connection-manager admin endpoint?', EXIT_CODES.error);
  }
}
