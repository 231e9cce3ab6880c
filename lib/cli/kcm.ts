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
import type { ManagerPoolStats } from '../pool/stats';
import { formatDuration, formatStats } from './format';
import { CliError, endpoint, EXIT_CODES, parseJson, request, type GlobalOptions } from './http';

export { EXIT_CODES } from './http';
export { formatDuration, formatStats } from './format';

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
