/**
 * Admission rules on the fake clock and connector: class order, aging, quota skip, fair share,
 * rate limits, deadlines and aborts while held back, tags on records and per-tag statistics.
 */
import { TagAdmission } from '../../lib/admission/policy';
import { runWithTags } from '../../lib/admission/tags';
import type { AdmissionOptions } from '../../lib/admission/types';
import { resolveAdmission } from '../../lib/options-admission';
import { resolveOptions } from '../../lib/options';
import type { FakeEntry, FakePoolParams } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, errorCode, observe, type Observed } from '../helpers/invariants';

const fakePool = checkedFakePools();

function admitted(admission: AdmissionOptions, params: FakePoolParams = {}) {
  const setup = fakePool(params);
  setup.pool.useAdmission(new TagAdmission<FakeEntry>(resolveAdmission(admission)!, setup.clock));
  return setup;
}

/** Labels of the observed acquires that hold a connection now, in the order given. */
function served(waiters: Record<string, Observed<FakeEntry>>): string[] {
  return Object.entries(waiters).filter(([, o]) => o.state === 'resolved').map(([name]) => name);
}

describe('priority classes', () => {
  test('higher classes first, first come first served within a class', async () => {
    const { pool, clock } = admitted({ priorityAgingMs: 0 }, { pool: { max: 1 } });
    const held = await pool.acquire();
    const order: string[] = [];
    const queue = (name: string, priority: 'high' | 'normal' | 'low') =>
      pool.acquire({ priority }).then((e) => {
        order.push(name);
        pool.release(e); // the next freed connection goes to the next in line
      });
    const all = [queue('low1', 'low'), queue('normal1', 'normal'), queue('high1', 'high'), queue('normal2', 'normal'), queue('high2', 'high')];
    await clock.flush();
    pool.release(held);
    await Promise.all(all);
    expect(order).toEqual(['high1', 'high2', 'normal1', 'normal2', 'low1']);
  });

  test('aging: a waiter is promoted one class per priorityAgingMs, so low work is not starved', async () => {
    for (const [agingMs, first] of [[100, 'low'], [0, 'normal']] as const) {
      const { pool, clock } = admitted({ priorityAgingMs: agingMs }, { pool: { max: 1 } });
      const held = await pool.acquire();
      const waiters = { low: observe(pool.acquire({ priority: 'low' })) } as Record<string, Observed<FakeEntry>>;
      await clock.advanceAsync(150); // low has waited 1.5 agings: promoted to normal
      waiters.normal = observe(pool.acquire({ priority: 'normal' }));
      await clock.flush();
      pool.release(held);
      await clock.flush();
      expect(served(waiters)).toEqual([first]);
      pool.release(waiters[first].value!);
      await clock.flush();
      for (const o of Object.values(waiters)) if (o.state === 'resolved' && o.value!.state === 'inUse') pool.release(o.value!);
    }
  });
});

