#!/usr/bin/env node
/**
 * `kcm`: the command line of the admin endpoint. It shows and steers the pool of a running service
 * from another process:
 *
 *   kcm stats [--watch] [--json]   connections (in creation order), gauges and counters
 *   kcm reset | expire | renew     run the admin trigger, say what it did
 *   kcm metrics                    the Prometheus text, as scraped
 *
 * The endpoint comes from `--url` or KCM_ADMIN_URL, the token from `--token` or KCM_ADMIN_TOKEN
 * (prefer the variable: command lines are visible to other users in `ps`). Exit codes: 0 done,
 * 1 the endpoint answered with an error, 2 bad usage, 3 authentication refused (401/403),
 * 4 endpoint unreachable, 5 no answer within `--timeout`.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ManagerPoolStats, PoolStats, ReplicaPoolStats } from '../pool/stats';

/** The exit codes, for scripts. */
export const EXIT_CODES = { ok: 0, error: 1, usage: 2, auth: 3, unreachable: 4, timeout: 5 } as const;

/** An error that ends the program with a message and an exit code. */
class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

interface GlobalOptions {
  url?: string;
  token?: string;
  timeout: number;
}

interface StatsOptions {
  watch?: boolean;
  json?: boolean;
  interval: number;
  count?: number;
}

/** Where the CLI writes; replaceable so it can be driven in-process. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
}

const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTTY: process.stdout.isTTY === true,
};

// ── HTTP ─────────────────────────────────────────────────────────────────────────────────────────

interface Reply {
  status: number;
  text: string;
}

function endpoint(globals: GlobalOptions): URL {
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

async function request(globals: GlobalOptions, method: 'GET' | 'POST', path: string): Promise<Reply> {
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
    throw classify(error, base, globals.timeout);
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
function classify(error: unknown, base: URL, timeoutMs: number): CliError {
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

function parseJson<T>(reply: Reply): T {
  try {
    return JSON.parse(reply.text) as T;
  } catch {
    throw new CliError('The endpoint did not answer JSON: is this URL a knex-connection-manager admin endpoint?', EXIT_CODES.error);
  }
}

// ── human output ─────────────────────────────────────────────────────────────────────────────────

/** `850 ms`, `12.3 s`, `2m 03s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    '  ' + cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * How long ago a connection was last checked out or returned, by the service's clock: its
 * `createdAt + ageMs` is the moment the snapshot was taken (in JSON the dates are strings).
 */
function sinceLastUse(conn: PoolStats['connections'][number]): number {
  const created = new Date(conn.createdAt).getTime();
  const lastUsed = new Date(conn.lastUsed).getTime();
  return Math.max(0, created + conn.ageMs - lastUsed);
}

function describePool(name: string, stats: PoolStats, replica?: ReplicaPoolStats): string[] {
  const c = stats.counters;
  const lines: string[] = [];
  let title = name;
  if (replica) {
    title += replica.healthy ? ' (replica, healthy' : ` (replica, OUT OF ROTATION${replica.unhealthyReason ? `: ${replica.unhealthyReason}` : ''}`;
    title += replica.lagMs === null ? ')' : `, lag ${formatDuration(replica.lagMs)})`;
  }
  lines.push(title);
  lines.push(
    `  open ${stats.total}/${stats.max} (min ${stats.min})   in use ${stats.inUse}   idle ${stats.idle}   pending ${stats.pending}   waiting ${stats.waiting}`,
  );
  const avg = stats.wait.count > 0 ? stats.wait.totalMs / stats.wait.count : 0;
  lines.push(
    `  acquired ${c.acquired}   timed out ${c.timedOut}   aborted ${c.aborted}   waits ${stats.wait.count}` +
      (stats.wait.count > 0 ? ` (avg ${formatDuration(avg)}, max ${formatDuration(stats.wait.maxMs)})` : '') +
      `   created ${c.created}   destroyed ${c.destroyed}   create errors ${c.createErrors}`,
  );
  lines.push('');
  if (stats.connections.length === 0) {
    lines.push('  (no open connections)');
  } else {
    const rows = stats.connections.map((conn, i) => [
      String(i + 1),
      conn.id,
      conn.inUse ? 'in use' : 'idle',
      formatDuration(conn.ageMs),
      conn.inUse ? '-' : formatDuration(conn.idleMs),
      conn.inUse ? formatDuration(sinceLastUse(conn)) : '-',
    ]);
    lines.push(...table(['#', 'ID', 'STATE', 'AGE', 'IDLE FOR', 'IN USE FOR'], rows, new Set([0, 3, 4, 5])));
  }
  return lines;
}

/** The human-readable stats: every pool's summary and its connections in creation (B-tree) order. */
export function formatStats(stats: ManagerPoolStats): string {
  const lines = describePool('primary', stats);
  for (const [name, replica] of Object.entries(stats.replicas ?? {})) {
    lines.push('', ...describePool(name, replica, replica));
  }
  return lines.join('\n') + '\n';
}

// ── commands ─────────────────────────────────────────────────────────────────────────────────────

