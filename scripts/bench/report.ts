/**
 * Turns the raw per-child results into the tables, targets and charts of docs/benchmarks.md.
 * Every figure is a median over the rounds (interleaved, so drift of the machine hits every
 * contestant alike); ratios are taken within a round first, then the median of those is reported.
 */
import type {
  BurstContestant, BurstResult, BurstStats, ColdContestant, ColdResult, CoreContestant, CoreResult, DbContestant, Job, JobResult, ThroughputResult,
} from './common';
import { BURST_CONTESTANTS, COLD_CONTESTANTS, CONTENTION_ONLY, CORE_CONTESTANTS, DB_CONTESTANTS, LABELS, median } from './common';
import { barChart, lineChartLogX } from './svg';
import { summariseWorkloads, workloadChart, workloadMarkdown, workloadTargets, type WorkloadRow } from './report-workloads';

/** One finished child. */
export interface RunRecord {
  round: number;
  job: Job;
  result: JobResult;
  loadMs: number;
}

export interface Settings {
  smoke: boolean;
  seconds: number;
  rounds: number;
  warmupMs: number;
  workers: readonly number[];
  connections: number;
  /** Workers of the pgbench workloads. */
  workloadWorkers: number;
  contentionWorkers: number;
  contentionSize: number;
  scalingSizes: readonly number[];
  coldRepeats: number;
  burstCallers: number;
  burstMax: number;
  burstSleepMs: number;
  bursts: number;
}

export interface RunInfo {
  date: string;
  command: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; loadStart: readonly number[]; loadEnd: readonly number[] };
  versions: Record<string, string>;
  /** Which lib/ was measured. */
  source: string;
  totalSeconds: number;
  childLoadMs: number;
  failures: readonly string[];
  note: string | undefined;
  /** How the pgbench tables were made (undefined when no workload ran). */
  workloadTables?: string;
  /** Why there is no pgbench reference row, when there is none. */
  pgbenchMissing?: string;
}

export interface ThroughputRow {
  contestant: DbContestant;
  workers: number;
  qps: number;
  qpsMin: number;
  qpsMax: number;
  ratio: number;
  p50Us: number;
  p99Us: number;
  cpuUs: number;
}

export interface CoreRow {
  contestant: CoreContestant;
  workers: number;
  size: number;
  opsPerSec: number;
  nsPerOp: number;
  nsMin: number;
  nsMax: number;
  /** Process CPU time per operation: less sensitive than wall time to other load on the machine. */
  cpuNsPerOp: number;
}

export interface ColdRow {
  contestant: ColdContestant;
  ms: number;
  firstMs: number;
  ratio: number;
}

export interface BurstRow extends BurstStats {
  contestant: BurstContestant;
  ratioP99: number;
  starved: boolean;
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  pass: boolean | undefined;
}

export interface Summary {
  throughput: ThroughputRow[];
  contention: CoreRow[];
  scaling: CoreRow[];
  cold: ColdRow[];
  burst: BurstRow[];
  workloads: WorkloadRow[];
  targets: Target[];
}

/** How much longer than the ideal FIFO maximum a wait may be before a caller counts as starved. */
export const STARVATION_FACTOR = 1.2;

function byRound<T extends JobResult>(records: readonly RunRecord[], match: (job: Job) => boolean): Array<{ round: number; result: T }> {
  return records.filter((r) => match(r.job)).map((r) => ({ round: r.round, result: r.result as T }));
}

