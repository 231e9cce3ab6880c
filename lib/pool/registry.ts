/**
 * Where the connection records live: an ordered B-tree keyed by creation number (so every listing
 * is in creation order and lookups stay O(log n) at any size), an intrusive idle list (so the hot
 * path picks and returns a connection in O(1) without touching the tree), and the counts behind the
 * stats. `move()` is the single place where a record changes state; the counts follow from it.
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

  /** Most recently returned idle record (taken first: LIFO keeps hot connections hot). */
  private idleHead: E | undefined = undefined;
  /** Least recently returned idle record (closed first by the idle timeout). */
  private idleTail: E | undefined = undefined;

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
    return this.idleHead;
  }

  /** The least recently used idle record. */
  oldestIdle(): E | undefined {
    return this.idleTail;
  }

  /** Idle records from least to most recently used (a snapshot). */
  idleOldestFirst(): E[] {
    const out: E[] = [];
    for (let e = this.idleTail; e; e = e.idlePrev as E | undefined) out.push(e);
    return out;
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
    entry.idlePrev = undefined;
    entry.idleNext = this.idleHead;
    if (this.idleHead) this.idleHead.idlePrev = entry;
    else this.idleTail = entry;
    this.idleHead = entry;
  }

  private unlinkIdle(entry: E): void {
    const prev = entry.idlePrev as E | undefined;
    const next = entry.idleNext as E | undefined;
    if (prev) prev.idleNext = next;
    else this.idleHead = next;
    if (next) next.idlePrev = prev;
    else this.idleTail = prev;
    entry.idlePrev = undefined;
    entry.idleNext = undefined;
  }
}
