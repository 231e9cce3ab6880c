/**
 * The N of `conn_<N>_<ns>`: counts from 1 and is never reused while the process lives — across
 * `resetPool()`, across managers, and across copies of this package loaded side by side (the
 * counter lives on `globalThis` under a registered symbol, like the manager itself).
 */
const KEY = Symbol.for('knex-connection-manager.connection-sequence');

interface SequenceHolder {
  [KEY]?: { last: number };
}

const holder = globalThis as SequenceHolder;
const sequence = (holder[KEY] ??= { last: 0 });

/** The next connection number. */
export function nextConnectionNumber(): number {
  return ++sequence.last;
}