describe('quotas', () => {
  test('a waiter at its quota is skipped, not a wall: the one behind it is served', async () => {
    const { pool, clock, connector } = admitted({ quotas: { tenant: { default: 1 } } }, { pool: { max: 2 } });
    const acme = await pool.acquire({ tags: { tenant: 'acme' } });
    const waiters = {
      acme2: observe(pool.acquire({ tags: { tenant: 'acme' }, timeoutMs: 5_000 })),
      beta: observe(pool.acquire({ tags: { tenant: 'beta' } })),
    };
    await clock.flush();
    expect(served(waiters)).toEqual(['beta']);
    expect(pool.stats().tags!.tenant.acme).toMatchObject({ inUse: 1, waiting: 1 });
    checkInvariants(pool, connector);
    pool.release(acme);
    await clock.flush();
    expect(served(waiters)).toEqual(['acme2', 'beta']);
    expect(pool.stats().tags!.tenant.acme).toMatchObject({ inUse: 1, waiting: 0, acquired: 2 });
    pool.release(waiters.acme2.value!);
    pool.release(waiters.beta.value!);
  });

  test('an idle connection is not handed at once to a caller at its quota; the one waiting is served when a release frees its quota', async () => {
    const { pool, clock } = admitted({ quotas: { tenant: { default: 1, big: 2 } } }, { pool: { max: 3 } });
    const [a, b, c] = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    pool.release(b);
    pool.release(c);
    pool.release(a);
    const first = await pool.acquire({ tags: { tenant: 'acme' } });
    const second = observe(pool.acquire({ tags: { tenant: 'acme' } }));
    await clock.flush();
    expect(second.state).toBe('pending');
    expect(pool.stats()).toMatchObject({ idle: 2, waiting: 1 });
    // 'big' has a quota of 2: both served at once.
    const big = [await pool.acquire({ tags: { tenant: 'big' } }), await pool.acquire({ tags: { tenant: 'big' } })];
    pool.release(first);
    await clock.flush();
    expect(second.state).toBe('resolved');
    for (const e of [second.value!, ...big]) pool.release(e);
  });

  test('a release that frees two quotas serves both waiters it unblocks (one with an idle connection)', async () => {
    const { pool, clock } = admitted({ quotas: { tenant: { default: 1 }, feature: { default: 1 } } }, { pool: { max: 3 } });
    const holder = await pool.acquire({ tags: { tenant: 'a', feature: 'y' } });
    const waiters = {
      byTenant: observe(pool.acquire({ tags: { tenant: 'a', feature: 'x' } })),
      byFeature: observe(pool.acquire({ tags: { tenant: 'c', feature: 'y' } })),
    };
    await clock.flush();
    expect(served(waiters)).toEqual([]);
    expect(pool.stats().idle).toBeGreaterThan(0);
    pool.release(holder);
    await clock.flush();
    expect(served(waiters)).toEqual(['byTenant', 'byFeature']);
    for (const o of Object.values(waiters)) pool.release(o.value!);
  });

  test('the deadline still ends a waiter held back by its quota, and the message says so', async () => {
    const { pool, clock } = admitted({ quotas: { tenant: { acme: 1 } } }, { pool: { max: 3 } });
    const held = await pool.acquire({ tags: { tenant: 'acme', feature: 'checkout' } });
    const waiter = observe(pool.acquire({ tags: { tenant: 'acme' }, timeoutMs: 100 }));
    await clock.advanceAsync(99);
    expect(waiter.state).toBe('pending');
    await clock.advanceAsync(1);
    expect(errorCode(waiter.error)).toBe('E_ACQUIRE_TIMEOUT');
    const message = (waiter.error as Error).message;
    expect(message).toContain('held back by its quota: tenant=acme holds 1 of its 1 connections');
    expect(message).toContain('1 of 1 held by tenant=acme');
    expect(pool.stats().tags!.tenant.acme).toMatchObject({ waiting: 0, timedOut: 1, inUse: 1 });
    expect(pool.stats().waiting).toBe(0);
    pool.release(held);
    // Waiters held back still count as demand for opens (docs/admission.md), so more may be idle.
    expect(pool.stats()).toMatchObject({ inUse: 0, waiting: 0 });
  });

  test('an abort ends a waiter held back by its quota; a later release does not try to serve it', async () => {
    const { pool, clock } = admitted({ quotas: { tenant: { default: 1 } } }, { pool: { max: 3 } });
    const held = await pool.acquire({ tags: { tenant: 'acme' } });
    const controller = new AbortController();
    const waiter = observe(pool.acquire({ tags: { tenant: 'acme' }, signal: controller.signal }));
    await clock.flush();
    controller.abort();
    await clock.flush();
    expect(errorCode(waiter.error)).toBe('E_ABORTED');
    expect(waiter.settlements).toBe(1);
    expect(pool.stats().tags!.tenant.acme).toMatchObject({ waiting: 0 });
    pool.release(held);
    await clock.flush();
    expect(pool.stats()).toMatchObject({ inUse: 0, waiting: 0 });
  });
});

