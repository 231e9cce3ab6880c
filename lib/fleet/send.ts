/**
 * The sending side of a fleet command (`kcm fleet reset|expire|renew|resize`): one session to the
 * database that LISTENs on the command's reply channel, reads which instances of the service are
 * listening (their sessions in pg_stat_activity, named by listener.ts), NOTIFYs the signed command,
 * and collects the signed replies until every listening instance has answered or the deadline
 * passes. Replies that do not verify are ignored.
 */
import { Client, type ClientConfig, type Notification } from 'pg';
import { LISTENER_PREFIX } from './listener';
import { signCommand, verifyReply, type FleetCommand, type FleetCommandName, type FleetReply } from './protocol';

export interface FleetSendOptions {
  /** The database the instances are connected to (directly: PgBouncer in transaction mode cannot LISTEN). */
  connection: string | ClientConfig;
  service: string;
  channel: string;
  token: string;
  command: FleetCommandName;
  args?: { min?: number; max?: number };
  /** How long to wait for the replies. */
  timeoutMs: number;
}

export interface FleetSendResult {
  command: FleetCommand;
  /** Instances listening when the command was sent. */
  expected: string[];
  /** Their replies (and any from instances that started listening meanwhile), in arrival order. */
  replies: FleetReply[];
  /** Listening instances that did not answer within the deadline. */
  missing: string[];
  /** From the NOTIFY to the last reply (or the deadline). */
  durationMs: number;
}

export async function sendFleetCommand(o: FleetSendOptions): Promise<FleetSendResult> {
  const settings: ClientConfig = typeof o.connection === 'string' ? { connectionString: o.connection } : { ...o.connection };
  const client = new Client({ ...settings, application_name: 'kcm-fleet-cli' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const command = signCommand(o.token, o.command, o.service, o.args, Date.now());
    const replies = new Map<string, FleetReply>();
    let expected: string[] = [];
    let allIn: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (allIn = resolve));
    client.on('notification', (message: Notification) => {
      if (message.channel !== command.reply || message.payload === undefined) return;
      const reply = verifyReply(message.payload, o.token, command.nonce);
      if (reply === undefined || replies.has(reply.instance)) return;
      replies.set(reply.instance, reply);
      if (expected.every((instance) => replies.has(instance))) allIn();
    });
    await client.query(`LISTEN "${command.reply}"`);
    const prefix = `${LISTENER_PREFIX}:${o.service}:`;
    const { rows } = await client.query<{ name: string }>(
      "SELECT application_name AS name FROM pg_stat_activity WHERE backend_type = 'client backend' AND starts_with(application_name, $1)",
      [prefix],
    );
    expected = rows.map((r) => r.name.slice(prefix.length));
    const started = performance.now();
    await client.query('SELECT pg_notify($1, $2)', [o.channel, JSON.stringify(command)]);
    let timer: NodeJS.Timeout | undefined;
    if (expected.length > 0) {
      await Promise.race([answered, new Promise<void>((resolve) => (timer = setTimeout(resolve, o.timeoutMs)))]);
      clearTimeout(timer);
    }
    const durationMs = performance.now() - started;
    return { command, expected, replies: [...replies.values()], missing: expected.filter((i) => !replies.has(i)), durationMs };
  } finally {
    await client.end().catch(() => undefined);
  }
}
