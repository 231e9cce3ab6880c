/**
 * The test doubles themselves: the fake clock fires timers in deadline order (also ones set while
 * time advances), and the fake connector keeps the `Connector` contract (an open settles within
 * its timeout, whatever the gate does).
 */
import { FakeClock } from '../helpers/fake-clock';
import { FakeConnectError, FakeConnector } from '../helpers/fake-connector';
import { observe } from '../helpers/invariants';

describe('FakeClock', () => {
  test('advance() fires due timers in deadline order, ties in the order they were set', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimer(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimer(() => fired.push(`c@${clock.now()}`), 20);
    clock.setTimer(() => fired.push(`late@${clock.now()}`), 31);
    clock.advance(30);
    expect(fired).toEqual(['a@10', 'b@20', 'c@20']);
    expect(clock.now()).toBe(30);
    expect(clock.pendingTimers()).toBe(1);
  });

  test('timers set by a firing callback fire in the same advance when they fall due', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const tick = (): void => {
      fired.push(clock.now());
      clock.setTimer(tick, 25);
    };
    clock.setTimer(tick, 25);
    clock.advance(100);
    expect(fired).toEqual([25, 50, 75, 100]);
    expect(clock.pendingTimers()).toBe(1);
  });

  test('clearTimer() cancels, and unknown handles are ignored', () => {
    const clock = new FakeClock(0);
    const fn = jest.fn();
    const handle = clock.setTimer(fn, 5);
    clock.clearTimer(handle);
    clock.clearTimer(undefined);
    clock.clearTimer('nope');
    clock.advance(10);
    expect(fn).not.toHaveBeenCalled();
    expect(clock.pendingTimers()).toBe(0);
  });

  test('advanceAsync() lets promise continuations run between timers', async () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(resolve, ms));
    const chain = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(10);
        seen.push(clock.now());
      }
    })();
    await clock.advanceAsync(100);
    await chain;
    expect(seen).toEqual([10, 20, 30]);
  });

  test('wall time and ids move with the monotonic time', () => {
    const clock = new FakeClock(1_000, 1_700_000_000_000);
    expect(clock.wallNow()).toBe(1_700_000_001_000);
    clock.advance(1.5);
    expect(clock.wallNowNs()).toBe(1_700_000_001_001_500_000n);
  });
});

describe('FakeConnector', () => {
  test('outcomes are consumed in order, then the default applies', async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(clock).enqueue('fail', 'fail-permanent');
    await expect(connector.open(100)).rejects.toBeInstanceOf(FakeConnectError);
    const permanent = await connector.open(100).catch((e: unknown) => e);
    expect(connector.isRetryable(permanent)).toBe(false);
    const conn = await connector.open(100);
    expect(conn).toMatchObject({ serial: 1, open: true });
    expect(connector).toMatchObject({ openAttempts: 3, opens: 1, openCount: 1 });
    await connector.close(conn);
    await connector.close(conn);
    expect(connector).toMatchObject({ closes: 1, openCount: 0, doubleCloses: 1 });
  });

  test("a 'slow' gate opens on release; a 'hang' one only ends at the open's timeout", async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(clock).enqueue('slow', 'hang', { slow: 50 });
    const slow = observe(connector.open(1_000));
    const hang = observe(connector.open(1_000));
    const timed = observe(connector.open(1_000));
    expect(connector.inFlight).toBe(3);
    const [slowGate, hangGate] = connector.gates;
    slowGate?.release();
    hangGate?.release(); // ignored
    await clock.advanceAsync(50);
    expect([slow.state, hang.state, timed.state]).toEqual(['resolved', 'pending', 'resolved']);
    await clock.advanceAsync(950);
    expect(hang.state).toBe('rejected');
    expect(hangGate?.state).toBe('timedOut');
    expect(connector).toMatchObject({ inFlight: 0, openCount: 2, peakOccupied: 3 });
  });

  test('a gate released after its timeout produces no connection', async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(clock).enqueue('slow');
    const open = observe(connector.open(100));
    await clock.advanceAsync(100);
    connector.gates[0]?.release();
    await clock.flush();
    expect(open.state).toBe('rejected');
    expect(connector).toMatchObject({ opens: 0, openCount: 0 });
  });

  test('killConnection() calls the watcher once and marks the connection dead', async () => {
    const connector = new FakeConnector(new FakeClock());
    const conn = await connector.open(100);
    const onBroken = jest.fn();
    connector.watch(conn, onBroken);
    connector.killConnection(conn);
    connector.killConnection(conn);
    expect(onBroken).toHaveBeenCalledTimes(1);
    await expect(connector.validate(conn, 100)).resolves.toBe(false);
    // Watching a connection that is already dead reports it at once.
    const late = jest.fn();
    connector.watch(conn, late);
    expect(late).toHaveBeenCalledTimes(1);
  });
});
