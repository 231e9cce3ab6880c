/**
 * The workloads' part of docs/benchmarks.md: pgbench's select-only and TPC-B-like scripts through
 * every contestant and through pgbench itself, their targets and their chart. Figures are medians
 * over the interleaved rounds; ratios are taken within a round first.
 */
import type { DbContestant, JobResult, PgbenchResult, Workload, WorkloadContestant, WorkloadResult } from './common';
import { LABELS, median, runsWorkload, WORKLOAD_CONTESTANTS, WORKLOADS } from './common';
import type { RunRecord } from './report';
import { barChart } from './svg';

export interface WorkloadRow {
  workload: Workload;
  contestant: WorkloadContestant | 'pgbench';
  tps: number;
  tpsMin: number;
  tpsMax: number;
  /** Median over rounds of tps / pg-pool's tps in the same round. */
  ratioPgPool: number;
  /** Median over rounds of tps / pgbench's tps in the same round (NaN without pgbench). */
  ratioPgbench: number;
  p50Us: number;
  p99Us: number;
  /** Client CPU per transaction, µs (pgbench: its own process). */
  cpuUs: number;
}

/** A judged target (the same shape as report.ts's). */
export interface WorkloadTarget {
  name: string;
  goal: string;
  measured: string;
  pass: boolean | undefined;
}

/** The DB contestant whose `SELECT 1` ratio to dedicated is the lease path target. */
const LEASE_PATH: DbContestant = 'manager-getConnection';

const WORKLOAD_TITLES: Record<Workload, string> = {
  'select-only': 'select-only (point read by random aid)',
  tpcb: 'TPC-B-like transaction',
};

function tpsOf(result: JobResult): number {
  return result.kind === 'pgbench' ? result.tps : (result as WorkloadResult).qps;
}

export function summariseWorkloads(records: readonly RunRecord[]): WorkloadRow[] {
  const rows: WorkloadRow[] = [];
  for (const workload of WORKLOADS) {
    const of = (contestant: WorkloadContestant | 'pgbench'): RunRecord[] =>
      records.filter((r) =>
        contestant === 'pgbench'
          ? r.job.kind === 'pgbench' && r.job.workload === workload && !(r.result as PgbenchResult).missing
          : r.job.kind === 'workload' && r.job.workload === workload && r.job.contestant === contestant,
      );
    const perRound = (contestant: WorkloadContestant | 'pgbench'): Map<number, number> => new Map(of(contestant).map((r) => [r.round, tpsOf(r.result)]));
    const pgPool = perRound('pg-pool');
    const pgbench = perRound('pgbench');
    for (const contestant of [...WORKLOAD_CONTESTANTS, 'pgbench'] as const) {
      const runs = of(contestant);
      if (runs.length === 0) continue;
      const tps = runs.map((r) => tpsOf(r.result));
      const ratio = (base: Map<number, number>): number =>
        median(runs.filter((r) => base.has(r.round)).map((r) => tpsOf(r.result) / (base.get(r.round) as number)));
      const pick = (f: (w: WorkloadResult) => number): number => median(runs.map((r) => (r.result.kind === 'workload' ? f(r.result) : Number.NaN)));
      rows.push({
        workload,
        contestant,
        tps: median(tps),
        tpsMin: Math.min(...tps),
        tpsMax: Math.max(...tps),
        ratioPgPool: ratio(pgPool),
        ratioPgbench: ratio(pgbench),
        p50Us: pick((w) => w.p50Us),
        p99Us: contestant === 'pgbench' ? Number.NaN : pick((w) => w.p99Us),
        cpuUs: median(runs.map((r) => (r.result.kind === 'pgbench' ? r.result.cpuUsPerTxn : (r.result as WorkloadResult).cpuUsPerQuery))),
      });
    }
  }
  return rows;
}

