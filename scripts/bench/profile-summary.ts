/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the top functions by self time, attributed to
 * file:function, and the self time per area (this library, each package, Node internals, GC); then
 * the same with Node internals and native code charged to their nearest caller in a library, a
 * package or the harness (a socket write counts for pg, a clock read for whoever read the clock).
 *
 *   npx ts-node --transpile-only scripts/bench/profile-summary.ts FILE.cpuprofile \
 *     [--top 20] [--from-us T0 --to-us T1] [--per QUERIES]
 *
 * --from-us/--to-us keep only the samples inside a window (the profile's clock is the monotonic
 * clock of process.hrtime, in µs); --per divides self time by an operation count to show µs per op.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SummaryOptions {
  top?: number;
  fromUs?: number;
  toUs?: number;
  /** Operations done inside the window, to print µs per operation. */
  per?: number;
  /** Receives the charged time per area (µs) and the busy time, for a comparison across profiles. */
  onAreas?: (chargedUs: ReadonlyMap<string, number>, busyUs: number) => void;
}

/** A file path relative to what a reader knows: `lib/pool/pool.ts`, `pg/lib/client.js`, `node:internal/...`. */
export function shortFile(url: string): string {
  if (url === '') return '';
  let file = url.replace(/^file:\/\//, '');
  // The benchmark runs lib/ and scripts/bench/ transpiled under node_modules/.cache/kcm-bench/run-N/.
  const build = /\/node_modules\/\.cache\/kcm-bench\/[^/]+\/(.*)\.js$/.exec(file);
  if (build) return `${build[1]}.ts`;
  const modules = file.lastIndexOf('/node_modules/');
  if (modules >= 0) return file.slice(modules + '/node_modules/'.length);
  const cwd = `${process.cwd()}/`;
  if (file.startsWith(cwd)) file = file.slice(cwd.length);
  return file;
}

/** The area a file belongs to: `this library`, a package name, `node internals`, or a V8 bucket. */
export function areaOf(file: string, functionName: string): string {
  if (file === '') {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)') return '(program: V8/native, unattributed)';
    return 'native / builtins';
  }
  if (file.startsWith('lib/')) return 'this library (lib/)';
  if (file.startsWith('scripts/bench/')) return 'benchmark harness';
  if (file.startsWith('node:')) return 'node internals';
  const parts = file.split('/');
  if (parts[0]?.startsWith('@')) return `${parts[0]}/${parts[1] ?? ''}`;
  return parts[0] ?? file;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** The key a frame is listed under: `file:function` (anonymous ones with their line). */
function frameKey(frame: CallFrame): string {
  const file = shortFile(frame.url);
  const name = frame.functionName || '(anonymous)';
  return file === '' ? name : `${file}:${name}${frame.functionName ? '' : `@${frame.lineNumber + 1}`}`;
}

function frameArea(frame: CallFrame): string {
  return areaOf(shortFile(frame.url), frame.functionName);
}

/** Areas whose time is charged to their caller in the "charged" view. */
const PLUMBING = new Set(['native / builtins', 'node internals']);

export function summariseProfile(profile: CpuProfile, options: SummaryOptions = {}): string {
  const top = options.top ?? 20;
  const byId = new Map<number, ProfileNode>();
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  }
  const selfUs = new Map<number, number>();
  let time = profile.startTime;
  let windowUs = 0;
  let firstUs = Number.POSITIVE_INFINITY;
  let lastUs = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    if (options.fromUs !== undefined && time < options.fromUs) continue;
    if (options.toUs !== undefined && time > options.toUs) continue;
    // A sample stands for the time until the next one.
    const duration = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + duration);
    windowUs += duration;
    firstUs = Math.min(firstUs, time);
    lastUs = Math.max(lastUs, time);
  }

  /**
   * The frame that pays for node `id` in the charged view: itself, or — for Node internals and
   * native code — the nearest caller in this library, a package or the harness (so a socket write
   * is charged to pg, a clock read to whoever read the clock).
   */
  const payer = (id: number): ProfileNode => {
    let node = byId.get(id) as ProfileNode;
    for (let up = node; PLUMBING.has(frameArea(up.callFrame)); ) {
      const parent = parentOf.get(up.id);
      if (parent === undefined) break;
      up = byId.get(parent) as ProfileNode;
      const area = frameArea(up.callFrame);
      if (!PLUMBING.has(area)) {
        if (!area.startsWith('(')) node = up;
        break;
      }
    }
    return node;
  };

  type Tally = Map<string, { us: number; area: string }>;
  const add = (tally: Tally, key: string, area: string, us: number): void => {
    const entry = tally.get(key) ?? { us: 0, area };
    entry.us += us;
    tally.set(key, entry);
  };
  const byFunction: Tally = new Map();
  const byArea: Tally = new Map();
  const chargedFunction: Tally = new Map();
  const chargedArea: Tally = new Map();
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const area = frameArea(frame);
    add(byFunction, frameKey(frame), area, us);
    add(byArea, area, area, us);
    const paying = payer(id).callFrame;
    const payingArea = frameArea(paying);
    add(chargedFunction, frameKey(paying), payingArea, us);
    add(chargedArea, payingArea, payingArea, us);
  }
  const idleUs = byArea.get('(idle)')?.us ?? 0;
  const busyUs = windowUs - idleUs;
  options.onAreas?.(new Map([...chargedArea].map(([k, v]) => [k, v.us])), busyUs);
  const per = options.per;
  const lines: string[] = [];
  const row = (key: string, us: number): string =>
    `${pad((us / 1000).toFixed(1), 10, true)} ${pad(((us / busyUs) * 100).toFixed(1), 7, true)}${per ? pad((us / per).toFixed(3), 10, true) : ''}  ${key}`;
  const header = (first: string): string => `${pad('ms', 10, true)} ${pad('% busy', 7, true)}${per ? pad('µs/op', 10, true) : ''}  ${first}`;
  const section = (title: string, tally: Tally, filter: (area: string) => boolean, limit: number): void => {
    const ranked = [...tally.entries()].filter(([, v]) => filter(v.area)).sort((a, b) => b[1].us - a[1].us);
    if (ranked.length === 0) return;
    lines.push('');
    lines.push(title);
    lines.push(header(tally === byArea || tally === chargedArea ? 'area' : 'function'));
    for (const [key, v] of ranked.slice(0, limit)) lines.push(row(key, v.us));
  };
  lines.push(
    `window: ${(windowUs / 1000).toFixed(0)} ms of samples (${Number.isFinite(firstUs) ? ((lastUs - firstUs) / 1000).toFixed(0) : 0} ms span), ` +
      `busy (not idle): ${(busyUs / 1000).toFixed(0)} ms${per ? `, ${per.toLocaleString('en-US')} operations, ${(busyUs / per).toFixed(2)} µs busy per operation` : ''}`,
  );
  const notIdle = (area: string): boolean => area !== '(idle)';
  const own = (area: string): boolean => area === 'this library (lib/)';
  section(`Top ${top} functions by self time (idle excluded):`, byFunction, notIdle, top);
  section('Self time by area:', byArea, notIdle, top);
  section(
    `Top ${top} functions, with Node internals and native code charged to their nearest caller in a library, package or the harness:`,
    chargedFunction,
    notIdle,
    top,
  );
  section('Charged time by area:', chargedArea, notIdle, top);
  section(`This library's functions, charged (top ${top}):`, chargedFunction, own, top);
  lines.push('');
  lines.push(`idle (waiting for the network): ${(idleUs / 1000).toFixed(1)} ms`);
  return lines.join('\n');
}

function main(argv: string[]): void {
  const file = argv.find((a) => !a.startsWith('--') && !/^\d/.test(a));
  if (!file) {
    console.error('usage: profile-summary.ts FILE.cpuprofile [--top 20] [--from-us T0 --to-us T1] [--per N]');
    process.exitCode = 2;
    return;
  }
  const option = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : undefined;
  };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(summariseProfile(profile, { top: option('--top'), fromUs: option('--from-us'), toUs: option('--to-us'), per: option('--per') }));
}

if (require.main === module) main(process.argv.slice(2));