describe('fair share', () => {
  /** Who gets each freed connection when tenant A holds both and queued 4 before B's 2. */
  async function trace(fairShare: boolean): Promise<string[]> {
    const { pool, clock } = admitted(fairShare ? { fairShare: 'tenant' } : { tagKeys: ['tenant'] }, { pool: { max: 2 } });
    const holders = [await pool.acquire({ tags: { tenant: 'A' } }), await pool.acquire({ tags: { tenant: 'A' } })];
    const got: string[] = [];
    const queued: Promise<void>[] = [];
    for (const name of ['A', 'A', 'A', 'A', 'B', 'B']) {
      queued.push(pool.acquire({ tags: { tenant: name } }).then((e) => {
        got.push(name);
        holders.push(e);
      }));
    }
    await clock.flush();
    // Each step frees the longest-held connection; the trace is who receives it.
    while (got.length < 6) {
      pool.release(holders.shift()!);
      await clock.flush();
    }
    await Promise.all(queued);
    for (const e of holders) pool.release(e);
    return got;
  }

  test('each freed connection goes to the value holding fewest (ties: the longest waiting); FIFO within a value', async () => {
    expect(await trace(false)).toEqual(['A', 'A', 'A', 'A', 'B', 'B']);
    expect(await trace(true)).toEqual(['B', 'A', 'B', 'A', 'A', 'A']);
  });

  test('aging compares classes only: a noisy tenant\'s long-waiting callers do not get ahead of a quiet tenant\'s new one', async () => {
    const { pool, clock } = admitted({ fairShare: 'tenant', priorityAgingMs: 100 }, { pool: { max: 2 } });
    const holders = [await pool.acquire({ tags: { tenant: 'A' } }), await pool.acquire({ tags: { tenant: 'A' } })];
    const waiters = { a1: observe(pool.acquire({ tags: { tenant: 'A' } })), a2: observe(pool.acquire({ tags: { tenant: 'A' } })) } as Record<string, Observed<FakeEntry>>;
    await clock.advanceAsync(500); // A's waiters have waited five agings
    waiters.b = observe(pool.acquire({ tags: { tenant: 'B' } }));
    await clock.flush();
    pool.release(holders[0]);
    await clock.flush();
    expect(served(waiters)).toEqual(['b']);
    pool.release(holders[1]);
    pool.release(waiters.b.value!);
    await clock.flush();
    for (const o of [waiters.a1, waiters.a2]) pool.release(o.value!);
  });

  test('priority classes still come first', async () => {
    const { pool, clock } = admitted({ fairShare: 'tenant', priorityAgingMs: 0 }, { pool: { max: 1 } });
    const held = await pool.acquire({ tags: { tenant: 'A' } });
    const waiters = {
      bNormal: observe(pool.acquire({ tags: { tenant: 'B' } })),
      aHigh: observe(pool.acquire({ tags: { tenant: 'A' }, priority: 'high' })),
    };
    await clock.flush();
    pool.release(held);
    await clock.flush();
    expect(served(waiters)).toEqual(['aHigh']);
    pool.release(waiters.aHigh.value!);
    await clock.flush();
    pool.release(waiters.bNormal.value!);
  });
});

