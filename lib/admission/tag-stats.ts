/**
 * Per-tag statistics with bounded cardinality: only the configured keys are counted, and at most
 * `maxTagValues` values per key; later values share the `"(other)"` row. Rows are never dropped,
 * so a counter never goes backwards.
 */
import { OTHER_VALUE, type TagStats, type TagStatsByKey, type Tags } from './types';

function newRow(): TagStats {
  return { inUse: 0, waiting: 0, acquired: 0, timedOut: 0, rateLimited: 0, wait: { count: 0, totalMs: 0, maxMs: 0 }, heldMs: 0 };
}

const NO_ROWS: readonly TagStats[] = Object.freeze([]);

export class TagStatsTable {
  private readonly rows = new Map<string, Map<string, TagStats>>();
  /** Each row as a one-element array, so a caller with one counted key allocates nothing. */
  private readonly alone = new WeakMap<TagStats, readonly TagStats[]>();

  constructor(
    private readonly keys: readonly string[],
    private readonly maxValues: number,
  ) {
    for (const key of keys) this.rows.set(key, new Map());
  }

  /** The rows `tags` counts toward, one per counted key it has. O(counted keys). */
  rowsFor(tags: Tags): readonly TagStats[] {
    let out: readonly TagStats[] | undefined;
    for (const key of this.keys) {
      const value = tags[key];
      if (value === undefined) continue;
      const byValue = this.rows.get(key) as Map<string, TagStats>;
      let row = byValue.get(value);
      if (row === undefined) {
        // "(other)" is not counted toward the limit: it is where the limit sends the rest.
        const counted = byValue.size - (byValue.has(OTHER_VALUE) ? 1 : 0);
        const name = counted < this.maxValues ? value : OTHER_VALUE;
        row = byValue.get(name);
        if (row === undefined) byValue.set(name, (row = newRow()));
      }
      if (out === undefined) {
        let single = this.alone.get(row);
        if (single === undefined) this.alone.set(row, (single = Object.freeze([row])));
        out = single;
      } else {
        out = [...out, row];
      }
    }
    return out ?? NO_ROWS;
  }

  /** A copy of every row. */
  snapshot(): TagStatsByKey {
    const out: TagStatsByKey = {};
    for (const [key, byValue] of this.rows) {
      const values: Record<string, TagStats> = {};
      for (const [value, row] of byValue) values[value] = { ...row, wait: { ...row.wait } };
      out[key] = values;
    }
    return out;
  }
}
