/**
 * The admission policy's data structures: held-count slots per tag value, tickets (one per
 * acquire), and groups (the FIFO sub-queues). A group holds the waiters that share a priority
 * class, a fair-share value and the values of every quota key: all of them are blocked or free by
 * the same quotas and rank alike for fair share, so only a group's oldest waiter is ever looked at.
 * Every operation here is O(1) or O(keys of one caller's tags), never O(waiters).
 */
import type { Waiter, WaiterTicket } from '../pool/waiters';
import type { TagStats, Tags } from './types';

/** Connections held (and callers waiting) with one value of a quota or fair-share key. */
export class Slot {
  held = 0;
  waiting = 0;
  /**
   * The groups, per class, of callers whose only quota or fair-share slot is this one (the common
   * case: one tenant key): found here without building a group id.
   */
  readonly groups: unknown[] = [undefined, undefined, undefined];
  constructor(
    readonly key: string,
    readonly value: string,
    /** The quota; Infinity when the key has none (a fair-share key). */
    readonly limit: number,
  ) {}

  /** This slot as a one-element array, so a caller with one quota key allocates nothing. */
  readonly alone: readonly Slot[] = [this];
}

/** One acquire, from `admit` to release (or to its end while waiting). */
export class Ticket<E> implements WaiterTicket {
  waiter: Waiter<E> | undefined = undefined;
  group: Group<E> | undefined = undefined;
  prev: Ticket<E> | undefined = undefined;
  next: Ticket<E> | undefined = undefined;
  /** When its connection was checked out (monotonic). */
  sinceMono = 0;
  /** When its waiter was queued (monotonic), copied here so the choice reads one object per group. */
  enqueuedMono = 0;
  /** Its place in the policy's array of holders while its caller holds a connection; -1 otherwise. */
  holderIndex = -1;

  constructor(
    readonly tags: Tags,
    /** 0 high, 1 normal, 2 low. */
    readonly cls: number,
    /** Slots of the quota keys its tags have. */
    readonly quotas: readonly Slot[],
    /** Slot of its fair-share value, if fair share is on and it has the key. */
    readonly fair: Slot | undefined,
    /** Its per-tag statistics rows. */
    readonly rows: readonly TagStats[],
  ) {}

  /** True when one of its quotas stands at its limit. O(quota keys). */
  blocked(): boolean {
    const quotas = this.quotas;
    for (let i = 0; i < quotas.length; i++) if (quotas[i].held >= quotas[i].limit) return true;
    return false;
  }

  /** Takes it out of its group (called by the waiter queue whenever its waiter leaves). O(1). */
  unlink(): void {
    const group = this.group;
    if (group === undefined) return;
    this.group = undefined;
    group.remove(this);
    for (const slot of this.quotas) slot.waiting--;
    if (this.fair !== undefined) this.fair.waiting--;
    for (const row of this.rows) row.waiting--;
  }
}

/** A FIFO sub-queue of tickets alike for admission (see the file comment). */
export class Group<E> {
  head: Ticket<E> | undefined = undefined;
  tail: Ticket<E> | undefined = undefined;
  /** Its position in the policy's array of groups with waiters; -1 when it has none. */
  index = -1;
  /**
   * Its quota slots when it has exactly one (the common case), so the choice checks it without a
   * call; `blocked` is then `quota.held >= quota.limit`.
   */
  quota: Slot | undefined = undefined;

  constructor(
    /** Its key in the policy's map; empty when it is cached on `owner` instead. */
    readonly id: string,
    readonly cls: number,
    readonly fair: Slot | undefined,
    /** The one slot it is cached on (see `Slot.groups`), if any. */
    readonly owner: Slot | undefined,
    /** Called when the group empties, to drop it from the policy's indexes. */
    private readonly onEmpty: (group: Group<E>) => void,
  ) {}

  /** Appends `ticket`. O(1). */
  push(ticket: Ticket<E>): void {
    ticket.group = this;
    ticket.prev = this.tail;
    if (this.tail) this.tail.next = ticket;
    else this.head = ticket;
    this.tail = ticket;
  }

  /** Unlinks `ticket`. O(1). */
  remove(ticket: Ticket<E>): void {
    if (ticket.prev) ticket.prev.next = ticket.next;
    else this.head = ticket.next;
    if (ticket.next) ticket.next.prev = ticket.prev;
    else this.tail = ticket.prev;
    ticket.prev = ticket.next = undefined;
    if (this.head === undefined) this.onEmpty(this);
  }
}

/**
 * Slots per key and value. Slots of values nobody holds or waits for are dropped in a sweep that
 * runs only when the table has doubled since the last one, so memory follows the values in use.
 */
export class SlotTable {
  private readonly byKey = new Map<string, Map<string, Slot>>();
  private size = 0;
  private sweepAt = 1024;

  constructor(
    /** Per key, its quota per value and `default`; an empty record for a key without quotas. */
    private readonly limits: Readonly<Record<string, Readonly<Record<string, number>>>>,
  ) {
    for (const key of Object.keys(limits)) this.byKey.set(key, new Map());
  }

  /** The keys that have slots. */
  get keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  /** The slot of `key=value`, made on first use. O(1). */
  slot(key: string, value: string): Slot {
    const byValue = this.byKey.get(key) as Map<string, Slot>;
    let slot = byValue.get(value);
    if (slot === undefined) {
      const limits = this.limits[key];
      slot = new Slot(key, value, limits[value] ?? limits.default ?? Number.POSITIVE_INFINITY);
      byValue.set(value, slot);
      this.size++;
    }
    return slot;
  }

  /**
   * Drops the slots nobody holds or waits for. Called only between acquires (never while a ticket
   * is between its slot lookups and its checkout or enqueue), so no live ticket loses its slot.
   * O(slots), amortised O(1) per new value.
   */
  sweepIfLarge(): void {
    if (this.size < this.sweepAt) return;
    for (const byValue of this.byKey.values()) {
      for (const [value, slot] of byValue) {
        if (slot.held === 0 && slot.waiting === 0) {
          byValue.delete(value);
          this.size--;
        }
      }
    }
    this.sweepAt = Math.max(1024, this.size * 2);
  }
}