describe('rate limits', () => {
  test('over the limit rejects at once with E_RATE_LIMITED, refills on the clock, and leaves the pool untouched', async () => {
    const { pool, clock } = admitted({ rateLimits: { tenant: { default: { perSecond: 2, burst: 2 } } } }, { pool: { max: 3 } });
    const tags = { tenant: 'acme' };
    pool.release(await pool.acquire({ tags }));
    pool.release(await pool.acquire({ tags }));
    const before = pool.stats();
    const refused = observe(pool.acquire({ tags }));
    await clock.flush();
    expect(errorCode(refused.error)).toBe('E_RATE_LIMITED');
    expect((refused.error as Error).message).toContain('tenant=acme is over its limit of 2 acquires per second (burst 2');
    expect((refused.error as Error).message).toContain('next token is free in 500 ms');
    const after = pool.stats();
    expect(after.counters).toEqual(before.counters);
    expect(after).toMatchObject({ waiting: 0, total: before.total });
    expect(after.tags!.tenant.acme).toMatchObject({ rateLimited: 1, acquired: 2 });
    // Another tenant has its own bucket.
    pool.release(await pool.acquire({ tags: { tenant: 'beta' } }));
    await clock.advanceAsync(499);
    await expect(pool.acquire({ tags })).rejects.toMatchObject({ code: 'E_RATE_LIMITED' });
    await clock.advanceAsync(1);
    pool.release(await pool.acquire({ tags }));
  });
});

