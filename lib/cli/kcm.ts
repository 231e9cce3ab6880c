#!/usr/bin/env node
/**
 * `kcm`: the command line of the admin endpoint. It shows and steers the pool of a running service
 * from another process:
 *
 *   kcm stats [--pool NAME] [--watch] [--json]   connections (in creation order), gauges and
 *                                  counters; with named pools a line per pool and the budget first
 *   kcm reset | expire | renew [--pool NAME | --all-pools]   run the admin trigger, say what it did
 *   kcm metrics                    the Prometheus text, as scraped
 *   kcm inspect [--json]           each connection with its server session (pg_stat_activity), and
 *                                  sessions under the manager's prefix that no connection owns
 *
 * The endpoint comes from `--url` or KCM_ADMIN_URL, the token from `--token` or KCM_ADMIN_TOKEN
 * (prefer the variable: command lines are visible to other users in `ps`). Exit codes: 0 done,
 * 1 the endpoint answered with an error, 2 bad usage, 3 authentication refused (401/403),
 * 4 endpoint unreachable, 5 no answer within `--timeout`.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ManagerPoolStats } from '../pool/stats';
import { formatDuration, formatStats, printable, table, wholeNumber } from './format';
import { formatInspect, type InspectReply } from './format-inspect';
import { CliError, endpoint, EXIT_CODES, parseJson, request, type GlobalOptions } from './http';
import { addFleetCommands } from './fleet';
import { addResizeCommand } from './resize';

export { EXIT_CODES } from './http';
export { formatDuration, formatStats } from './format';

interface StatsOptions {
  pool?: string;
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

async function stats(globals: GlobalOptions, options: StatsOptions, io: Output): Promise<void> {
  const show = async () => {
    const path = options.pool === undefined ? 'stats' : `stats?pool=${encodeURIComponent(options.pool)}`;
    const body = parseJson<ManagerPoolStats>(await request(globals, 'GET', path));
    if (options.json) {
      io.out(JSON.stringify(body) + '\n');
      return;
    }
    const text = formatStats(body, options.pool);
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

type Gauges = { total: number; idle: number; inUse: number; pending: number; waiting: number };
type Counts = { evicted?: number; retired?: number; renewed?: number };

interface TriggerReply extends Counts {
  ok: boolean;
  action: string;
  durationMs: number;
  /** Which pool ran it (absent from endpoints older than named pools, and with --all-pools). */
  poolName?: string;
  pool?: Gauges;
  /** With --all-pools: each pool's count and gauges. */
  pools?: Record<string, Counts & { pool?: Gauges }>;
}

interface TriggerOptions {
  json?: boolean;
  pool?: string;
  allPools?: boolean;
}

type Action = 'reset' | 'expire' | 'renew';

async function trigger(globals: GlobalOptions, action: Action, options: TriggerOptions, io: Output): Promise<void> {
  const query = options.allPools ? '?allPools=true' : options.pool !== undefined ? `?pool=${encodeURIComponent(options.pool)}` : '';
  const reply = await request(globals, 'POST', `${action}${query}`);
  if (options.json) {
    io.out(reply.text.trimEnd() + '\n');
    return;
  }
  const body = parseJson<TriggerReply>(reply);
  const count = (counts: Counts): number => (action === 'reset' ? counts.evicted : action === 'expire' ? counts.retired : counts.renewed) ?? 0;
  const n = count(body);
  const pools = Object.entries(body.pools ?? {});
  const label = `${action === 'reset' ? 'Reset' : action === 'expire' ? 'Expiry sweep' : 'Renewal'}${options.allPools ? ` on every pool (${pools.length})` : ''}`;
  const what =
    action === 'reset' ? `${label}: ${n} connection(s) evicted (checked-out ones close when released), ${options.allPools ? 'pools' : 'pool'} refilled`
    : action === 'expire' ? `${label}: ${n} connection(s) retired`
    : `${label}: ${n} connection(s) being replaced (checked-out ones when released)`;
  if (options.allPools) {
    const rows = pools.map(([name, r]) => {
      const p = r.pool;
      return [printable(name), String(count(r)), ...(p ? [p.total, p.inUse, p.idle, p.pending, p.waiting].map(String) : ['-', '-', '-', '-', '-'])];
    });
    const header = ['POOL', action === 'reset' ? 'EVICTED' : action === 'expire' ? 'RETIRED' : 'RENEWED', 'OPEN', 'IN USE', 'IDLE', 'PENDING', 'WAITING'];
    io.out(`${what} in ${formatDuration(body.durationMs)}.\n${table(header, rows, new Set([1, 2, 3, 4, 5, 6])).join('\n')}\n`);
    return;
  }
  const p = body.pool ?? { total: 0, idle: 0, inUse: 0, pending: 0, waiting: 0 };
  const which = options.pool === undefined ? 'Pool' : `Pool ${printable(options.pool)}`;
  io.out(`${what} in ${formatDuration(body.durationMs)}.\n${which} now: ${p.total} open (${p.inUse} in use, ${p.idle} idle), ${p.pending} opening, ${p.waiting} waiting.\n`);
}

