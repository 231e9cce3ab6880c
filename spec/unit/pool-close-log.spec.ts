/**
 * The forced-close line at close() names both times: how long after close() began, and how long
 * the connection had been held (they differ when it was checked out long before close()).
 */
import { checkedFakePools } from '../helpers/invariants';
import { capturingLogger } from '../helpers/silent-logger';

const fakePool = checkedFakePools();

test('the forced-close warning says how long after close() began and how long the connection was held', async () => {
  const capture = capturingLogger('warn');
  const setup = fakePool({ pool: { min: 0, max: 1, closeTimeoutMs: 2_000 }, logger: capture.logger });
  const { pool, clock } = setup;
  const held = await pool.acquire();
  await clock.advanceAsync(30_000);
  void pool.close();
  await clock.advanceAsync(2_000);
  const line = capture.messages().find((m) => m.includes('by force'));
  expect(line).toBe(`Closing connection ${held.id} by force: still checked out 2000 ms after close() began (held for 32000 ms)`);
});
