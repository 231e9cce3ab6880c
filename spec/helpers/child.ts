/**
 * Runs a TypeScript script of spec/fixtures/ in a child process (ts-node, transpile only), for the
 * behaviours that only a whole process shows: a crash, an unhandled error, whether it exits by
 * itself. `killAfterMs` is a hang detector, not a speed threshold: past it the child is killed and
 * `killed` says so.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  killed: boolean;
}

export function runFixture(fixture: string, args: readonly string[], killAfterMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'spec', 'fixtures', fixture), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}