export function summarise(records: readonly RunRecord[], settings: Settings): Summary {
  const throughput: ThroughputRow[] = [];
  for (const workers of settings.workers) {
    const dedicatedByRound = new Map<number, number>();
    for (const { round, result } of byRound<ThroughputResult>(records, (j) => j.kind === 'throughput' && j.contestant === 'dedicated' && j.workers === workers)) {
      dedicatedByRound.set(round, result.qps);
    }
    for (const contestant of DB_CONTESTANTS) {
      const runs = byRound<ThroughputResult>(records, (j) => j.kind === 'throughput' && j.contestant === contestant && j.workers === workers);
      if (runs.length === 0) continue;
      const qps = runs.map((r) => r.result.qps);
      const ratios = runs.filter((r) => dedicatedByRound.has(r.round)).map((r) => r.result.qps / (dedicatedByRound.get(r.round) as number));
      throughput.push({
        contestant,
        workers,
        qps: median(qps),
        qpsMin: Math.min(...qps),
        qpsMax: Math.max(...qps),
        ratio: median(ratios),
        p50Us: median(runs.map((r) => r.result.p50Us)),
        p99Us: median(runs.map((r) => r.result.p99Us)),
        cpuUs: median(runs.map((r) => r.result.cpuUsPerQuery)),
      });
    }
  }

  const coreRows = (workers: (size: number) => number, sizes: readonly number[]): CoreRow[] => {
    const rows: CoreRow[] = [];
    for (const size of sizes) {
      for (const contestant of CORE_CONTESTANTS) {
        const runs = byRound<CoreResult>(records, (j) => j.kind === 'core' && j.contestant === contestant && j.size === size && j.workers === workers(size));
        if (runs.length === 0) continue;
        const ns = runs.map((r) => r.result.nsPerOp);
        rows.push({
          contestant,
          workers: workers(size),
          size,
          opsPerSec: median(runs.map((r) => r.result.opsPerSec)),
          nsPerOp: median(ns),
          nsMin: Math.min(...ns),
          nsMax: Math.max(...ns),
          cpuNsPerOp: median(runs.map((r) => (r.result.cpuUs * 1000) / r.result.ops)),
        });
      }
    }
    return rows;
  };
  const contention = coreRows(() => settings.contentionWorkers, [settings.contentionSize]);
  const scaling = coreRows((size) => size, settings.scalingSizes);

  const coldAll = new Map<ColdContestant, { all: number[]; first: number[] }>();
  for (const contestant of COLD_CONTESTANTS) {
    const runs = byRound<ColdResult>(records, (j) => j.kind === 'cold' && j.contestant === contestant);
    if (runs.length === 0) continue;
    coldAll.set(contestant, { all: runs.flatMap((r) => r.result.samplesMs), first: runs.map((r) => r.result.samplesMs[0] as number) });
  }
  const dedicatedCold = median(coldAll.get('dedicated')?.all ?? []);
  const cold: ColdRow[] = [...coldAll.entries()].map(([contestant, s]) => ({
    contestant,
    ms: median(s.all),
    firstMs: median(s.first),
    ratio: median(s.all) / dedicatedCold,
  }));

  const burst: BurstRow[] = [];
  for (const contestant of BURST_CONTESTANTS) {
    const all = byRound<BurstResult>(records, (j) => j.kind === 'burst' && j.contestant === contestant).flatMap((r) => r.result.bursts);
    if (all.length === 0) continue;
    const m = (pick: (b: BurstStats) => number): number => median(all.map(pick));
    const row: BurstRow = {
      contestant,
      serviceMs: m((b) => b.serviceMs),
      p50: m((b) => b.p50),
      p99: m((b) => b.p99),
      max: m((b) => b.max),
      idealP50: m((b) => b.idealP50),
      idealP99: m((b) => b.idealP99),
      idealMax: m((b) => b.idealMax),
      maxLatenessMs: m((b) => b.maxLatenessMs),
      outOfOrder: m((b) => b.outOfOrder),
      ratioP99: m((b) => b.p99 / b.idealP99),
      // Starved: in any burst, someone waited past the ideal FIFO maximum by more than the tolerance.
      starved: all.some((b) => b.max > STARVATION_FACTOR * b.idealMax),
    };
    burst.push(row);
  }

  const workloads = summariseWorkloads(records);
  const targets = [...workloadTargets(records, workloads, settings.smoke), ...judge(throughput, contention, scaling, cold, burst, settings)];
  return { throughput, contention, scaling, cold, burst, workloads, targets };
}

