/**
 * Transpiles lib/ and scripts/bench/ to plain JavaScript once per run, so each child process starts
 * with `node` alone: registering ts-node in every child would add most of a second per child
 * (startup only — the measured windows exclude it either way — but it adds up over ~100 children).
 * The output goes under node_modules/.cache so that `require('pg')` and friends resolve as usual.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

/** The transpiled tree: `<dir>/lib/...` and `<dir>/scripts/bench/...`. */
export interface Build {
  dir: string;
  runner: string;
  /** Which lib/ was built: a commit, and whether the working tree differed from it. */
  source: string;
  remove(): void;
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...tsFiles(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/**
 * Transpiles scripts/bench/ from the working tree and lib/ from the working tree, or from the git
 * commit `ref` when given (to benchmark a committed version while lib/ is being edited).
 */
export function buildForChildren(ref?: string): Build {
  const ts = require('typescript') as typeof import('typescript');
  // One directory per build: a run may build two trees (the working tree and BENCH_BEFORE).
  const dir = path.join(ROOT, 'node_modules', '.cache', 'kcm-bench', `run-${process.pid}${ref ? `-${ref.replace(/[^A-Za-z0-9._-]/g, '_')}` : ''}`);
  rmSync(dir, { recursive: true, force: true });
  const compilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
    sourceMap: false,
  };
  const sources = new Map<string, () => string>();
  let source: string;
  if (ref) {
    const commit = git(['rev-parse', '--short', `${ref}^{commit}`]).trim();
    for (const file of git(['ls-tree', '-r', '--name-only', commit, '--', 'lib']).split('\n')) {
      if (file.endsWith('.ts') && !file.endsWith('.d.ts')) sources.set(file, () => git(['show', `${commit}:${file}`]));
    }
    source = `lib/ at ${ref} (commit ${commit})`;
  } else {
    for (const file of tsFiles(path.join(ROOT, 'lib'))) sources.set(path.relative(ROOT, file), () => readFileSync(file, 'utf8'));
    let commit = 'unknown commit';
    let dirty = false;
    try {
      commit = `commit ${git(['rev-parse', '--short', 'HEAD']).trim()}`;
      dirty = git(['status', '--porcelain', '--', 'lib']).trim() !== '';
    } catch {
      // not a git checkout
    }
    source = `lib/ from the working tree at ${commit}${dirty ? ', with uncommitted changes' : ''}`;
  }
  for (const file of tsFiles(path.join(ROOT, 'scripts', 'bench'))) sources.set(path.relative(ROOT, file), () => readFileSync(file, 'utf8'));
  for (const [relative, read] of sources) {
    const { outputText } = ts.transpileModule(read(), { compilerOptions, fileName: relative });
    const target = path.join(dir, relative.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  return {
    dir,
    runner: path.join(dir, 'scripts', 'bench', 'runner.js'),
    source,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
