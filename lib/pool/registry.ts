/**
 * Where the connection records live: an ordered B-tree keyed by creation number, an idle stack,
 * and the counts behind the stats. `move()` is the single place where a record changes state; the
 * counts follow from it.
 *
 * Each structure serves the walk that needs it:
 * - The tree gives every ordered walk: creation order for the stats listing, oldest first for the
 *   expiry sweep, the idle timeout, keepalive, leak reports and the admin operations. Its key, the
 *   connection number N, grows with each open, so creation order and age order are the same.
 * - The idle stack serves the hot path: checkout takes the top and release pushes, each touching
 *   one record and one array slot (each record stores its index), so the cost stays flat as the
 *   pool grows to thousands. Checkout and release never touch the tree.
 *
 * Every method is synchronous: JavaScript's run-to-completion makes each one atomic, so the
 * registry needs no lock. The pool's mutex serialises the multi-step admin operations instead.
 */
import BTree from 'sorted-btree';
import type { EntryState, PoolEntry } from './entry';

/** The registry's counts, read-only: what routing, the knex adapter and the stats may see. */
export interface RegistryCounts {
  /** Records being opened. */
  readonly pendingCount: number;
  /** Records in state `idle`. */
  readonly idleCount: number;
  /** Records in state `inUse` or `reserved`. */
  readonly busyCount: number;
  /** Records being closed: still a server session, so they count toward `max`. */
  readonly closingCount: number;
  /** Open records: `idle + inUse + reserved`. */
  readonly openCount: number;
  /** Everything that holds or may soon hold a server session; never exceeds `max`. */
  readonly occupied: number;
}

export class Registry<C, E extends PoolEntry<C>> implements RegistryCounts {
  /** Open records (idle, inUse, reserved) by creation number. */
  private readonly tree = new BTree<number, E>();

  /**
   * Idle records, least recently returned first; the top (end) is taken first — LIFO keeps hot
   * connections hot and lets the bottom ones reach the idle timeout.
   */
  private readonly idle: E[] = [];

  pendingCount = 0;
  idleCount = 0;
  busyCount = 0;
  closingCount = 0;

  get openCount(): number {
    return this.idleCount + this.busyCount;
  }

  get occupied(): number {
    return this.pendingCount + this.idleCount + this.busyCount + this.closingCount;
  }

  /** Registers a record that is about to be opened. */
  addPending(entry: E): void {
    if (entry.state !== 'creating') throw new Error('addPending expects a record in state creating');
    this.pendingCount++;
  }

  /**
   * Moves `entry` to `next`, keeping the tree, the idle stack and the counts in step. The only
   * writer of `entry.state` besides the record's own transition check. A record enters the tree
   * when it arrives (`creating → reserved`) and leaves it when it starts closing.
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
      case 'inUse': this.busyCount++; break;
      case 'reserved':
        this.busyCount++;
        if (prev === 'creating') this.tree.set(entry.seq, entry);
        break;
      case 'closing':
        this.closingCount++;
        if (prev !== 'creating') this.tree.delete(entry.seq);
        break;
      case 'creating': case 'closed': break;
    }
  }

  /** The most recently used idle record, without taking it. */
  peekIdle(): E | undefined {
    const idle = this.idle;
    return idle.length > 0 ? idle[idle.length - 1] : undefined;
  }

  /**
   * The idle record unused for longest. O(idle): the stack keeps recency only near its top (a
   * record taken from the middle is swapped with the top), so this scans; called only when the
   * connection budget is spent, never on acquire or release.
   */
  longestIdle(): E | undefined {
    let oldest: E | undefined;
    for (const entry of this.idle) if (oldest === undefined || entry.lastUsedMono < oldest.lastUsedMono) oldest = entry;
    return oldest;
  }

  /** Open records (idle, inUse, reserved), oldest first, i.e. in creation order (a snapshot). */
  openEntries(): E[] {
    return this.tree.valuesArray();
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
