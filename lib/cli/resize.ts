/**
 * `kcm resize --min N --max N`: changes the running service's default pool limits through its admin
 * endpoint (`POST /resize`); for every instance of a service at once, `kcm fleet resize`.
 */
import { Command, Option } from 'commander';
import { formatDuration, wholeNumber } from './format';
import { CliError, EXIT_CODES, parseJson, request, type GlobalOptions } from './http';

interface ResizeOptions {
  min?: number;
  max?: number;
  json?: boolean;
}

interface ResizeReply {
  closed: number;
  retiring: number;
  min: number;
  max: number;
  durationMs: number;
  pool: { total: number; idle: number; inUse: number; pending: number; waiting: number };
}

/** Where the CLI writes (kcm.ts's `Output`, which this file cannot import without a cycle). */
interface Output {
  out(text: string): void;
}

/** Adds `kcm resize` to `cli`; `run` receives the command's work. */
export function addResizeCommand(cli: Command, io: Output, run: (work: () => Promise<void>) => void): void {
  cli
    .command('resize')
    .description("change the default pool's min and max while it runs (shrinking closes idle connections now, checked-out ones on release)")
    .addOption(new Option('--min <n>', 'new pool.min').argParser(wholeNumber('--min', 0)))
    .addOption(new Option('--max <n>', 'new pool.max').argParser(wholeNumber('--max', 1)))
    .option('--json', "print the endpoint's JSON answer")
    .action((options: ResizeOptions, command: Command) => run(() => resize(command.optsWithGlobals<GlobalOptions>(), options, io)));
}

async function resize(globals: GlobalOptions, o: ResizeOptions, io: Output): Promise<void> {
  if (o.min === undefined && o.max === undefined) throw new CliError('kcm resize needs --min, --max or both.', EXIT_CODES.usage);
  const query = new URLSearchParams();
  if (o.min !== undefined) query.set('min', String(o.min));
  if (o.max !== undefined) query.set('max', String(o.max));
  const reply = await request(globals, 'POST', `resize?${query.toString()}`);
  if (o.json) {
    io.out(reply.text.trimEnd() + '\n');
    return;
  }
  const body = parseJson<ResizeReply>(reply);
  const p = body.pool;
  io.out(`Resized to min ${body.min}, max ${body.max} in ${formatDuration(body.durationMs)}: ${body.closed} idle connection(s) closed now, ${body.retiring} closing on release.\n` +
    `Pool now: ${p.total} open (${p.inUse} in use, ${p.idle} idle), ${p.pending} opening, ${p.waiting} waiting.\n`);
}
