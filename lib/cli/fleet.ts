/**
 * `kcm fleet reset|expire|renew|resize`: one command for every instance of a service, through the
 * database they share (lib/fleet): no admin endpoint, no port-forward. The command is signed with the
 * fleet token (`--fleet-token` or KCM_FLEET_TOKEN); each instance replies, and the answer lists every
 * instance with its result and those that did not answer within `--timeout`.
 *
 * Exit codes: 0 every listening instance answered ok; 1 one failed or did not answer, or none listens;
 * 2 bad usage; 4 the database is unreachable.
 */
import { Command, Option } from 'commander';
import { FLEET_COMMANDS, type FleetCommandName } from '../fleet/protocol';
import { sendFleetCommand, type FleetSendResult } from '../fleet/send';
import { readFleet, type FleetView } from '../fleet/view';
import { DEFAULT_FLEET_CHANNEL } from '../fleet/options';
import { formatDuration, printable, table, wholeNumber } from './format';
import { CliError, EXIT_CODES, type GlobalOptions } from './http';

/** Where the CLI writes (kcm.ts's `Output`, which this file cannot import without a cycle). */
interface Output {
  out(text: string): void;
}

interface FleetOptions {
  databaseUrl?: string;
  service?: string;
  channel: string;
  fleetToken?: string;
  min?: number;
  max?: number;
  json?: boolean;
}

const DESCRIPTIONS: Record<FleetCommandName, string> = {
  reset: 'reset the default pool of every instance of the service',
  expire: 'run the expiry sweep on every instance of the service',
  renew: 'replace every connection of every instance of the service',
  resize: 'change pool.min/pool.max of every instance of the service (--min, --max)',
};

/** Adds `kcm fleet` and `kcm fleet <command>` to `cli`; `run` receives each command's work. */
export function addFleetCommands(cli: Command, io: Output, run: (work: () => Promise<void>) => void): void {
  const fleet = cli.command('fleet')
    .description('every manager instance connected to a database (from pg_stat_activity); with a command, steer every instance of a service at once (docs/fleet.md)')
    .addOption(new Option('--database-url <url>', 'the database the instances use').env('KCM_FLEET_DATABASE_URL'))
    .addOption(new Option('--service <name>', 'only the instances of this service'))
    .option('--json', 'print the view as JSON')
    .action((options: FleetOptions) => run(() => list(options, io)));
  for (const name of FLEET_COMMANDS) {
    const command = fleet
      .command(name)
      .description(DESCRIPTIONS[name])
      .addOption(new Option('--database-url <url>', 'the database the instances use (directly, not through PgBouncer in transaction mode)').env('KCM_FLEET_DATABASE_URL'))
      .addOption(new Option('--service <name>', "the instances' fleet.service"))
      .addOption(new Option('--channel <name>', "the instances' fleet.channel").default(DEFAULT_FLEET_CHANNEL))
      .addOption(new Option('--fleet-token <token>', 'the fleet token (prefer the environment variable)').env('KCM_FLEET_TOKEN'))
      .option('--json', 'print the result as JSON');
    if (name === 'resize') {
      command.addOption(new Option('--min <n>', 'new pool.min').argParser(wholeNumber('--min', 0)));
      command.addOption(new Option('--max <n>', 'new pool.max').argParser(wholeNumber('--max', 1)));
    }
    // The parent `kcm fleet` takes --database-url, --service and --json too: read them wherever given.
    command.action((_options: FleetOptions, cmd: Command) => run(() => send(cmd.optsWithGlobals<GlobalOptions>(), name, cmd.optsWithGlobals<FleetOptions>(), io)));
  }
}