async function stats(globals: GlobalOptions, options: StatsOptions, io: Output): Promise<void> {
  const show = async () => {
    const body = parseJson<ManagerPoolStats>(await request(globals, 'GET', 'stats'));
    if (options.json) {
      io.out(JSON.stringify(body) + '\n');
      return;
    }
    const text = formatStats(body);
    if (options.watch) {
      const stamp = `${new Date().toISOString()}  ${endpoint(globals).origin}  (every ${options.interval} ms; Ctrl-C to stop)\n\n`;
      io.out(io.isTTY ? `\x1b[H\x1b[2J${stamp}${text}` : `${stamp}${text}\n`);
    } else {
      io.out(text);
    }
  };
  if (!options.watch) return show();
  const rounds = options.count ?? Number.POSITIVE_INFINITY;
  for (let round = 1; round <= rounds; round++) {
    try {
      await show();
    } catch (error) {
      // A restart of the service should not end the watch; a refused token should.
      if (!(error instanceof CliError) || error.exitCode === EXIT_CODES.auth || error.exitCode === EXIT_CODES.usage) throw error;
      io.err(`${new Date().toISOString()}  ${error.message} (retrying)\n`);
    }
    if (round < rounds) await new Promise((resolve) => setTimeout(resolve, options.interval));
  }
}

interface TriggerReply {
  ok: boolean;
  action: string;
  evicted?: number;
  retired?: number;
  renewed?: number;
  durationMs: number;
  pool: { total: number; idle: number; inUse: number; pending: number; waiting: number };
}

async function trigger(globals: GlobalOptions, action: 'reset' | 'expire' | 'renew', json: boolean | undefined, io: Output): Promise<void> {
  const reply = await request(globals, 'POST', action);
  if (json) {
    io.out(reply.text.trimEnd() + '\n');
    return;
  }
  const body = parseJson<TriggerReply>(reply);
  const what =
    action === 'reset' ? `Reset: ${body.evicted ?? 0} connection(s) evicted (checked-out ones close when released), pool refilled`
    : action === 'expire' ? `Expiry sweep: ${body.retired ?? 0} connection(s) retired`
    : `Renewal: ${body.renewed ?? 0} connection(s) being replaced (checked-out ones when released)`;
  const p = body.pool;
  io.out(`${what} in ${formatDuration(body.durationMs)}.\nPool now: ${p.total} open (${p.inUse} in use, ${p.idle} idle), ${p.pending} opening, ${p.waiting} waiting.\n`);
}

function positiveInteger(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}.`);
    return n;
  };
}

/** Builds the command line program; `run` receives each command's work. */
function program(io: Output, run: (work: () => Promise<void>) => void): Command {
  const cli = new Command('kcm')
    .description('Show and steer the connection pool of a running service through its admin endpoint.')
    .addOption(new Option('-u, --url <url>', 'admin endpoint, e.g. http://127.0.0.1:9187').env('KCM_ADMIN_URL'))
    .addOption(new Option('-t, --token <token>', 'admin token (prefer the environment variable)').env('KCM_ADMIN_TOKEN'))
    .addOption(new Option('--timeout <ms>', 'give up after this long').default(5000).argParser(positiveInteger('--timeout', 1)))
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(kcm --help lists the commands and options)')
    .exitOverride();
  cli.addHelpText(
    'after',
    '\nExit codes: 0 done, 1 the endpoint answered an error, 2 bad usage, 3 authentication refused (401/403),\n4 endpoint unreachable, 5 no answer within --timeout.',
  );

  cli
    .command('stats')
    .description('pool gauges, counters and every connection, in creation order')
    .option('-w, --watch', 'refresh until interrupted')
    .option('--json', 'print the stats as JSON (one line per refresh with --watch)')
    .addOption(new Option('--interval <ms>', 'refresh period with --watch').default(1000).argParser(positiveInteger('--interval', 250)))
    .addOption(new Option('--count <n>', 'with --watch: stop after n refreshes').argParser(positiveInteger('--count', 1)))
    .action((options: StatsOptions, command: Command) => run(() => stats(command.optsWithGlobals<GlobalOptions>(), options, io)));

  const triggers: Array<['reset' | 'expire' | 'renew', string]> = [
    ['reset', 'close every connection (checked-out ones when released) and refill to min'],
    ['expire', 'run the expiry sweep now: max lifetime and idle timeout'],
    ['renew', 'replace every connection with a fresh one without lowering capacity'],
  ];
  for (const [name, description] of triggers) {
    cli
      .command(name)
      .description(description)
      .option('--json', 'print the endpoint\'s JSON answer')
      .action((options: { json?: boolean }, command: Command) => run(() => trigger(command.optsWithGlobals<GlobalOptions>(), name, options.json, io)));
  }

  cli
    .command('metrics')
    .description('the Prometheus metrics, as a scraper sees them')
    .action((_options: unknown, command: Command) =>
      run(async () => {
        io.out((await request(command.optsWithGlobals<GlobalOptions>(), 'GET', 'metrics')).text);
      }),
    );
  return cli;
}

/** Runs the CLI with `argv` (as in `process.argv`); resolves to the exit code. */
export async function main(argv: readonly string[], io: Output = processOutput): Promise<number> {
  let work: (() => Promise<void>) | undefined;
  const cli = program(io, (w) => {
    work = w;
  });
  try {
    await cli.parseAsync(argv as string[]);
    if (!work) {
      io.err(cli.helpInformation());
      return EXIT_CODES.usage;
    }
    await work();
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? EXIT_CODES.ok : EXIT_CODES.usage;
    }
    if (error instanceof CliError) {
      io.err(`kcm: ${error.message}\n`);
      return error.exitCode;
    }
    io.err(`kcm: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_CODES.error;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