/** Per-round ratios of `a`'s rate over `b`'s among `records` (same round, same scenario). */
function perRoundRatios(records: readonly RunRecord[], matches: (r: RunRecord, c: string) => boolean, a: string, b: string): number[] {
  const rate = (r: RunRecord): number => (r.result as WorkloadResult).qps;
  const of = (c: string): Map<number, number> => new Map(records.filter((r) => matches(r, c)).map((r) => [r.round, rate(r)]));
  const x = of(a);
  const y = of(b);
  return [...x.entries()].filter(([round]) => y.has(round)).map(([round, v]) => v / (y.get(round) as number));
}

/** "1.20× (rounds 1.05–1.31×)": the median ratio and its spread over the rounds, which this machine's noise makes wide. */
function spread(ratios: readonly number[]): string {
  if (ratios.length < 2) return fmt(median(ratios));
  return `${fmt(median(ratios))} (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×)`;
}

function fmt(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'n/a';
}

function us(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : 'n/a';
}

function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/**
 * The targets of issue 16: select-only through `manager.query` and `manager.knex` against pg-pool
 * and knex + tarn, the TPC-B-like transaction through `manager.knex` against knex + tarn, the
 * `SELECT 1` lease path against dedicated clients (`select1LeaseRatio`, from the throughput rows),
 * and, as a reading aid, client CPU per transaction.
 */
export function workloadTargets(records: readonly RunRecord[], rows: readonly WorkloadRow[], smoke: boolean): WorkloadTarget[] {
  const judged = (ok: boolean): boolean | undefined => (smoke ? undefined : ok);
  const targets: WorkloadTarget[] = [];
  const cpu = (workload: Workload, c: WorkloadContestant): number => rows.find((r) => r.workload === workload && r.contestant === c)?.cpuUs ?? Number.NaN;
  const pair = (workload: Workload, mine: WorkloadContestant, theirs: WorkloadContestant, goal: number, name: string): void => {
    const ratios = perRoundRatios(records, (r, c) => r.job.kind === 'workload' && r.job.workload === workload && r.job.contestant === c, mine, theirs);
    const r = median(ratios);
    if (!Number.isFinite(r)) return;
    targets.push({
      name,
      goal: `≥ ${goal.toFixed(2)}× ${LABELS[theirs]}`,
      measured: `${spread(ratios)}; client CPU ${us(cpu(workload, mine))} vs ${us(cpu(workload, theirs))} µs/tx`,
      pass: judged(r >= goal),
    });
  };
  pair('select-only', 'manager-query', 'pg-pool', 1.15, 'select-only through manager.query');
  pair('select-only', 'manager-knex', 'knex-tarn', 1.15, 'select-only through manager.knex (query builder)');
  const workers = Math.max(0, ...records.filter((r) => r.job.kind === 'throughput').map((r) => (r.job as { workers: number }).workers));
  const select1 = perRoundRatios(records, (r, c) => r.job.kind === 'throughput' && r.job.workers === workers && r.job.contestant === c, LEASE_PATH, 'dedicated');
  if (select1.length > 0) {
    const r = median(select1);
    targets.push({ name: `\`SELECT 1\` through the lease path (getConnection), ${workers} workers`, goal: '≥ 0.98× dedicated', measured: spread(select1), pass: judged(r >= 0.98) });
  }
  pair('tpcb', 'manager-knex', 'knex-tarn', 1.0, 'TPC-B-like through manager.knex transactions');
  const cpuRows = WORKLOADS.flatMap((w) =>
    WORKLOAD_CONTESTANTS.filter((c) => runsWorkload(c, w) && Number.isFinite(cpu(w, c))).map((c) => `${w} ${LABELS[c]} ${us(cpu(w, c))}`),
  );
  if (cpuRows.length > 0) targets.push({ name: '(reading aid) client CPU per transaction, µs', goal: 'not a target', measured: cpuRows.join('; '), pass: undefined });
  return targets;
}

