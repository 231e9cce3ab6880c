#!/usr/bin/env node
/**
 * Reports import cycles among the modules under lib/ (type-only imports included: a cycle of types
 * still ties the modules' designs together). Prints each strongly connected group and one cycle
 * through it; exits 1 when there is any.
 *
 *   node scripts/check-cycles.js [dir]      (default: lib)
 *
 * The imports are read with TypeScript's own pre-processor, so comments and strings never count.
 */
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(process.argv[2] || path.join(__dirname, '..', 'lib'));

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return /\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The module file a relative specifier names, or undefined for packages and missing files. */
function resolve(from, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [base, `${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')];
  return candidates.find((file) => fs.existsSync(file) && fs.statSync(file).isFile());
}

const files = sources(root);
const graph = new Map(
  files.map((file) => {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles.map((ref) => resolve(file, ref.fileName)).filter((target) => target !== undefined);
    return [file, [...new Set(targets)]];
  }),
);

// Tarjan's strongly connected components.
let counter = 0;
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const groups = [];
function visit(node) {
  index.set(node, counter);
  low.set(node, counter);
  counter++;
  stack.push(node);
  onStack.add(node);
  for (const next of graph.get(node) || []) {
    if (!index.has(next)) {
      visit(next);
      low.set(node, Math.min(low.get(node), low.get(next)));
    } else if (onStack.has(next)) {
      low.set(node, Math.min(low.get(node), index.get(next)));
    }
  }
  if (low.get(node) === index.get(node)) {
    const group = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      group.push(member);
    } while (member !== node);
    const selfImport = (graph.get(node) || []).includes(node);
    if (group.length > 1 || selfImport) groups.push(group);
  }
}
for (const file of files) if (!index.has(file)) visit(file);

/** One cycle through `start` inside `group` (breadth-first, so a shortest one). */
function cycleThrough(start, group) {
  const members = new Set(group);
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const next of graph.get(node) || []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const cycle = [start];
        for (let at = node; at !== start; at = previous.get(at)) cycle.splice(1, 0, at);
        return [...cycle, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start];
}

const name = (file) => path.relative(process.cwd(), file);
if (groups.length === 0) {
  console.log(`No import cycles among ${files.length} modules under ${name(root) || '.'}.`);
} else {
  for (const group of groups) {
    const sorted = [...group].sort();
    console.log(`Cycle group of ${group.length}: ${sorted.map(name).join(', ')}`);
    console.log(`  e.g. ${cycleThrough(sorted[0], group).map(name).join(' -> ')}`);
  }
  process.exitCode = 1;
}
