/** The pool's growth arithmetic (lib/pool/growth.ts), as tables. */
import { opensToStart, uncoveredWaiters } from '../../lib/pool/growth';

describe('uncoveredWaiters', () => {
  test.each([
    // waiting, pending, incoming, uncovered
    [0, 0, 0, 0],
    [3, 0, 0, 3],
    [3, 2, 0, 1],
    [3, 2, 1, 0],
    [3, 4, 1, -2],
  ])('%i waiting, %i opening, %i on their way → %i', (waiting, pending, incoming, expected) => {
    expect(uncoveredWaiters(waiting, pending, incoming)).toBe(expected);
  });
});

describe('opensToStart', () => {
  test.each([
    // waiting, pending, incoming, open, occupied, min, max, opens
    [0, 0, 0, 0, 0, 0, 10, 0], // nothing needed
    [0, 0, 0, 0, 0, 3, 10, 3], // fill to min
    [0, 1, 0, 1, 2, 3, 10, 1], // min, one already opening
    [5, 0, 0, 2, 2, 0, 10, 5], // one open per uncovered waiter
    [5, 2, 1, 2, 4, 0, 10, 2], // opens in flight and a validation cover three
    [5, 0, 0, 8, 8, 0, 10, 2], // capped by room below max
    [5, 0, 0, 8, 10, 0, 10, 0], // two closing fill the room: none
    [2, 0, 0, 0, 0, 6, 10, 6], // min needs more than the waiters
    [6, 0, 0, 0, 0, 2, 10, 6], // the waiters need more than min
    [0, 0, 0, 5, 5, 3, 10, 0], // above min, nobody waiting
    [1, 3, 0, 0, 3, 0, 2, 0], // more opening than max (after a shrink): never negative
  ])('%i waiting, %i opening, %i on their way, %i open, %i occupied, min %i, max %i → %i', (waiting, pending, incoming, open, occupied, min, max, expected) => {
    expect(opensToStart(waiting, pending, incoming, open, occupied, min, max)).toBe(expected);
  });
});

describe('opensToStart with pool.minIdle', () => {
  test.each([
    // waiting, pending, open, occupied, min, max, idle, minIdle, opens
    [0, 0, 0, 0, 0, 10, 0, 2, 2], // two idle wanted, none: open two
    [0, 0, 5, 5, 0, 10, 0, 2, 2], // five in use, none idle: two more
    [0, 1, 5, 6, 0, 10, 0, 2, 1], // one already opening counts
    [0, 0, 5, 5, 0, 10, 2, 2, 0], // enough idle
    [0, 0, 9, 9, 0, 10, 0, 3, 1], // capped by max
    [0, 0, 3, 3, 4, 10, 3, 2, 1], // min needs more than minIdle
    [4, 0, 4, 4, 0, 10, 0, 2, 4], // waiters need more than minIdle
  ])('%i waiting, %i opening, %i open, %i occupied, min %i, max %i, %i idle, minIdle %i → %i', (waiting, pending, open, occupied, min, max, idle, minIdle, expected) => {
    expect(opensToStart(waiting, pending, 0, open, occupied, min, max, idle, minIdle)).toBe(expected);
  });
});