/** The workloads' chart: each contestant's transactions per second relative to pg-pool, per workload. */
export function workloadChart(rows: readonly WorkloadRow[], subtitle: string): string {
  return barChart(
    'pgbench workloads: transactions per second relative to pg-pool',
    subtitle,
    WORKLOADS.flatMap((w) =>
      rows
        .filter((r) => r.workload === w)
        .map((r) => ({ label: `${w === 'tpcb' ? 'TPC-B' : 'select'}: ${LABELS[r.contestant] ?? r.contestant}`, value: r.ratioPgPool, highlight: r.contestant.startsWith('manager') })),
    ),
    [{ at: 1, label: 'pg-pool = 1', side: 'right' }],
  );
}

/** The workloads' section of docs/benchmarks.md. */
export function workloadMarkdown(rows: readonly WorkloadRow[], opts: { connections: number; workers: number; seconds: number; svg: string; tables?: string; pgbenchMissing?: string }): string {
  const out: string[] = [];
  out.push(`## Workloads: pgbench's scripts over ${opts.connections} connections`);
  out.push('');
  out.push(
    `pgbench's tables at scale 1 (100,000 accounts; made with ${opts.tables ?? 'pgbench -i -s 1'}) and its two built-in scripts: ` +
      '**select-only**, `SELECT abalance FROM pgbench_accounts WHERE aid = $1` with a random aid; and the **TPC-B-like** ' +
      'transaction (BEGIN; update an account; read it back; update a teller; update the branch; insert a history row; COMMIT). ' +
      `${opts.workers} workers loop over one transaction each through: dedicated \`pg\` clients (workers sharing a client take ` +
      'turns for a transaction), pg-pool, knex with its default pool (tarn), generic-pool, the manager\'s lease path ' +
      '(`getConnection` → `conn.query` → `releaseConnection`), `manager.query` (select-only only: it leases per statement, so it ' +
      'cannot hold a transaction) and `manager.knex`. The driver-level contestants send the same `$n` texts; the two knex ' +
      'contestants run identical query-builder code (`knex(\'pgbench_accounts\').select(\'abalance\').where(\'aid\', aid)`, ' +
      '`increment`, `insert` inside `knex.transaction`). The manager runs with its defaults, so its statement cache is on: ' +
      'statements run as prepared statements from their second execution on each connection; the other pools send them unnamed. ' +
      `**pgbench** itself (\`-b select-only\` / \`-b tpcb-like\`, \`-M prepared\`, \`-c ${opts.connections} -j 2\`, ${opts.seconds} s) is the ` +
      'reference for what the server does on this machine with a client that costs almost nothing; its CPU is its own process\'s. ' +
      'Client CPU is per transaction (one statement for select-only, seven for TPC-B).',
  );
  out.push('');
  if (opts.pgbenchMissing) out.push(`> **The pgbench reference row is missing**: ${opts.pgbenchMissing}. The rest ran.\n`);
  out.push(`![pgbench workloads relative to pg-pool](${opts.svg})`);
  out.push('');
  for (const workload of WORKLOADS) {
    const these = rows.filter((r) => r.workload === workload);
    if (these.length === 0) continue;
    out.push(`### ${WORKLOAD_TITLES[workload]}`);
    out.push('');
    out.push('| contestant | tx/s | ratio to pg-pool | ratio to pgbench | p50 µs | p99 µs | client CPU µs/tx | tx/s range |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of these) {
      const name = LABELS[r.contestant] ?? r.contestant;
      const label = r.contestant.startsWith('manager') ? `**${name}**` : name;
      const latency = r.contestant === 'pgbench' ? ['n/a', 'n/a'] : [int(r.p50Us), int(r.p99Us)];
      out.push(`| ${label} | ${int(r.tps)} | ${fmt(r.ratioPgPool)} | ${fmt(r.ratioPgbench)} | ${latency.join(' | ')} | ${us(r.cpuUs)} | ${int(r.tpsMin)}–${int(r.tpsMax)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