function judge(throughput: ThroughputRow[], contention: CoreRow[], scaling: CoreRow[], cold: ColdRow[], burst: BurstRow[], settings: Settings): Target[] {
  const judged = (ok: boolean): boolean | undefined => (settings.smoke ? undefined : ok);
  const targets: Target[] = [];
  const top = Math.max(...settings.workers);
  const at = (c: DbContestant): ThroughputRow | undefined => throughput.find((r) => r.contestant === c && r.workers === top);
  const mine = at('manager-getConnection');
  const others = (['pg-pool', 'knex-tarn', 'generic-pool'] as const).map(at).filter((r): r is ThroughputRow => r !== undefined);
  if (mine) {
    const best = others.reduce<ThroughputRow | undefined>((b, r) => (!b || r.qps > b.qps ? r : b), undefined);
    targets.push({
      name: `Throughput via getConnection, ${top} workers`,
      goal: '≥ 0.95× dedicated, and above every other pool',
      measured: `${x(mine.ratio)} dedicated; ${best ? `${x(mine.qps / best.qps)} the best other pool (${LABELS[best.contestant]})` : 'no other pool measured'}`,
      pass: judged(mine.ratio >= 0.95 && others.every((o) => mine.qps > o.qps)),
    });
  }
  const viaKnex = at('manager-knex');
  const knexTarn = at('knex-tarn');
  if (viaKnex && knexTarn) {
    const r = viaKnex.qps / knexTarn.qps;
    targets.push({
      name: `Throughput via manager.knex, ${top} workers`,
      goal: '≥ knex default pool (aim 1.1×)',
      measured: `${x(r)} knex default pool${r >= 1.1 ? ' (aim met)' : ' (aim 1.1× not met)'}`,
      pass: judged(r >= 1.0),
    });
  }
  const core = contention.find((r) => r.contestant === 'manager-core');
  if (core) {
    targets.push({
      name: `Pool overhead under contention (${settings.contentionWorkers} workers, ${settings.contentionSize} resources)`,
      goal: '≤ 1 µs per acquire+release (≥ 1M ops/s)',
      measured: `${ns(core.nsPerOp)} ns/op (${mops(core.opsPerSec)} M ops/s); CPU ${ns(core.cpuNsPerOp)} ns/op`,
      pass: judged(core.nsPerOp <= 1000),
    });
  }
  const admission = contention.find((r) => r.contestant === 'manager-core-admission');
  if (core && admission) {
    const overhead = admission.nsPerOp - core.nsPerOp;
    targets.push({
      name: `Admission overhead (${settings.contentionWorkers} workers, ${settings.contentionSize} resources, 50 tag values, priorities, quotas)`,
      goal: '< 2 µs per acquire+release over the pool without admission',
      measured: `+${ns(overhead)} ns/op (${ns(admission.nsPerOp)} vs ${ns(core.nsPerOp)} ns/op); CPU +${ns(admission.cpuNsPerOp - core.cpuNsPerOp)} ns/op`,
      pass: judged(overhead < 2000),
    });
  }
  const before = contention.find((r) => r.contestant === 'manager-core-before');
  if (core && before) {
    targets.push({
      name: 'Pool without admission vs before it (same run, BENCH_BEFORE)',
      goal: '≤ 1.05×',
      measured: `${x(core.nsPerOp / before.nsPerOp)} (${ns(core.nsPerOp)} vs ${ns(before.nsPerOp)} ns/op); CPU ${x(core.cpuNsPerOp / before.cpuNsPerOp)}`,
      pass: judged(core.nsPerOp <= 1.05 * before.nsPerOp),
    });
  }
  const small = scaling.find((r) => r.contestant === 'manager-core' && r.size === Math.min(...settings.scalingSizes));
  const large = scaling.find((r) => r.contestant === 'manager-core' && r.size === Math.max(...settings.scalingSizes));
  if (small && large) {
    targets.push({
      name: `Scaling: ns/op at ${large.size.toLocaleString('en-US')} vs ${small.size}`,
      goal: '≤ 1.5×',
      measured: `${x(large.nsPerOp / small.nsPerOp)} (${ns(large.nsPerOp)} vs ${ns(small.nsPerOp)} ns/op); CPU ${x(large.cpuNsPerOp / small.cpuNsPerOp)}`,
      pass: judged(large.nsPerOp <= 1.5 * small.nsPerOp),
    });
    const floorSmall = scaling.find((r) => r.contestant === 'floor' && r.size === small.size);
    const floorLarge = scaling.find((r) => r.contestant === 'floor' && r.size === large.size);
    if (floorSmall && floorLarge) {
      const ownSmall = small.nsPerOp - floorSmall.nsPerOp;
      const ownLarge = large.nsPerOp - floorLarge.nsPerOp;
      targets.push({
        name: '(reading aid) Scaling of the pool\'s own cost, harness floor subtracted',
        goal: 'not a target',
        measured: `${x(ownLarge / ownSmall)} (${ns(ownLarge)} vs ${ns(ownSmall)} ns/op above the floor; the floor itself ${x(floorLarge.nsPerOp / floorSmall.nsPerOp)})`,
        pass: undefined,
      });
    }
  }
  const coldMine = cold.find((r) => r.contestant === 'manager');
  if (coldMine) {
    targets.push({
      name: `Cold start to ${settings.connections} open connections`,
      goal: '≤ 1.5× dedicated parallel open',
      measured: `${x(coldMine.ratio)} (${coldMine.ms.toFixed(1)} ms vs ${(coldMine.ms / coldMine.ratio).toFixed(1)} ms)`,
      pass: judged(coldMine.ratio <= 1.5),
    });
  }
  const burstMine = burst.find((r) => r.contestant === 'manager');
  if (burstMine) {
    targets.push({
      name: `Burst: ${settings.burstCallers.toLocaleString('en-US')} callers on max ${settings.burstMax}`,
      goal: 'p99 wait ≤ 1.2× ideal FIFO, no caller starved',
      measured: `p99 ${x(burstMine.ratioP99)} ideal; ${burstMine.starved ? 'a caller starved' : 'no caller starved'} (max ${burstMine.max.toFixed(1)} ms vs ideal ${burstMine.idealMax.toFixed(1)} ms)`,
      pass: judged(burstMine.ratioP99 <= 1.2 && !burstMine.starved),
    });
  }
  return targets;
}

