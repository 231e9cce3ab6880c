/**
 * The benchmark's workloads: where pgbench is found (and the reason when it is not), and how the
 * rounds become rows and targets (ratios within a round, medians over rounds, the spread shown).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Job, JobResult } from '../../scripts/bench/common';
import { findPgbench } from '../../scripts/bench/pgbench';
import type { RunRecord } from '../../scripts/bench/report';
import { summariseWorkloads, workloadMarkdown, workloadTargets } from '../../scripts/bench/report-workloads';

describe('findPgbench', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'kcm-pgbench-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('finds pgbench beside the server binaries', () => {
    writeFileSync(path.join(dir, 'pgbench'), '');
    expect(findPgbench(dir)).toEqual({ path: path.join(dir, 'pgbench') });
  });

  test('says why when the binaries in use have none, or when there are no binaries', () => {
    expect(findPgbench(dir).missing).toContain(`the PostgreSQL binaries in use (${dir}) have no pgbench`);
    expect(findPgbench(undefined).missing).toMatch(/no PostgreSQL binaries/);
  });
});

function workload(round: number, name: 'select-only' | 'tpcb', contestant: string, qps: number, cpu = 10): RunRecord {
  const job = { kind: 'workload', workload: name, contestant, url: '', connections: 20, workers: 64, warmupMs: 0, windowMs: 1 } as Job;
  const result = { kind: 'workload', qps, p50Us: 1, p99Us: 2, cpuUsPerQuery: cpu, ops: 1, elapsedMs: 1, cpuUs: 1, startNs: '0', endNs: '1' } as JobResult;
  return { round, job, result, loadMs: 0 };
}

function select1(round: number, contestant: string, qps: number): RunRecord {
  const job = { kind: 'throughput', contestant, url: '', connections: 20, workers: 64, warmupMs: 0, windowMs: 1 } as Job;
  const result = { kind: 'throughput', qps, p50Us: 1, p99Us: 2, cpuUsPerQuery: 1, ops: 1, elapsedMs: 1, cpuUs: 1, startNs: '0', endNs: '1' } as JobResult;
  return { round, job, result, loadMs: 0 };
}

function pgbench(round: number, tps: number, missing?: string): RunRecord {
  const job = { kind: 'pgbench', workload: 'select-only', url: '', pgbench: missing ? undefined : '/x/pgbench', connections: 20, seconds: 1 } as Job;
  const result = { kind: 'pgbench', tps, latencyMs: 1, cpuUsPerTxn: 3, ...(missing ? { missing } : {}) } as JobResult;
  return { round, job, result, loadMs: 0 };
}

test('ratios are taken within a round, then the median; targets show their spread and are judged', () => {
  const records = [
    // Round 2 is twice as fast for everyone: per-round ratios stay 1.2 and 1.3.
    workload(1, 'select-only', 'manager-query', 1200, 30), workload(1, 'select-only', 'pg-pool', 1000, 40),
    workload(2, 'select-only', 'manager-query', 2600, 30), workload(2, 'select-only', 'pg-pool', 2000, 40),
    workload(1, 'select-only', 'manager-knex', 1000), workload(1, 'select-only', 'knex-tarn', 1000),
    select1(1, 'manager-getConnection', 990), select1(1, 'dedicated', 1000),
    pgbench(1, 4000), pgbench(2, 8000),
  ];
  const rows = summariseWorkloads(records);
  const mq = rows.find((r) => r.contestant === 'manager-query');
  expect(mq?.ratioPgPool).toBeCloseTo(1.25);
  expect(mq?.ratioPgbench).toBeCloseTo((0.3 + 0.325) / 2);
  expect(rows.find((r) => r.contestant === 'pgbench')?.cpuUs).toBe(3);
  const targets = workloadTargets(records, rows, false);
  const byName = (start: string): (typeof targets)[number] | undefined => targets.find((t) => t.name.startsWith(start));
  expect(byName('select-only through manager.query')).toMatchObject({ pass: true, measured: expect.stringContaining('1.25× (rounds 1.20–1.30×); client CPU 30.0 vs 40.0') });
  expect(byName('select-only through manager.knex')?.pass).toBe(false);
  expect(byName('`SELECT 1` through the lease path')).toMatchObject({ pass: true, measured: '0.99×' });
  expect(byName('TPC-B')).toBeUndefined();
  expect(workloadTargets(records, rows, true).every((t) => t.pass === undefined)).toBe(true);
});

test('a missing pgbench leaves its row out and says why in the report', () => {
  const records = [workload(1, 'select-only', 'pg-pool', 1000), pgbench(1, Number.NaN, 'no pgbench here')];
  const rows = summariseWorkloads(records);
  expect(rows.map((r) => r.contestant)).toEqual(['pg-pool']);
  const text = workloadMarkdown(rows, { connections: 20, workers: 64, seconds: 2, svg: 'w.svg', pgbenchMissing: 'no pgbench here' });
  expect(text).toContain('> **The pgbench reference row is missing**: no pgbench here. The rest ran.');
  expect(text).toContain('| pg-pool | 1,000 | 1.00× | n/a |');
});
