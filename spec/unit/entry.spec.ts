/**
 * The record's state machine (lib/pool/entry.ts): every pair of states, from × to, against the
 * transition table — legal moves succeed, every other move throws and leaves the state unchanged.
 */
import { PoolEntry, type EntryState } from '../../lib/pool/entry';

const STATES: readonly EntryState[] = ['creating', 'idle', 'inUse', 'reserved', 'closing', 'closed'];

/** The documented table (docs/lifecycle.md), written out independently of the code's. */
const LEGAL: Readonly<Record<EntryState, readonly EntryState[]>> = {
  creating: ['reserved', 'closing'],
  idle: ['inUse', 'reserved', 'closing'],
  inUse: ['idle', 'reserved', 'closing'],
  reserved: ['idle', 'inUse', 'closing'],
  closing: ['closed'],
  closed: [],
};

const PAIRS = STATES.flatMap((from) => STATES.map((to) => [from, to, LEGAL[from].includes(to)] as const));

test('the table covers all 36 pairs, 12 of them legal', () => {
  expect(PAIRS).toHaveLength(36);
  expect(PAIRS.filter(([, , legal]) => legal)).toHaveLength(12);
});

test.each(PAIRS)('%s → %s is legal: %s', (from, to, legal) => {
  const entry = new PoolEntry<unknown>({});
  entry.state = from;
  if (legal) {
    entry.transition(to);
    expect(entry.state).toBe(to);
  } else {
    expect(() => entry.transition(to)).toThrow(`Illegal connection state change ${from} -> ${to}`);
    expect(entry.state).toBe(from);
  }
});