function poolName(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('--pool needs the name of a pool (kcm stats lists them).');
  return value;
}

/** Builds the command line program; `run` receives each command's work. */
function program(io: Output, run: (work: () => Promise<void>) => void): Command {
  const cli = new Command('kcm')
    .description('Show and steer the connection pool of a running service through its admin endpoint.')
    .addOption(new Option('-u, --url <url>', 'admin endpoint, e.g. http://127.0.0.1:9187').env('KCM_ADMIN_URL'))
    .addOption(new Option('-t, --token <token>', 'admin token (prefer the environment variable)').env('KCM_ADMIN_TOKEN'))
    .addOption(new Option('--timeout <ms>', 'give up after this long').default(5000).argParser(wholeNumber('--timeout', 1)))
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(kcm --help lists the commands and options)')
    .exitOverride();
  cli.addHelpText(
    'after',
    '\nkcm fleet reset|expire|renew|resize --service NAME steers every instance of a service through the database\n(KCM_FLEET_DATABASE_URL, KCM_FLEET_TOKEN; no admin endpoint needed).\n' +
      '\nWith named pools: kcm stats --pool NAME shows one pool; kcm reset|expire|renew --pool NAME runs on one pool,\n--all-pools on every open pool (not both).\n' +
      '\nExit codes: 0 done, 1 the endpoint answered an error (such as an unknown pool), 2 bad usage, 3 authentication refused (401/403),\n4 endpoint unreachable, 5 no answer within --timeout.',
  );

  cli
    .command('stats')
    .description('pool gauges, counters and every connection, in creation order')
    .option('-p, --pool <name>', 'that pool only (default: the default pool, and with named pools a line per pool)', poolName)
    .option('-w, --watch', 'refresh until interrupted')
    .option('--json', 'print the stats as JSON (one line per refresh with --watch)')
    .addOption(new Option('--interval <ms>', 'refresh period with --watch').default(1000).argParser(wholeNumber('--interval', 250)))
    .addOption(new Option('--count <n>', 'with --watch: stop after n refreshes').argParser(wholeNumber('--count', 1)))
    .action((options: StatsOptions, command: Command) => run(() => stats(command.optsWithGlobals<GlobalOptions>(), options, io)));

  const triggers: Array<[Action, string]> = [
    ['reset', 'close every connection (checked-out ones when released) and refill to min'],
    ['expire', 'run the expiry sweep now: max lifetime and idle timeout'],
    ['renew', 'replace every connection with a fresh one without lowering capacity'],
  ];
  for (const [name, description] of triggers) {
    cli
      .command(name)
      .description(description)
      .option('--json', 'print the endpoint\'s JSON answer')
      .addOption(new Option('-p, --pool <name>', 'run it on this pool (default: the default pool)').argParser(poolName).conflicts('allPools'))
      .addOption(new Option('--all-pools', 'run it on every open pool, one after another').conflicts('pool'))
      .action((options: TriggerOptions, command: Command) => run(() => trigger(command.optsWithGlobals<GlobalOptions>(), name, options, io)));
  }

  addResizeCommand(cli, io, run);
  addFleetCommands(cli, io, run);

  cli
    .command('inspect')
    .description('each connection joined with its server session (state, statement, wait, transaction age), and unowned sessions')
    .option('--json', 'print the answer as JSON')
    .action((options: { json?: boolean }, command: Command) =>
      run(async () => {
        const body = parseJson<InspectReply>(await request(command.optsWithGlobals<GlobalOptions>(), 'GET', 'inspect'));
        io.out(options.json ? JSON.stringify(body) + '\n' : formatInspect(body));
      }),
    );
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
      // An empty message: the command already said what went wrong (kcm fleet's table).
      if (error.message !== '') io.err(`kcm: ${error.message}\n`);
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
