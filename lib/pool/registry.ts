/**
 * Where the connection records live: an ordered B-tree keyed by creation number (so every listing
 * is in creation order and lookups stay O(log n) at any size), an idle stack (so the hot path picks
 * and returns a connection in O(1) without touching the tree), and the counts behind the stats.
 * The stack is an array with each record's index stored on it: taking the top and pushing touch
 * only that record and one array slot, which keeps the cost flat as the pool grows to thousands. `move()` is the single place where a record changes state; the counts follow from it.
 *
 * The tree changes only when a connection is added or removed, and those changes are serialised by
 * an `async-mutex` mutex, together with any multi-step sweep that walks the tree. Checking a
 * connection out or in never changes the tree, so the hot path never waits for the mutex. Reads
 * (stats, sweeps' snapshots) are synchronous and therefore atomic under JavaScript's run-to-completion.
 */
import BTree from 'sorted-btree';
import { Mutex } from 'async-mutex';
import type { EntryState, PoolEntry } from './entry';

export class Registry<C, E extends PoolEntry<C>> {
  private readonly tree = new BTree<number, E>();
  /** Serialises changes to the tree and sweeps over it. Never held across network I/O. */
  readonly mutex = new Mutex();

  /**
   * Idle records, least recently returned first; the top (end) is taken first — LIFO keeps hot
   * connections hot and lets the bottom ones reach the idle timeout.
   */
  private readonly idle: E[] = [];

  /** Records being opened. */
  pendingCount = 0;
  /** Records in state `idle`. */
  idleCount = 0;
  /** Records in state `inUse` or `reserved`. */
  busyCount = 0;
  /** Records being closed: still a server session, so they count toward `max`. */
  closingCount = 0;

  /** Open records: `idle + inUse`. */
  get openCount(): number {
    return this.idleCount + this.busyCount;
  }

  /** Everything that holds or may soon hold a server session; never exceeds `max`. */
  get occupied(): number {
    return this.pendingCount + this.idleCount + this.busyCount + this.closingCount;
  }

  /** Registers a record that is about to be opened. */
  addPending(entry: E): void {
    if (entry.state !== 'creating') throw new Error('addPending expects a record in state creating');
    this.pendingCount++;
  }

  /**
   * Moves `entry` to `next`, keeping the idle list and the counts in step. The only writer of
   * `entry.state` besides the record's own transition check.
   */
  move(entry: E, next: EntryState): void {
    const prev = entry.state;
    entry.transition(next);
    switch (prev) {
      case 'creating': this.pendingCount--; break;
      case 'idle': this.unlinkIdle(entry); this.idleCount--; break;
      case 'inUse': case 'reserved': this.busyCount--; break;
      case 'closing': this.closingCount--; break;
      case 'closed': break;
    }
    switch (next) {
      case 'idle': this.pushIdle(entry); this.idleCount++; break;
      case 'inUse': case 'reserved': this.busyCount++; break;
      case 'closing': this.closingCount++; break;
      case 'creating': case 'closed': break;
    }
  }

  /** The most recently used idle record, without taking it. */
  peekIdle(): E | undefined {
    const idle = this.idle;
    return idle.length > 0 ? idle[idle.length - 1] : undefined;
  }

  /** The least recently used idle record. */
  oldestIdle(): E | undefined {
    return this.idle[0];
  }

  /**
   * Idle records from least to most recently used (a snapshot). Removing a record from the middle
   * moves the top one into its place, so after such removals the order is approximate.
   */
  idleOldestFirst(): E[] {
    return this.idle.slice();
  }

  /**
   * Adds an opened record to the tree, under the mutex. It arrives `reserved`: the pool decides
   * whether to hand it out or close it before any caller can see it idle.
   */
  async insert(entry: E): Promise<void> {
    await this.mutex.runExclusive(() => {
      this.tree.set(entry.seq, entry);
      this.move(entry, 'reserved');
    });
  }

  /** Removes a closing record from the tree, under the mutex. */
  async remove(entry: E): Promise<void> {
    await this.mutex.runExclusive(() => {
      this.tree.delete(entry.seq);
    });
  }

  /** Looks a record up by creation number. */
  get(seq: number): E | undefined {
    return this.tree.get(seq);
  }

  /** Records that hold a server session (idle, inUse, reserved), in creation order (a snapshot). */
  openEntries(): E[] {
    const out: E[] = [];
    this.tree.forEach((entry) => {
      if (entry.state === 'idle' || entry.state === 'inUse' || entry.state === 'reserved') out.push(entry);
    });
    return out;
  }

  /** Number of records in the tree, including ones whose removal is queued. */
  get treeSize(): number {
    return this.tree.size;
  }

  private pushIdle(entry: E): void {
    entry.idleIndex = this.idle.length;
    this.idle.push(entry);
  }

  /** O(1): the top is popped; a record from the middle swaps places with the top first. */
  private unlinkIdle(entry: E): void {
    const index = entry.idleIndex;
    const last = this.idle.pop() as E;
    if (last !== entry) {
      this.idle[index] = last;
      last.idleIndex = index;
    }
    entry.idleIndex = -1;
  }
}
