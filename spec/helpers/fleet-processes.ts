/**
 * Instances of a service in child processes (scripts/fleet-instance.ts), driven over IPC, for the
 * multi-process fleet tests. Each is bounded in time by the script itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { until } from './poll';

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'fleet-instance.ts');
const children: ChildProcess[] = [];

export interface Instance {
  child: ChildProcess;
  app: string;
  instance: string;
  next<T>(kind: string): Promise<T>;
}

export interface InstanceStats {
  ids: string[];
  queries: number;
  failures: number;
  max: number;
}

/** Starts instance `i` of service "orders"; resolves once its fleet listener listens. */
export function startInstance(i: number, url: string, channel: string, token: string, behind?: { mode: string; directUrl: string }): Promise<Instance> {
  const app = `kcm-fleet-proc-${i}`;
  const extra = behind === undefined ? [] : [behind.mode, behind.directUrl];
  const child = fork(SCRIPT, [url, 'orders', channel, token, app, ...extra], { execArgv: ['-r', 'ts-node/register/transpile-only'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const next = <T>(kind: string): Promise<T> => new Promise((resolve) => {
    const on = (message: { kind: string }): void => {
      if (message.kind !== kind) return;
      child.off('message', on);
      resolve(message as T);
    };
    child.on('message', on);
  });
  return next<{ instance: string }>('ready').then(({ instance }) => ({ child, app, instance, next }));
}

/** The instance's connection ids, query counts and max. */
export function instanceStats(p: Instance): Promise<InstanceStats> {
  const reply = p.next<InstanceStats>('stats');
  p.child.send({ kind: 'stats' });
  return reply;
}

/** Stops an instance cleanly (its manager closed). */
export function stopInstance(p: Instance): Promise<void> {
  return new Promise<void>((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.send({ kind: 'stop' });
  });
}

/** Kills whatever instance is still running (afterAll). */
export function killInstances(): void {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}

/** Waits until every connection of every instance is a new one (none of `before`'s ids left). */
export function untilAllReplaced(instances: readonly Instance[], before: readonly InstanceStats[]): Promise<void> {
  return until(async () => {
    const now = await Promise.all(instances.map(instanceStats));
    return now.every((s, i) => s.ids.length > 0 && s.ids.every((id) => !before[i].ids.includes(id)));
  }, { timeoutMs: 10_000, intervalMs: 20, description: 'every connection of every process replaced' });
}

