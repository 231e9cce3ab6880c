/**
 * Read/write splitting over a real primary and a real hot standby streaming from it
 * (spec/helpers/replica-cluster.ts). Which server ran a statement is proven by the server itself:
 * `pg_is_in_recovery()` is true only on the standby.
 *
 * Covered here: where leases, `manager.query`, `readKnex` and transactions run; that writes sent
 * through the read path never reach the standby; how the strategies spread reads; read-your-writes.
 * Failures (a standby stopped under load, replay lag) are in routing-faults.spec.ts.
 */
import { AsyncResource } from 'node:async_hooks';
import {
  closeConnectionInstance,
  getConnectionInstance,
  type ConnectionManager,
  type ConnectionManagerConfig,
  type PooledConnection,
  type ReplicaConfig,
  type RoutingOptions,
} from '../../lib';
import { until } from '../helpers/poll';
import { useReplicaCluster, type ReplicaCluster } from '../helpers/replica-cluster';

let cluster: ReplicaCluster;
let appCounter = 0;

useReplicaCluster((c) => (cluster = c), {
  statements: [
    'CREATE TABLE routing_items (id serial PRIMARY KEY, note text NOT NULL)',
    "INSERT INTO routing_items (note) VALUES ('seed')",
    'CREATE SEQUENCE routing_seq',
  ],
  replayedSql: "SELECT 1 FROM pg_class WHERE relname = 'routing_seq'",
});

afterEach(async () => {
  await closeConnectionInstance();
});

/** A manager over the cluster; replicas default to one, `replica`, on the standby. */
function startManager(
  routing: RoutingOptions = {},
  replicas?: (app: string) => ReplicaConfig[],
): { manager: ConnectionManager; app: string } {
  const app = `kcm-routing-${process.pid}-${++appCounter}`;
  const config: ConnectionManagerConfig = {
    connection: { connectionString: cluster.primaryUrl, application_name: app },
    pool: { min: 1, max: 8 },
    logger: { level: 'error' },
    replicas: replicas?.(app) ?? [{ name: 'replica', connection: { connectionString: cluster.replicaUrl, application_name: `${app}-replica` } }],
    routing,
  };
  return { manager: getConnectionInstance(config), app };
}

/** ready(), then until every replica is in rotation. */
async function readyWithReplicas(manager: ConnectionManager): Promise<void> {
  await manager.ready();
  await until(() => Object.values(manager.getPoolStats().replicas ?? {}).every((r) => r.healthy), {
    timeoutMs: 15_000,
    description: 'every replica healthy',
  });
}