describe('tags', () => {
  test('a held record shows its holder tags, cleared on release; stats count per value with "(other)" past maxTagValues', async () => {
    const { pool } = admitted({ tagKeys: ['tenant'], maxTagValues: 2 }, { pool: { max: 3 } });
    const a = await pool.acquire({ tags: { tenant: 't1', feature: 'checkout' } });
    const b = await pool.acquire({ tags: { tenant: 't2' } });
    const c = await pool.acquire({ tags: { tenant: 't3' } });
    let stats = pool.stats();
    expect(stats.connections.find((x) => x.id === a.id)!.tags).toEqual({ tenant: 't1', feature: 'checkout' });
    expect(Object.keys(stats.tags!.tenant).sort()).toEqual(['(other)', 't1', 't2']);
    expect(stats.tags!.tenant['(other)']).toMatchObject({ inUse: 1, acquired: 1 });
    expect(stats.tags!.feature).toBeUndefined();
    pool.release(a);
    stats = pool.stats();
    expect(stats.connections.find((x) => x.id === a.id)!.tags).toBeUndefined();
    expect(stats.tags!.tenant.t1).toMatchObject({ inUse: 0, acquired: 1 });
    pool.release(b);
    pool.release(c);
  });

  test('the withTags scope reaches an acquire without options (as knex makes); explicit tags merge over it', async () => {
    const { pool } = admitted({ tagKeys: ['tenant', 'feature'] }, { pool: { max: 3 } });
    const [scoped, merged] = await runWithTags({ tenant: 'acme', feature: 'search' }, () =>
      Promise.all([pool.acquire(), pool.acquire({ tags: { feature: 'checkout' } })]));
    const tagsOf = (e: FakeEntry) => pool.stats().connections.find((x) => x.id === e.id)!.tags;
    expect(tagsOf(scoped)).toEqual({ tenant: 'acme', feature: 'search' });
    expect(tagsOf(merged)).toEqual({ tenant: 'acme', feature: 'checkout' });
    pool.release(scoped);
    pool.release(merged);
    expect(pool.stats().tags!.tenant.acme).toMatchObject({ acquired: 2, inUse: 0 });
  });

  test('a leak report names the holder tags', async () => {
    const { capturingLogger } = await import('../helpers/silent-logger');
    const capture = capturingLogger('warn');
    const { pool, clock } = admitted({}, { pool: { max: 1, leakDetectionThresholdMs: 1_000, keepaliveIntervalMs: 0, idleTimeoutMs: 0, maxLifetimeMs: 0 }, logger: capture.logger });
    const held = await pool.acquire({ tags: { tenant: 'acme' } });
    await clock.advanceAsync(5_000);
    const report = capture.lines.find((l) => l.message.startsWith('Possible connection leak'));
    expect(report?.message).toContain(`${held.id} has been checked out by tenant=acme for`);
    expect(report?.meta).toMatchObject({ tags: { tenant: 'acme' } });
    pool.release(held);
  });

  test('without admission, tags are accepted and nothing is recorded', async () => {
    const { pool } = fakePool({ pool: { max: 1 } });
    const e = await pool.acquire({ tags: { tenant: 'acme' }, priority: 'high' });
    expect(pool.stats().tags).toBeUndefined();
    expect(pool.stats().connections[0].tags).toBeUndefined();
    pool.release(e);
  });

  test('bad tags and priorities are refused with E_INVALID_CONFIG', async () => {
    const { pool } = admitted({}, { pool: { max: 1 } });
    const bad: unknown[] = [
      { tags: 'acme' },
      { tags: { tenant: 5 } },
      { tags: { '': 'x' } },
      { tags: { tenant: 'x'.repeat(129) } },
      { tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      { priority: 'urgent' },
    ];
    for (const options of bad) await expect(pool.acquire(options as never)).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
    expect(pool.stats().counters.acquired).toBe(0);
  });

  test('admission options are validated', () => {
    const base = { connection: 'postgres://127.0.0.1/x' };
    const bad: unknown[] = [
      'on', { fairness: 'tenant' }, { tagKeys: ['bad key'] }, { maxTagValues: 0 }, { priorityAgingMs: -1 },
      { quotas: { tenant: { acme: 0 } } }, { quotas: { tenant: 5 } }, { fairShare: 3 },
      { rateLimits: { tenant: { default: { perSecond: 0 } } } }, { rateLimits: { tenant: { default: { perSecond: 1, burst: 0.5 } } } },
      { rateLimits: { tenant: { default: { perSecond: 1, per: 2 } } } },
    ];
    for (const admission of bad) expect(() => resolveOptions({ ...base, admission })).toThrow(expect.objectContaining({ code: 'E_INVALID_CONFIG' }));
    const ok = resolveOptions({ ...base, admission: { fairShare: 'tenant', quotas: { feature: { default: 3 } }, rateLimits: { tenant: { default: { perSecond: 2.5 } } } } });
    expect(ok.admission).toMatchObject({ tagKeys: ['tenant', 'feature'], maxTagValues: 100, priorityAgingMs: 1000 });
    expect(ok.admission!.rateLimits.tenant.default).toEqual({ perSecond: 2.5, burst: 3 });
    expect(resolveOptions(base).admission).toBeUndefined();
  });
});

describe('tags in metrics and kcm stats', () => {
  test('/metrics has a series per tag value labelled by its key; kcm stats shows holders and a tag table', async () => {
    const { PoolMetrics } = await import('../../lib/admin/metrics');
    const { formatStats } = await import('../../lib/cli/format');
    const { pool } = admitted({ tagKeys: ['tenant'], rateLimits: { tenant: { default: { perSecond: 1, burst: 1 } } } }, { pool: { max: 2 } });
    const held = await pool.acquire({ tags: { tenant: 'acme', feature: 'checkout' } });
    await expect(pool.acquire({ tags: { tenant: 'acme' } })).rejects.toMatchObject({ code: 'E_RATE_LIMITED' });
    const text = await new PoolMetrics(() => pool.stats()).scrape();
    expect(text).toContain('kcm_tag_connections_in_use{pool="primary",tenant="acme"} 1');
    expect(text).toContain('kcm_tag_acquired_total{pool="primary",tenant="acme"} 1');
    expect(text).toContain('kcm_tag_rate_limited_total{pool="primary",tenant="acme"} 1');
    const out = formatStats(pool.stats());
    expect(out).toMatch(/in use .*tenant=acme,feature=checkout/);
    expect(out).toMatch(/tenant=acme\s+1\s+0\s+1\s+0 ms\s+0\s+1\s/);
    pool.release(held);
    expect(await new PoolMetrics(() => pool.stats()).scrape()).toContain('kcm_tag_connections_in_use{pool="primary",tenant="acme"} 0');
  });
});
