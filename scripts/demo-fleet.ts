/**
 * The fleet demo (`npm run demo:fleet`): three processes of one service, each with its own manager
 * under a light load, steered as one through the database they share — no admin endpoint, no
 * port-forward. It shows the sessions each process holds, renews every connection of all three with
 * one signed command, shows a forged command being refused, and cleans up.
 *
 * It uses DATABASE_URL when set; otherwise it starts a throwaway server (scripts/embedded-db.ts) and
 * removes it at the end. Runs in about ten seconds and stops by itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { sendFleetCommand, type FleetSendResult } from '../lib/fleet/send';
import { readFleet } from '../lib/fleet/view';
import { startDemoDatabase, type DemoDatabase } from './embedded-db';

const SERVICE = 'orders-api';
const CHANNEL = 'kcm_fleet';
const PROCESSES = 3;
const plain = !process.stdout.isTTY || process.env.NO_COLOR !== undefined;
const bold = (s: string): string => (plain ? s : `\x1b[1m${s}\x1b[0m`);
const dim = (s: string): string => (plain ? s : `\x1b[2m${s}\x1b[0m`);
const say = (s = ''): void => void process.stdout.write(`${s}\n`);
const step = (n: number, title: string): void => say(`\n${bold(`── ${n}. ${title} ${'─'.repeat(Math.max(0, 70 - title.length))}`)}`);

interface Instance {
  child: ChildProcess;
  app: string;
  instance: string;
}

let database: DemoDatabase | undefined;
const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const started = Date.now();
  say(bold('knex-connection-manager: the fleet demo'));
  say(dim('Three processes of one service, each with its own connection manager, steered as one through the database.'));

  step(1, 'Database');
  const url = process.env.DATABASE_URL ?? (database = await startDemoDatabase()).url;
  say(`  ${database ? 'Started a throwaway PostgreSQL' : 'Using DATABASE_URL'}.`);

  step(2, `Start ${PROCESSES} processes of service "${SERVICE}"`);
  const token = randomBytes(18).toString('base64url');
  say(dim(`  each: getConnectionInstance({ connection, pool: { min: 2, max: 4 }, fleet: { service: '${SERVICE}', token } })`));
  say(dim('  and a light load of 4 workers. Each manager LISTENs on one extra session, named kcm-fleet:<service>:<instance>,'));
  say(dim('  and its pool sessions are named <name>@<instance>:<N>, so the database alone tells the instances apart.'));
  const instances = await Promise.all(Array.from({ length: PROCESSES }, (_, i) => start(i, url, token)));
  await showSessions(url);

  step(3, 'Renew every connection of every instance: one command');
  say(dim(`  KCM_FLEET_TOKEN=… kcm fleet renew --database-url $DATABASE_URL --service ${SERVICE}`));
  const before = await Promise.all(instances.map((p) => ask<{ ids: string[] }>(p, 'stats')));
  const renew = await sendFleetCommand({ connection: url, service: SERVICE, channel: CHANNEL, token, command: 'renew', timeoutMs: 5_000 });
  printReplies(renew);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await Promise.all(instances.map((p) => ask<{ ids: string[]; failures: number; queries: number }>(p, 'stats')));
  for (const [i, p] of instances.entries()) {
    const replaced = after[i].ids.filter((id) => !before[i].ids.includes(id)).length;
    say(`  ${p.instance}: ${replaced} of ${after[i].ids.length} connection(s) are new; ${after[i].queries} queries, ${after[i].failures} failed`);
  }
  say(dim('  The command is signed (HMAC-SHA256 with the shared token, a timestamp and a nonce): each instance checks it,'));
  say(dim('  runs triggerRenewConnections() on its pool, and replies, signed too. Queries kept running throughout.'));

  step(4, 'A forged command is refused');
  const forged = await sendFleetCommand({ connection: url, service: SERVICE, channel: CHANNEL, token: 'a-guess-at-the-token-000000', command: 'reset', timeoutMs: 1_000 });
  const refused = await Promise.all(instances.map((p) => ask<{ fleet?: { refused: number } }>(p, 'stats')));
  say(`  Sent with a wrong token: ${forged.replies.length} instance(s) answered, ${forged.missing.length} did not; each logged "Fleet command refused: bad signature" (refused: ${refused.map((r) => r.fleet?.refused ?? 0).join(', ')}).`);
  say(dim('  So can a stale command (sent more than 30 s from an instance\'s clock) or a replayed one (nonce already seen).'));

  step(5, 'Stop');
  await Promise.all(instances.map((p) => new Promise<void>((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.send({ kind: 'stop' });
  })));
  await database?.stop();
  database = undefined;
  say(`  Stopped the processes${process.env.DATABASE_URL ? '' : ' and removed the demo PostgreSQL server'}. Done in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  say(dim('  docs/fleet.md: the security model, PgBouncer, and sizing a fleet against max_connections.'));
}

function start(i: number, url: string, token: string): Promise<Instance> {
  const app = `orders-api-${i + 1}`;
  const child = fork(path.join(__dirname, 'fleet-instance.ts'), [url, SERVICE, CHANNEL, token, app], {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(child);
  return next<{ instance: string }>(child, 'ready').then(({ instance }) => ({ child, app, instance }));
}

function next<T>(child: ChildProcess, kind: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (message: { kind: string }): void => {
      if (message.kind !== kind) return;
      child.off('message', on);
      resolve(message as T);
    };
    child.on('message', on);
  });
}

function ask<T>(p: Instance, kind: string): Promise<T> {
  const reply = next<T>(p.child, kind);
  p.child.send({ kind });
  return reply;
}

async function showSessions(url: string): Promise<void> {
  const view = await readFleet(url, SERVICE);
  say('  What the database sees (kcm fleet --database-url $DATABASE_URL, read from pg_stat_activity alone):');
  for (const v of view.instances) {
    say(`    ${v.instance.padEnd(20)} pid ${String(v.pid).padEnd(7)} listening: ${v.listening ? 'yes' : 'no '}  sessions: ${v.sessions} (${v.active} active, ${v.idle} idle, ${v.idleInTransaction} idle in transaction)`);
  }
  for (const s of view.services) say(`    ${s.service}: ${s.instances} instances, ${s.sessions} sessions of max_connections ${view.maxConnections}`);
}

function printReplies(result: FleetSendResult): void {
  for (const r of result.replies) say(`  ${r.instance.padEnd(24)} ${r.ok ? `ok, ${r.count} connection(s) replaced` : `failed: ${r.error}`}`);
  for (const m of result.missing) say(`  ${m.padEnd(24)} no answer`);
  say(`  ${result.replies.length} of ${result.expected.length} instance(s) answered in ${result.durationMs.toFixed(0)} ms.`);
}

async function cleanUp(): Promise<void> {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await database?.stop().catch(() => undefined);
  database = undefined;
}

// Bounded: the demo stops itself after a minute whatever happens.
setTimeout(() => {
  console.error('The demo did not finish within 60 s.');
  void cleanUp().finally(() => process.exit(1));
}, 60_000).unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void cleanUp().finally(() => process.exit(130)));

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`The demo failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    void cleanUp().finally(() => process.exit(1));
  },
);