/** True when `manager.query` ran this read on the standby. */
async function queryServedByStandby(manager: ConnectionManager): Promise<boolean> {
  return (await manager.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r;
}

/** Runs fn in an async context of its own, so that a write noted inside it stays inside it. */
function inOwnContext<T>(fn: () => Promise<T>): Promise<T> {
  return new AsyncResource('kcm-routing-test').runInAsyncScope(fn);
}

function replicaAcquired(manager: ConnectionManager, name: string): number {
  const stats = manager.getPoolStats().replicas?.[name];
  if (!stats) throw new Error(`no replica named ${name}`);
  return stats.counters.acquired;
}

describe('routing over a real hot standby', () => {
  test('getConnection: intent read leases from the standby; write and no intent from the primary', async () => {
    const { manager } = startManager();
    await readyWithReplicas(manager);

    const onStandby = async (intent?: 'read' | 'write') =>
      manager.withConnection(async (conn) => (await conn.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r, intent ? { intent } : {});

    expect(await onStandby('read')).toBe(true);
    expect(await onStandby()).toBe(false);
    // A write intent marks this context as having written: read it back from elsewhere.
    expect(await inOwnContext(() => onStandby('write'))).toBe(false);
    expect(await onStandby('read')).toBe(true);

    const lease = await manager.getConnection({ intent: 'read' });
    try {
      expect((await lease.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
      expect(manager.getPoolStats().replicas?.replica.inUse).toBe(1);
    } finally {
      await manager.releaseConnection(lease);
    }
    expect(manager.getPoolStats().replicas?.replica.inUse).toBe(0);
  });

  test('manager.query runs reads on the standby and writes on the primary', async () => {
    const { manager } = startManager();
    await readyWithReplicas(manager);

    expect(await queryServedByStandby(manager)).toBe(true);
    const inserted = await inOwnContext(() => manager.query<{ id: number }>('INSERT INTO routing_items (note) VALUES ($1) RETURNING id', ['query']));
    expect(inserted.rowCount).toBe(1);
    // The row reaches the standby by replication, and a read from a fresh context finds it there.
    await until(async () => (await manager.query('SELECT 1 FROM routing_items WHERE id = $1', [inserted.rows[0].id])).rowCount === 1, {
      timeoutMs: 10_000,
      description: 'the inserted row replayed on the standby',
    });
    expect(await queryServedByStandby(manager)).toBe(true);
  });

  test('readKnex reads from the standby; its transactions run on the primary', async () => {
    const { manager } = startManager();
    await readyWithReplicas(manager);

    const raw = await manager.readKnex.raw<{ rows: Array<{ r: boolean }> }>('select pg_is_in_recovery() as r');
    expect(raw.rows[0].r).toBe(true);
    const built = await manager.readKnex.select(manager.readKnex.raw('pg_is_in_recovery() as r'));
    expect(built).toEqual([{ r: true }]);
    const rows = await manager.readKnex('routing_items').select('note').where({ note: 'seed' });
    expect(rows).toEqual([{ note: 'seed' }]);

    const inTransaction = await manager.readKnex.transaction(async (trx) => {
      const [{ id }] = await trx('routing_items').insert({ note: 'readKnex trx' }).returning<Array<{ id: number }>>('id');
      const r = (await trx.raw<{ rows: Array<{ r: boolean }> }>('select pg_is_in_recovery() as r')).rows[0].r;
      return { id, r };
    });
    expect(inTransaction.r).toBe(false);
    expect(typeof inTransaction.id).toBe('number');
    // The primary's knex is the primary's, whatever the statement.
    expect((await manager.knex.raw<{ rows: Array<{ r: boolean }> }>('select pg_is_in_recovery() as r')).rows[0].r).toBe(false);
  });

  test('a write sent through the read path never reaches the standby', async () => {
    const { manager } = startManager();
    await readyWithReplicas(manager);
    const primaryAcquiredBefore = manager.getPoolStats().counters.acquired;
    const replicaAcquiredBefore = replicaAcquired(manager, 'replica');

    const writes: Array<[string, unknown[]]> = [
      ['INSERT INTO routing_items (note) VALUES ($1)', ['insert']],
      ["UPDATE routing_items SET note = note WHERE note = 'seed'", []],
      ["DELETE FROM routing_items WHERE note = 'nothing matches this'", []],
      ["SELECT nextval('routing_seq') AS v", []],
      ["SELECT id FROM routing_items WHERE note = 'seed' FOR UPDATE", []],
      ["SELECT id FROM routing_items WHERE note = 'seed' FOR SHARE", []],
      ["WITH moved AS (INSERT INTO routing_items (note) VALUES ('cte') RETURNING id) SELECT id FROM moved", []],
      ["SELECT set_config('application_name', current_setting('application_name'), false)", []],
      ["SELECT pg_advisory_xact_lock(42)", []],
      ["/* kcm:primary */ SELECT pg_is_in_recovery() AS r", []],
    ];
    for (const [sql, bindings] of writes) {
      // Each in a context of its own, so that read-your-writes plays no part in where the next goes.
      await expect(inOwnContext(() => manager.query(sql, bindings))).resolves.toBeDefined();
    }
    expect((await inOwnContext(() => manager.query<{ r: boolean }>('/* kcm:primary */ SELECT pg_is_in_recovery() AS r'))).rows[0].r).toBe(false);
    // None of them was even tried on the standby: its pool lent nothing (a 25006 retried on the
    // primary would have shown here); all ran on the primary.
    expect(replicaAcquired(manager, 'replica')).toBe(replicaAcquiredBefore);
    expect(manager.getPoolStats().counters.acquired - primaryAcquiredBefore).toBeGreaterThanOrEqual(writes.length + 1);
    expect(manager.getPoolStats().replicas?.replica.healthy).toBe(true);
  });

  test('an explicit read lease is the caller\'s promise: a write on it fails with 25006 (readKnex classifies instead)', async () => {
    const { manager } = startManager();
    await readyWithReplicas(manager);

    const lease = await manager.getConnection({ intent: 'read' });
    try {
      await expect(lease.query('INSERT INTO routing_items (note) VALUES ($1)', ['must fail'])).rejects.toMatchObject({ code: '25006' });
      await expect(lease.query("SELECT nextval('routing_seq')")).rejects.toMatchObject({ code: '25006' });
    } finally {
      await manager.releaseConnection(lease);
    }
    // readKnex leases for reads too, but classifies each statement: a write through it runs on the
    // primary (its lease on the standby lends the connection, nothing runs there).
    const [{ id }] = await inOwnContext(() => manager.readKnex('routing_items').insert({ note: 'readKnex write' }).returning<Array<{ id: number }>>('id'));
    expect(id).toBeGreaterThan(0);
    expect(manager.getPoolStats().routing?.readOnlyRefusals).toBe(0);
    // The standby did nothing wrong: it stays in rotation.
    expect(manager.getPoolStats().replicas?.replica.healthy).toBe(true);
    expect(await queryServedByStandby(manager)).toBe(true);
  });
});

describe('strategies (the one standby registered twice, as r1 and r2)', () => {
  const twoNames =
    (weights: [number, number] = [1, 1]) =>
    (app: string): ReplicaConfig[] => [
      { name: 'r1', connection: { connectionString: cluster.replicaUrl, application_name: `${app}-r1` }, weight: weights[0] },
      { name: 'r2', connection: { connectionString: cluster.replicaUrl, application_name: `${app}-r2` }, weight: weights[1] },
    ];

  /** Which replica ran a read: the session's application_name ends with its name. */
  async function servedBy(run: () => Promise<{ rows: Array<{ app: string }> }>): Promise<string> {
    const app = (await run()).rows[0].app;
    const match = /-(r1|r2)$/.exec(app);
    return match ? (match[1] as string) : 'primary';
  }
  const appSql = "SELECT split_part(current_setting('application_name'), ':', 1) AS app";

  test('round-robin alternates exactly', async () => {
    const { manager } = startManager({ strategy: 'round-robin' }, twoNames());
    await readyWithReplicas(manager);

    const order: string[] = [];
    for (let i = 0; i < 20; i++) order.push(await servedBy(() => manager.query<{ app: string }>(appSql)));
    expect(order).not.toContain('primary');
    for (let i = 1; i < order.length; i++) expect(order[i]).not.toBe(order[i - 1]);
    // Explicit read leases take their turn in the same rotation.
    const leases = [await manager.getConnection({ intent: 'read' }), await manager.getConnection({ intent: 'read' })];
    try {
      const names = await Promise.all(leases.map((l) => servedBy(() => l.query<{ app: string }>(appSql))));
      expect(names.sort()).toEqual(['r1', 'r2']);
    } finally {
      for (const l of leases) await manager.releaseConnection(l);
    }
  });

  test('random follows the weights (3:1, loosely)', async () => {
    const { manager } = startManager({ strategy: 'random' }, twoNames([3, 1]));
    await readyWithReplicas(manager);

    const reads = 400;
    const counts: Record<string, number> = { r1: 0, r2: 0, primary: 0 };
    // Eight at a time: bounded, and quicker than one by one.
    for (let done = 0; done < reads; done += 8) {
      const names = await Promise.all(Array.from({ length: 8 }, () => servedBy(() => manager.query<{ app: string }>(appSql))));
      for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
    }
    expect(counts.primary).toBe(0);
    expect(counts.r1 + counts.r2).toBe(reads);
    // Expected share 0.75 with a standard deviation of about 0.02: the band is wide on purpose.
    const share = counts.r1 / reads;
    expect(share).toBeGreaterThan(0.6);
    expect(share).toBeLessThan(0.9);
  });

  test('least-busy sends the next read to the replica with fewer connections in use', async () => {
    const { manager } = startManager({ strategy: 'least-busy' }, twoNames());
    await readyWithReplicas(manager);

    const held: Array<{ name: string; lease: PooledConnection }> = [];
    const take = async () => {
      const lease = await manager.getConnection({ intent: 'read' });
      const name = await servedBy(() => lease.query<{ app: string }>(appSql));
      held.push({ name, lease });
      return name;
    };
    try {
      // Six held leases balance out, three each.
      for (let i = 0; i < 6; i++) await take();
      expect(held.filter((h) => h.name === 'r1')).toHaveLength(3);
      expect(held.filter((h) => h.name === 'r2')).toHaveLength(3);
      expect(manager.getPoolStats().replicas?.r1.inUse).toBe(3);

      // Give back r2's: r1 holds 3, r2 none, so the next three all go to r2.
      for (const h of held.filter((x) => x.name === 'r2')) await manager.releaseConnection(h.lease);
      held.splice(0, held.length, ...held.filter((x) => x.name === 'r1'));
      expect(manager.getPoolStats().replicas?.r2.inUse).toBe(0);
      expect([await take(), await take(), await take()]).toEqual(['r2', 'r2', 'r2']);

      // manager.query follows the same rule: with r2 busier, a read goes to r1.
      const [one] = held.splice(held.findIndex((h) => h.name === 'r1'), 1);
      await manager.releaseConnection(one.lease);
      expect(await servedBy(() => manager.query<{ app: string }>(appSql))).toBe('r1');
    } finally {
      for (const h of held) await manager.releaseConnection(h.lease);
    }
  });
});

describe('read-your-writes', () => {
  test('after a write, reads in the same async context go to the primary; other contexts read the standby', async () => {
    const { manager } = startManager({ readYourWritesMs: 60_000 });
    await readyWithReplicas(manager);

    const writer = inOwnContext(async () => {
      const before = await queryServedByStandby(manager);
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['read-your-writes']);
      const own = (await manager.query<{ n: number }>("SELECT count(*)::int AS n FROM routing_items WHERE note = 'read-your-writes'")).rows[0].n;
      const after = await queryServedByStandby(manager);
      // Everything this context reads after the write comes from the primary: leases and readKnex too.
      const lease = await manager.withConnection(
        async (conn) => (await conn.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r,
        { intent: 'read' },
      );
      const viaReadKnex = (await manager.readKnex.raw<{ rows: Array<{ r: boolean }> }>('select pg_is_in_recovery() as r')).rows[0].r;
      // ...including work it starts afterwards (it inherits the context).
      const child = await new Promise<boolean>((resolve, reject) => setImmediate(() => queryServedByStandby(manager).then(resolve, reject)));
      return { before, own, after, lease, viaReadKnex, child };
    });
    const result = await writer;
    expect(result).toEqual({ before: true, own: 1, after: false, lease: false, viaReadKnex: false, child: false });

    // Another context, and the test itself, never wrote: they read from the standby.
    expect(await inOwnContext(() => queryServedByStandby(manager))).toBe(true);
    expect(await queryServedByStandby(manager)).toBe(true);
  });

  test('a reader running alongside the writer is not affected by its write', async () => {
    const { manager } = startManager({ readYourWritesMs: 60_000 });
    await readyWithReplicas(manager);

    let wrote!: () => void;
    const written = new Promise<void>((resolve) => (wrote = resolve));
    // The reader starts first and reads once the writer has written.
    const reader = inOwnContext(async () => {
      await written;
      return queryServedByStandby(manager);
    });
    const writer = inOwnContext(async () => {
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['concurrent']);
      wrote();
      const readerOnStandby = await reader;
      return { readerOnStandby, writerOnStandby: await queryServedByStandby(manager) };
    });
    expect(await writer).toEqual({ readerOnStandby: true, writerOnStandby: false });
  });

  test('limit: a write made by an awaited helper after its own first await is not seen by the caller', async () => {
    const { manager } = startManager({ readYourWritesMs: 60_000 });
    await readyWithReplicas(manager);

    // The helper writes in a continuation of its own; the mark stays there.
    const saveRow = async () => {
      await Promise.resolve();
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['helper']);
      return queryServedByStandby(manager);
    };
    // The helper writes in its first synchronous stretch, i.e. in the caller's own context.
    const saveRowAtOnce = async () => {
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['helper at once']);
      return queryServedByStandby(manager);
    };
    const late = await inOwnContext(async () => ({ helper: await saveRow(), caller: await queryServedByStandby(manager) }));
    expect(late).toEqual({ helper: false, caller: true });
    const early = await inOwnContext(async () => ({ helper: await saveRowAtOnce(), caller: await queryServedByStandby(manager) }));
    expect(early).toEqual({ helper: false, caller: false });
  });

  test('withReadYourWrites: a write made deep inside the scope is seen by every read in it', async () => {
    const { manager } = startManager({ readYourWritesMs: 60_000 });
    await readyWithReplicas(manager);

    const saveRow = async () => {
      await Promise.resolve();
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['scoped helper']);
    };
    const scoped = await manager.withReadYourWrites(async () => {
      const before = await queryServedByStandby(manager);
      await saveRow();
      return { before, after: await queryServedByStandby(manager) };
    });
    expect(scoped).toEqual({ before: true, after: false });
    // Outside the scope nothing was written: reads go to the standby.
    expect(await inOwnContext(() => queryServedByStandby(manager))).toBe(true);
  });

  test('readYourWritesMs 0 turns it off: the read after a write goes to the standby', async () => {
    const { manager } = startManager({ readYourWritesMs: 0 });
    await readyWithReplicas(manager);

    const afterWrite = await inOwnContext(async () => {
      await manager.query('INSERT INTO routing_items (note) VALUES ($1)', ['no read-your-writes']);
      const viaQuery = await queryServedByStandby(manager);
      const viaLease = await manager.withConnection(
        async (conn) => (await conn.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r,
        { intent: 'read' },
      );
      return { viaQuery, viaLease };
    });
    expect(afterWrite).toEqual({ viaQuery: true, viaLease: true });
  });
});
