/**
 * Pool cores without a database: the manager's generic pool (lib/pool/pool.ts) over a trivial fake
 * connector, tarn and generic-pool over fake resources. Each worker loops
 * acquire → `await Promise.resolve()` → release; what is measured is the pool's own cost.
 */
import type { Pool as TarnPool } from 'tarn';
import type { Pool as GenericPool } from 'generic-pool';
import type * as PoolModule from '../../lib/pool/pool';
import type * as EntryModule from '../../lib/pool/entry';
import type * as ClockModule from '../../lib/pool/clock';
import type * as OptionsModule from '../../lib/options';
import type { Connector } from '../../lib/pool/connector';
import type { CoreContestant, CoreJob, CoreResult, WindowResult } from './common';
import { collectSetupGarbage, nowMs, Phases } from './common';
import { silentInfoLogger } from './db';

interface Core<R> {
  acquire(): Promise<R>;
  release(resource: R): void;
  close(): Promise<void>;
}

/** A connector whose connections are empty objects: opening, closing and checking cost nothing. */
export const fakeConnector: Connector<object> = {
  open: () => Promise.resolve({}),
  close: () => Promise.resolve(),
  watch: () => undefined,
  inTransaction: () => false,
  rollback: () => Promise.resolve(),
  validate: () => Promise.resolve(true),
  isRetryable: () => true,
};

/** Tenants of the admission contestant; each worker acquires as one of them, in turn. */
const TAG_VALUES = 50;

async function openCore(name: CoreContestant, size: number): Promise<Core<unknown>> {
  switch (name) {
    // 'manager-core-before' is 'manager-core' run from the BENCH_BEFORE build (index.ts).
    case 'manager-core-before':
    case 'manager-core-admission':
    case 'manager-core': {
      const { Pool } = require('../../lib/pool/pool') as typeof PoolModule;
      const { PoolEntry } = require('../../lib/pool/entry') as typeof EntryModule;
      const { systemClock } = require('../../lib/pool/clock') as typeof ClockModule;
      const { DEFAULT_POOL_OPTIONS, DEFAULT_RETRY_OPTIONS } = require('../../lib/options') as typeof OptionsModule;
      const pool = new Pool<object, EntryModule.PoolEntry<object>>({
        name: 'bench',
        options: { ...DEFAULT_POOL_OPTIONS, min: size, max: size },
        retry: { ...DEFAULT_RETRY_OPTIONS },
        connector: fakeConnector,
        clock: systemClock,
        logger: silentInfoLogger(),
        createEntry: (owner) => new PoolEntry<object>(owner),
      });
      await pool.ready();
      if (name === 'manager-core-admission') return admissionCore(pool, size);
      return {
        acquire: () => pool.acquire(),
        release: (entry) => pool.release(entry as EntryModule.PoolEntry<object>),
        close: () => pool.close(),
      };
    }
    case 'tarn': {
      const { Pool } = require('tarn') as typeof import('tarn');
      const pool: TarnPool<object> = new Pool<object>({ create: () => Promise.resolve({}), destroy: () => undefined, min: size, max: size });
      const core: Core<unknown> = {
        acquire: () => pool.acquire().promise,
        release: (resource) => void pool.release(resource as object),
        close: async () => void (await pool.destroy()),
      };
      await prewarm(core, size);
      return core;
    }
    case 'floor':
      return floorCore(size);
    case 'generic-pool': {
      const { createPool } = require('generic-pool') as typeof import('generic-pool');
      const pool: GenericPool<object> = createPool<object>(
        { create: () => Promise.resolve({}), destroy: () => Promise.resolve() },
        { min: size, max: size },
      );
      await pool.ready();
      const core: Core<unknown> = {
        acquire: () => pool.acquire(),
        release: (resource) => void pool.release(resource as object),
        close: async () => {
          await pool.drain();
          await pool.clear();
        },
      };
      await prewarm(core, size);
      return core;
    }
  }
}

/**
 * The manager's pool with admission on: tags of 50 tenants, three priority classes, a quota per
 * tenant (a tenant may hold at most a tenth of the pool, so some callers are held back). The
 * options are checked once up front, as `getConnection` does before it reaches the pool.
 */
function admissionCore(pool: PoolModule.Pool<object, EntryModule.PoolEntry<object>>, size: number): Core<unknown> {
  const { TagAdmission } = require('../../lib/admission/policy') as typeof import('../../lib/admission/policy');
  const { resolveAdmission } = require('../../lib/options-admission') as typeof import('../../lib/options-admission');
  const { validateCallOptions } = require('../../lib/call-options') as typeof import('../../lib/call-options');
  const { systemClock } = require('../../lib/pool/clock') as typeof ClockModule;
  const admission = resolveAdmission({ tagKeys: ['tenant'], quotas: { tenant: { default: Math.max(1, Math.floor(size / 10)) } } });
  pool.useAdmission(new TagAdmission<EntryModule.PoolEntry<object>>(admission!, systemClock));
  const priorities = ['high', 'normal', 'low'] as const;
  const calls = Array.from({ length: TAG_VALUES * 3 }, (_, i) =>
    validateCallOptions({ tags: { tenant: `t${i % TAG_VALUES}` }, priority: priorities[i % 3] }, 'acquire'));
  let next = 0;
  return {
    acquire: () => pool.acquire(calls[next++ % calls.length]),
    release: (entry) => pool.release(entry as EntryModule.PoolEntry<object>),
    close: () => pool.close(),
  };
}

/**
 * The least any pool can do: an array stack of resources, each with one cached resolved promise.
 * Not a pool (no limits, no waiting); it measures the harness's own cost per operation — the worker
 * loop, its awaits, and the memory effects of that many concurrent workers — so the pools' figures
 * can be read as floor + own cost.
 */
function floorCore(size: number): Core<unknown> {
  interface Slot {
    resolved?: Promise<Slot>;
  }
  const free: Slot[] = Array.from({ length: size }, () => ({}));
  return {
    acquire: () => {
      const slot = free.pop();
      if (!slot) return Promise.reject(new Error('the floor core has no waiting: run it with workers <= size'));
      return (slot.resolved ??= Promise.resolve(slot));
    },
    release: (slot) => void free.push(slot as Slot),
    close: () => Promise.resolve(),
  };
}

/** Leases every resource at once (so all exist), then returns them. */
async function prewarm(core: Core<unknown>, size: number): Promise<void> {
  const leases = await Promise.all(Array.from({ length: size }, () => core.acquire()));
  for (const lease of leases) core.release(lease);
}

/** Runs one pool-core job: `workers` loops over a pool of `size` fake resources. */
export async function runCore(job: CoreJob): Promise<CoreResult> {
  const core = await openCore(job.contestant, job.size);
  const { acquire, release } = core;
  collectSetupGarbage();
  const phases = new Phases(job.warmupMs, job.windowMs);
  const loop = async (): Promise<void> => {
    for (;;) {
      const resource = await acquire();
      await Promise.resolve();
      release(resource);
      // Reading the clock every operation would cost as much as the pool itself.
      if ((++phases.ops & 255) === 0) phases.check(nowMs());
      if (phases.phase === 2) return;
    }
  };
  await Promise.all(Array.from({ length: job.workers }, loop));
  await core.close();
  const window = phases.result as WindowResult;
  return {
    kind: 'core',
    ...window,
    opsPerSec: (window.ops / window.elapsedMs) * 1000,
    nsPerOp: (window.elapsedMs * 1e6) / window.ops,
  };
}
