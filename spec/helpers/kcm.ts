/**
 * Runs the `kcm` command line in a separate process (ts-node, as `npm run kcm` runs it), without the
 * KCM_ADMIN_* variables of the test process unless given.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'lib/cli/kcm.ts');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (bounded by `limitMs`, after which it is killed and the test fails). */
export function kcm(args: string[], env: Record<string, string | undefined> = {}, limitMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, KCM_ADMIN_URL: undefined, KCM_ADMIN_TOKEN: undefined, NO_COLOR: '1', ...env };
    for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const killer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcm ${args.join(' ')} did not finish within ${limitMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, limitMs);
    child.on('error', (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}