async function send(globals: GlobalOptions, name: FleetCommandName, o: FleetOptions, io: Output): Promise<void> {
  if (!o.databaseUrl) throw new CliError('No database given: pass --database-url postgres://… or set KCM_FLEET_DATABASE_URL.', EXIT_CODES.usage);
  if (!o.service) throw new CliError("No service given: pass --service NAME (the instances' fleet.service).", EXIT_CODES.usage);
  if (!o.fleetToken) throw new CliError('No fleet token given: set KCM_FLEET_TOKEN (or pass --fleet-token).', EXIT_CODES.usage);
  if (name === 'resize' && o.min === undefined && o.max === undefined) throw new CliError('kcm fleet resize needs --min, --max or both.', EXIT_CODES.usage);
  const args = name === 'resize' ? { ...(o.min === undefined ? {} : { min: o.min }), ...(o.max === undefined ? {} : { max: o.max }) } : undefined;
  let result: FleetSendResult;
  try {
    result = await sendFleetCommand({ connection: o.databaseUrl, service: o.service, channel: o.channel, token: o.fleetToken, command: name, args, timeoutMs: globals.timeout });
  } catch (error) {
    throw new CliError(`Cannot reach the database: ${error instanceof Error ? error.message : String(error)}`, EXIT_CODES.unreachable);
  }
  const failed = result.replies.filter((r) => !r.ok);
  if (o.json) {
    io.out(JSON.stringify({ command: name, service: o.service, expected: result.expected, replies: result.replies, missing: result.missing, durationMs: result.durationMs }) + '\n');
  } else if (result.expected.length === 0) {
    io.out(`No instance of service ${printable(o.service)} listens on channel ${printable(o.channel)} of this database.\n`);
  } else {
    const rows = [
      ...result.replies.map((r) => [printable(r.instance), r.ok ? 'ok' : 'failed', r.ok ? String(r.count ?? 0) : printable(r.error ?? '')]),
      ...result.missing.map((i) => [printable(i), 'no answer', '']),
    ];
    io.out(`${table(['INSTANCE', 'RESULT', 'COUNT / ERROR'], rows, new Set()).join('\n')}\n`);
    io.out(`${name}: ${result.replies.length - failed.length} of ${result.expected.length} instance(s) done in ${formatDuration(result.durationMs)}` +
      `${failed.length ? `, ${failed.length} failed` : ''}${result.missing.length ? `, ${result.missing.length} did not answer within ${globals.timeout} ms` : ''}.\n`);
  }
  if (result.expected.length === 0 || failed.length > 0 || result.missing.length > 0) throw new CliError('', EXIT_CODES.error);
}

async function list(o: FleetOptions, io: Output): Promise<void> {
  if (!o.databaseUrl) throw new CliError('No database given: pass --database-url postgres://… or set KCM_FLEET_DATABASE_URL.', EXIT_CODES.usage);
  let view: FleetView;
  try {
    view = await readFleet(o.databaseUrl, o.service);
  } catch (error) {
    throw new CliError(`Cannot reach the database: ${error instanceof Error ? error.message : String(error)}`, EXIT_CODES.unreachable);
  }
  if (o.json) {
    io.out(JSON.stringify(view) + '\n');
    return;
  }
  if (view.instances.length === 0) {
    io.out(`No manager instance${o.service ? ` of service ${printable(o.service)}` : ''} is connected (${view.totalSessions} session(s) of ${view.maxConnections} max_connections).\n`);
    return;
  }
  const now = Date.now();
  const rows = view.instances.map((v) => [
    printable(v.service), printable(v.instance), printable(v.host), String(v.pid), v.listening ? 'yes' : 'no',
    String(v.sessions), String(v.active), String(v.idle), String(v.idleInTransaction), v.oldestTransaction ? formatDuration(now - v.oldestTransaction.getTime()) : '-',
  ]);
  io.out(`${table(['SERVICE', 'INSTANCE', 'HOST', 'PID', 'LISTENING', 'SESSIONS', 'ACTIVE', 'IDLE', 'IDLE IN TX', 'OLDEST TX'], rows, new Set([3, 5, 6, 7, 8])).join('\n')}\n`);
  for (const s of view.services) {
    io.out(`${printable(s.service)}: ${s.instances} instance(s), ${s.sessions} session(s) (${Math.round((100 * s.sessions) / view.maxConnections)}% of max_connections ${view.maxConnections}).\n`);
  }
  io.out(`The server: ${view.totalSessions} client session(s) of ${view.maxConnections}.\n`);
}

