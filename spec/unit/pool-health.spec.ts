/**
 * Connection health: a connection the driver reports dead is never handed out again, one released
 * inside a transaction is rolled back before the next caller gets it (and closed if the rollback
 * fails), and validate() answers without throwing.
 */
import type { FakeConn, FakeEntry } from '../helpers/fake-connector';
import { checkedFakePools, checkInvariants, observe } from '../helpers/invariants';

const fakePool = checkedFakePools();

const rawOf = (entry: FakeEntry | undefined): FakeConn => entry?.raw as FakeConn;

describe('dead connections', () => {
  test('a connection killed while idle is closed at once, never handed out, and replaced to keep min', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 2, max: 3 } });
    await clock.flush();
    const [first, second] = connector.openConnections() as [FakeConn, FakeConn];
    connector.killConnection(first);
    expect(first.open).toBe(false); // close() was called synchronously with the kill
    await clock.flush();
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 2, idle: 2 });
    expect(pool.stats().counters.validationFailures).toBe(1);
    const handedOut = [await pool.acquire(), await pool.acquire()];
    expect(handedOut.map(rawOf)).not.toContain(first);
    expect(handedOut.map(rawOf)).toContain(second);
    for (const e of handedOut) pool.release(e);
  });

  test('killing every idle connection makes the next acquire open a fresh one', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 } });
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(a);
    pool.release(b);
    for (const conn of connector.openConnections()) connector.killConnection(conn);
    const fresh = await pool.acquire();
    expect(rawOf(fresh).dead).toBe(false);
    expect(connector.opens).toBe(3);
    await clock.flush();
    pool.release(fresh);
  });

  test('a connection killed while checked out is closed on release and not given to the next waiter', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const waiter = observe(pool.acquire());
    connector.killConnection(rawOf(held));
    expect(held.state).toBe('inUse'); // the holder still has it until it gives it back
    pool.release(held);
    await clock.flush();
    expect(waiter.state).toBe('resolved');
    expect(waiter.value).not.toBe(held);
    expect(rawOf(waiter.value).dead).toBe(false);
    expect(rawOf(held).open).toBe(false);
    expect(pool.stats().counters.validationFailures).toBe(1);
    pool.release(waiter.value as FakeEntry);
  });

  test('a connection that dies while being added to the pool is closed instead of handed out', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1 } });
    connector.defaultOutcome = 'slow';
    const waiter = observe(pool.acquire());
    await clock.flush();
    const gate = connector.waitingGates()[0];
    gate?.release();
    // The socket dies before the pool has registered the new record (and its watch callback).
    connector.killConnection(gate?.conn as FakeConn);
    connector.defaultOutcome = 'ok';
    await clock.flush();
    expect(waiter.state).toBe('resolved');
    expect(rawOf(waiter.value)).not.toBe(gate?.conn);
    expect(gate?.conn?.open).toBe(false);
    pool.release(waiter.value as FakeEntry);
  });

  test('validate() is false for a dead or failing connection and never rejects', async () => {
    const { pool, connector } = fakePool({ pool: { min: 0, max: 2 } });
    const a = await pool.acquire();
    const b = await pool.acquire();
    await expect(pool.validate(a)).resolves.toBe(true);
    rawOf(b).valid = false;
    await expect(pool.validate(b)).resolves.toBe(false);
    connector.killConnection(rawOf(a));
    await expect(pool.validate(a)).resolves.toBe(false);
    pool.release(a);
    pool.release(b);
    await expect(pool.validate(a)).resolves.toBe(false); // closed
    // A connection that failed validation is never handed out again: closed on release.
    expect(pool.owns(a)).toBe(false);
    expect(pool.owns(b)).toBe(false);
    expect(rawOf(b).open).toBe(false);
  });

  test('an idle connection that fails validate() is closed at once', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 1, max: 2 } });
    await clock.flush();
    const [entry] = pool.openEntries();
    rawOf(entry).valid = false;
    await expect(pool.validate(entry as FakeEntry)).resolves.toBe(false);
    await clock.flush();
    expect(rawOf(entry).open).toBe(false);
    expect(checkInvariants(pool, connector)).toMatchObject({ total: 1, idle: 1 }); // refilled to min
  });
});

describe('released inside a transaction', () => {
  test('is rolled back before the next caller gets it', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const waiter = observe(pool.acquire());
    rawOf(held).inTransaction = true;
    let inTransactionWhenServed: boolean | undefined;
    void waiter.promise.then((e) => (inTransactionWhenServed = rawOf(e).inTransaction));
    pool.release(held);
    expect(held.state).toBe('reserved');
    expect(pool.stats()).toMatchObject({ total: 1, inUse: 1, idle: 0 });
    await clock.flush();
    expect(waiter.value).toBe(held);
    expect(inTransactionWhenServed).toBe(false);
    pool.release(held);
    expect(pool.stats()).toMatchObject({ idle: 1 });
  });

  test('is closed, and the waiter served by a new connection, when the rollback fails', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    const waiter = observe(pool.acquire());
    rawOf(held).inTransaction = true;
    rawOf(held).rollback = 'fail';
    pool.release(held);
    await clock.flush();
    expect(held.state).toBe('closed');
    expect(rawOf(held).open).toBe(false);
    expect(waiter.state).toBe('resolved');
    expect(waiter.value).not.toBe(held);
    expect(rawOf(waiter.value).inTransaction).toBe(false);
    expect(pool.stats().counters.validationFailures).toBe(1);
    pool.release(waiter.value as FakeEntry);
  });

  test('is closed when the session is still in a transaction after the rollback', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    rawOf(held).inTransaction = true;
    rawOf(held).rollback = 'noop';
    pool.release(held);
    await clock.flush();
    expect(held.state).toBe('closed');
    expect(pool.stats()).toMatchObject({ total: 0 });
  });

  test('is closed when the rollback outlasts validationTimeoutMs', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 1, validationTimeoutMs: 200 } });
    const held = await pool.acquire();
    rawOf(held).inTransaction = true;
    const hanging = new Promise<void>(() => undefined);
    const rollback = jest.spyOn(connector, 'rollback').mockReturnValue(hanging);
    pool.release(held);
    await clock.advanceAsync(199);
    expect(held.state).toBe('reserved');
    await clock.advanceAsync(1);
    expect(held.state).toBe('closed');
    expect(rollback).toHaveBeenCalledTimes(1);
  });

  test('a retired connection is closed after its rollback instead of going back to idle', async () => {
    const { pool, clock } = fakePool({ pool: { min: 0, max: 1 } });
    const held = await pool.acquire();
    rawOf(held).inTransaction = true;
    pool.release(held);
    expect(pool.softEvict(held, 'retired')).toBe(true);
    await clock.flush();
    expect(held.state).toBe('closed');
    expect(rawOf(held).inTransaction).toBe(false);
  });
});