// ── formatting ────────────────────────────────────────────────────────────────────────────────

function x(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'n/a';
}

function ns(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

function mops(value: number): string {
  return (value / 1e6).toFixed(2);
}

function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

function ms(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function label(contestant: string): string {
  const name = LABELS[contestant] ?? contestant;
  return contestant.startsWith('manager') ? `**${name}**` : name;
}

export interface Charts {
  throughputSvg: string;
  scalingSvg: string;
  workloadsSvg: string;
}

export function charts(summary: Summary, settings: Settings): Charts {
  const top = Math.max(...settings.workers);
  const throughputSvg = barChart(
    `SELECT 1 throughput relative to dedicated pg clients, ${top} workers`,
    `${settings.connections} connections, median of ${settings.rounds} interleaved round(s) of ${settings.seconds} s; blue: this library`,
    summary.throughput
      .filter((r) => r.workers === top)
      .map((r) => ({ label: LABELS[r.contestant] ?? r.contestant, value: r.ratio, highlight: r.contestant.startsWith('manager') })),
    [
      { at: 1, label: 'dedicated = 1', side: 'right' },
      { at: 0.95, label: 'target 0.95', side: 'left' },
    ],
  );
  const colors: Record<CoreContestant, string> = {
    'manager-core': '#2563eb', 'manager-core-admission': '#7c3aed', 'manager-core-before': '#93c5fd', tarn: '#f59e0b', 'generic-pool': '#10b981', floor: '#9ca3af',
  };
  const scalingSvg = lineChartLogX(
    'Pool core cost per acquire + release vs pool size',
    `fake resources, workers = pool size, median of ${settings.rounds} round(s) of ${settings.seconds} s (lower is better)`,
    'pool size = concurrent workers (log scale)',
    'ns per acquire + release',
    CORE_CONTESTANTS.filter((c) => !CONTENTION_ONLY.includes(c)).map((c) => ({
      label: LABELS[c] ?? c,
      color: colors[c],
      points: summary.scaling.filter((r) => r.contestant === c).map((r) => [r.size, r.nsPerOp] as const),
    })),
  );
  const workloadsSvg = workloadChart(summary.workloads, `${settings.connections} connections, ${settings.workloadWorkers} workers, median of ${settings.rounds} interleaved round(s) of ${settings.seconds} s; blue: this library`);
  return { throughputSvg, scalingSvg, workloadsSvg };
}

/**
 * Sections of docs/benchmarks.md that other scripts measure (written by hand from their output):
 * the report does not produce them, so it carries them over from the file it replaces.
 */
export const CARRIED_SECTIONS: readonly string[] = ['## Statement classification'];

/**
 * The {@link CARRIED_SECTIONS} found in `previous` (the report being replaced), each up to the next
 * `## ` heading or the end, for appending to a new report; '' when there are none.
 */
export function carriedSections(previous: string | undefined): string {
  if (previous === undefined) return '';
  const found: string[] = [];
  for (const heading of CARRIED_SECTIONS) {
    const start = previous.indexOf(`\n${heading}\n`);
    if (start < 0) continue;
    const next = previous.indexOf('\n## ', start + heading.length + 2);
    found.push(previous.slice(start + 1, next < 0 ? undefined : next).trimEnd());
  }
  return found.length === 0 ? '' : `\n${found.join('\n\n')}\n`;
}

/** The whole of docs/benchmarks.md (without the carried sections: see {@link carriedSections}). */
export function markdown(summary: Summary, settings: Settings, info: RunInfo, svgNames: { throughput: string; scaling: string; workloads: string }): string {
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    'How the manager compares with dedicated `pg` clients, `pg-pool`, knex with its default pool (tarn) and ' +
      '`generic-pool`, all measured in one run by `npm run bench` (code in `scripts/bench/`). The run starts its own ' +
      'throwaway PostgreSQL on 127.0.0.1, runs every contestant in a fresh child process, and interleaves the rounds ' +
      '(A B C … A B C …) so that drift of the machine hits every contestant alike. Figures are medians over the rounds.',
  );
  out.push('');
  if (settings.smoke) out.push('> **Smoke run**: windows far too short to mean anything; it checks that the benchmark works. Targets are not judged.\n');
  if (info.note) out.push(`> ${info.note}\n`);
  if (info.failures.length > 0) out.push(`> **${info.failures.length} child process(es) failed**; their rows are missing:\n${info.failures.map((f) => `> - ${f}`).join('\n')}\n`);

  out.push('## Targets');
  out.push('');
  out.push(
    table(
      ['target', 'goal', 'measured', 'result'],
      summary.targets.map((t) => [t.name, t.goal, t.measured, t.pass === undefined ? 'not judged' : t.pass ? '**pass**' : '**FAIL**']),
      ['l', 'l', 'l', 'l'],
    ),
  );
  out.push('');

  if (summary.workloads.length > 0) {
    out.push(
      workloadMarkdown(summary.workloads, {
        connections: settings.connections,
        workers: settings.workloadWorkers,
        seconds: settings.seconds,
        svg: svgNames.workloads,
        tables: info.workloadTables,
        pgbenchMissing: info.pgbenchMissing,
      }),
    );
    out.push('');
  }

  out.push(`## Throughput: \`SELECT 1\` over ${settings.connections} connections`);
  out.push('');
  out.push(
    'Each worker loops over one query as its users would write it: the manager via `getConnection()` → ' +
      "`conn.query('SELECT 1')` → `releaseConnection()`, and via `manager.knex.raw('SELECT 1')`; dedicated `pg` " +
      `clients with no pool (worker i always uses client i % ${settings.connections}: the physical reference); ` +
      "`pg-pool` (`pool.connect()` → `client.query()` → `client.release()`); knex's default pool (`knex.raw('SELECT 1')`); " +
      '`generic-pool` over `pg` clients. Latency is per operation (acquire + query + release); CPU is the client ' +
      'process only (`process.cpuUsage()` over the measured window divided by queries). The q/s range is the lowest ' +
      'and highest round.',
  );
  out.push('');
  out.push(`![Throughput relative to dedicated clients](${svgNames.throughput})`);
  out.push('');
  for (const workers of settings.workers) {
    out.push(`### ${workers} concurrent workers`);
    out.push('');
    out.push(
      table(
        ['contestant', 'q/s', 'ratio to dedicated', 'p50 µs', 'p99 µs', 'client CPU µs/query', 'q/s range'],
        summary.throughput
          .filter((r) => r.workers === workers)
          .map((r) => [label(r.contestant), int(r.qps), x(r.ratio), int(r.p50Us), int(r.p99Us), ms(r.cpuUs), `${int(r.qpsMin)}–${int(r.qpsMax)}`]),
      ),
    );
    out.push('');
  }

  out.push('## Pool overhead without a database');
  out.push('');
  out.push(
    "The pool cores alone over fake resources: the manager's `Pool` (lib/pool/pool.ts) over a connector whose " +
      'connections are empty objects, with the default options and a winston logger at level `info` writing to a ' +
      'silent transport; tarn and generic-pool with their defaults over empty objects. Each worker loops ' +
      '`acquire` → `await Promise.resolve()` → `release`, so the figure includes two awaits of the worker itself. ' +
      'ns/op is wall time per operation (1e9 / ops/s); CPU ns/op is the process\'s CPU time per operation, which ' +
      'other load on the machine disturbs less.',
  );
  out.push('');
  out.push(`### Under contention: ${settings.contentionWorkers} workers on ${settings.contentionSize} resources`);
  out.push('');
  out.push(
    'Two contestants run in this scenario only. *Admission on* is the same pool with `admission` configured ' +
      '(docs/admission.md): each acquire carries one of 50 tenant tags and one of three priority classes, each ' +
      'tenant has a quota of a tenth of the pool, and the options are checked once up front, as `getConnection` ' +
      'does; its difference from the pool without admission is the admission overhead. *As of BENCH_BEFORE* ' +
      '(only when that variable names a git commit) is the pool core built from that commit, run in the same ' +
      'rounds: the pool without admission is judged against it.',
  );
  out.push('');
  out.push(
    table(
      ['pool core', 'ops/s', 'ns/op', 'ns/op range', 'CPU ns/op'],
      summary.contention.map((r) => [label(r.contestant), int(r.opsPerSec), ns(r.nsPerOp), `${ns(r.nsMin)}–${ns(r.nsMax)}`, ns(r.cpuNsPerOp)]),
    ),
  );
  out.push('');
  out.push('### Scaling: pool size = workers');
  out.push('');
  out.push(`![ns/op versus pool size](${svgNames.scaling})`);
  out.push('');
  const sizes = settings.scalingSizes;
  out.push(
    table(
      ['pool core', ...sizes.map((s) => `${s.toLocaleString('en-US')} ns/op`), `${sizes[sizes.length - 1]?.toLocaleString('en-US')} vs ${sizes[0]}`],
      CORE_CONTESTANTS.filter((c) => summary.scaling.some((r) => r.contestant === c)).map((c) => {
        const rows = sizes.map((s) => summary.scaling.find((r) => r.contestant === c && r.size === s));
        const first = rows[0]?.nsPerOp ?? Number.NaN;
        const last = rows[rows.length - 1]?.nsPerOp ?? Number.NaN;
        return [label(c), ...rows.map((r) => ns(r?.nsPerOp ?? Number.NaN)), x(last / first)];
      }),
    ),
  );
  out.push('');
  out.push('The same runs in process CPU time per operation:');
  out.push('');
  out.push(
    table(
      ['pool core', ...sizes.map((s) => `${s.toLocaleString('en-US')} CPU ns/op`), `${sizes[sizes.length - 1]?.toLocaleString('en-US')} vs ${sizes[0]}`],
      CORE_CONTESTANTS.filter((c) => summary.scaling.some((r) => r.contestant === c)).map((c) => {
        const rows = sizes.map((s) => summary.scaling.find((r) => r.contestant === c && r.size === s));
        const first = rows[0]?.cpuNsPerOp ?? Number.NaN;
        const last = rows[rows.length - 1]?.cpuNsPerOp ?? Number.NaN;
        return [label(c), ...rows.map((r) => ns(r?.cpuNsPerOp ?? Number.NaN)), x(last / first)];
      }),
    ),
  );
  out.push('');

  out.push(`## Cold start: ${settings.connections} connections open, each ran a query`);
  out.push('');
  out.push(
    `From construction until ${settings.connections} connections are open and each ran \`SELECT 1\`: the manager's ` +
      `\`ready()\` with \`min: ${settings.connections}\` followed by ${settings.connections} concurrent leases running ` +
      `\`SELECT 1\` (all held until the last one ran, so they are distinct connections); dedicated: ${settings.connections} ` +
      '`pg` clients opened in parallel, each running `SELECT 1`; pg-pool and knex: the same concurrent leases on a fresh ' +
      `pool. ${settings.coldRepeats} cold start(s) per child process; "first" is the first one in its process (paying ` +
      'first-use costs such as JIT compilation), "median" covers all of them.',
  );
  out.push('');
  out.push(
    table(
      ['contestant', 'median ms', 'first in process ms', 'ratio to dedicated'],
      summary.cold.map((r) => [label(r.contestant), ms(r.ms), ms(r.firstMs), x(r.ratio)]),
    ),
  );
  out.push('');

  out.push(`## Burst fairness: ${settings.burstCallers.toLocaleString('en-US')} callers at once on max ${settings.burstMax}`);
  out.push('');
  out.push(
    `${settings.burstCallers.toLocaleString('en-US')} callers ask at the same moment; each holds its connection for ` +
      `\`select pg_sleep(${settings.burstSleepMs / 1000})\`. The wait is the time from the call to getting the connection. ` +
      `The ideal is first come, first served: caller k (in call order, from 0) waits floor(k / ${settings.burstMax}) × the ` +
      'measured mean service time. "Late" is the largest wait beyond a caller\'s ideal wait (service times vary, so even a ' +
      'strictly FIFO pool is a little late); "out of turn" the share of ' +
      `callers served more than ${settings.burstMax} places away from their arrival position; a caller "starved" when a wait ` +
      `exceeded ${STARVATION_FACTOR}× the ideal maximum. ${settings.bursts} measured burst(s) per child after one warm-up burst; ` +
      'all times in ms.',
  );
  out.push('');
  out.push(
    table(
      ['contestant', 'service', 'p50 (ideal)', 'p99 (ideal)', 'p99 / ideal', 'max (ideal)', 'late', 'out of turn', 'starved'],
      summary.burst.map((r) => [
        label(r.contestant),
        ms(r.serviceMs, 2),
        `${ms(r.p50)} (${ms(r.idealP50)})`,
        `${ms(r.p99)} (${ms(r.idealP99)})`,
        x(r.ratioP99),
        `${ms(r.max)} (${ms(r.idealMax)})`,
        ms(r.maxLatenessMs),
        `${(r.outOfOrder * 100).toFixed(1)} %`,
        r.starved ? 'yes' : 'no',
      ]),
    ),
  );
  out.push('');

  out.push('## How it was run');
  out.push('');
  out.push(table(['', ''], [
    ['command', `\`${info.command}\``],
    ['date', info.date],
    ['code measured', info.source],
    ['measured window per round', `${settings.seconds} s after a ${settings.warmupMs} ms warm-up (throughput and pool cores)`],
    ['rounds', String(settings.rounds)],
    ['total run time', `${Math.round(info.totalSeconds)} s`],
    ['child start-up (median)', `${Math.round(info.childLoadMs)} ms from process start to the runner's first line; outside every measured window`],
  ], ['l', 'l']));
  out.push('');
  out.push('### Machine');
  out.push('');
  const mch = info.machine;
  out.push(table(['', ''], [
    ['CPU', mch.cpu],
    ['cores', String(mch.cores)],
    ['memory', `${mch.memoryGiB.toFixed(1)} GiB`],
    ['OS', mch.os],
    ['load average (1/5/15 min) at start', mch.loadStart.map((l) => l.toFixed(2)).join(' / ')],
    ['load average at end', mch.loadEnd.map((l) => l.toFixed(2)).join(' / ')],
  ], ['l', 'l']));
  out.push('');
  out.push('The client processes and the PostgreSQL server share these cores.');
  out.push('');
  out.push('### Versions');
  out.push('');
  out.push(table(['component', 'version'], Object.entries(info.versions).map(([k, v]) => [k, v]), ['l', 'l']));
  out.push('');
  out.push('### Method');
  out.push('');
  out.push(
    [
      '- Every contestant runs in a fresh child process (`child_process.fork` of `scripts/bench/runner.ts`, transpiled to ' +
        'JavaScript once at the start of the run), so none can warm up or pollute another; the child reports JSON back over IPC.',
      '- Rounds are interleaved: round 1 runs every scenario for every contestant, then round 2 does the same, and so on.',
      '- Each child builds its pool, opens its connections, runs a warm-up, then measures a window; the window ' +
        'starts and ends on the workers\' own clock reads (a pool that hands over in microtasks never lets a timer fire).',
      '- The manager always runs with its default options (only `min`/`max` set) and its logging enabled at `info`, as ' +
        'shipped, into a winston transport that prints nothing.',
      '- PostgreSQL runs with `fsync = off` (a throwaway cluster from `scripts/test-db.ts`); only the TPC-B-like ' +
        'transaction writes, and it writes the same rows for every contestant and for pgbench, so this favours nobody.',
      '- The manager\'s defaults include its statement cache: from a text\'s second run on a connection it is a ' +
        'prepared statement, where the other pools send it unnamed (the point of the cache; pgbench runs `-M prepared`).',
      '- Reproduce with `npm run bench` (`BENCH_SECONDS` per window, `BENCH_ROUNDS` rounds); `npm run bench:smoke` runs ' +
        'everything in seconds for CI and writes to a temporary directory; `npm run bench:profile` writes a CPU profile ' +
        "of the manager's throughput child and prints where its time goes (`npm run bench:profile knex`: the knex path " +
        'against knex + tarn, see [profile.md](profile.md)).',
    ].join('\n'),
  );
  out.push('');
  return `${out.join('\n')}\n`;
}
