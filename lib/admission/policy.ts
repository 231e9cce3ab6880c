/**
 * The admission policy: the one interface the pool consults (`AdmissionPolicy` in
 * lib/pool/waiters.ts). It answers "which waiter next, given one free connection?" by the rules of
 * docs/admission.md, in this order:
 *
 *  1. a waiter one of whose quotas stands at its limit is skipped (never a wall for those behind);
 *  2. the highest priority class first, a class being promoted one step for every `priorityAgingMs`
 *     its oldest (servable) waiter has waited, so low work is never starved; aging compares
 *     classes, it never reorders callers of one class (a noisy tenant's old waiters do not get
 *     ahead of a quiet tenant's new ones by having waited);
 *  3. within the class, with `fairShare`, the value of that key holding the fewest connections;
 *  4. the longest-waiting.
 *
 * Waiters live in groups (queues.ts): FIFO sub-queues of waiters alike for every rule, so each
 * group is represented by its oldest waiter. Complexity, with G the groups that have waiters
 * (distinct class × fair-share value × quota values among the waiting callers, bounded by the tag
 * values in use, never by the number of waiters):
 *  - admit: O(keys of the caller's tags) (+ a token bucket per rate-limited key);
 *  - enqueue, unlink (served, timed out, aborted), checkout, release: O(keys of the caller's tags);
 *  - next: O(G), a blocked group skipped in O(quota keys).
 * At 50 tenants that is a scan of at most 150 group heads, without touching the waiters behind them.
 *
 * Without `admission` none of this exists: the pool's `admission` is undefined and it serves FIFO.
 * The manager's own work never waits here: validation, keepalive pings, the expiry sweep, renewals
 * and resets take idle records aside (`reserved`) or open their own, and replica health checks use
 * a dedicated connection; none of them goes through the waiter queue.
 */
import { ConnectionManagerError } from '../errors';
import type { Clock } from '../pool/clock';
import type { TagStatsByKey } from '../pool/stats';
import type { AdmissionPolicy, Waiter, WaiterTicket } from '../pool/waiters';
import { Group, Slot, SlotTable, Ticket } from './queues';
import { RateLimiter, rateLimitedError } from './rate-limits';
import { TagStatsTable } from './tag-stats';
import { effectiveTags, formatTags } from './tags';
import type { ResolvedAdmissionOptions, Tags } from './types';

const NO_TAGS: Tags = Object.freeze({});
const NO_SLOTS: readonly Slot[] = Object.freeze([]);
const CLASS_OF: Readonly<Record<string, number>> = { high: 0, normal: 1, low: 2 };
const CLASS_NAMES = ['high', 'normal', 'low'];
/**
 * Where a checked-out record keeps its holder's ticket: a property of the record itself (set on
 * every record the first time it is handed out), so hand-out and release touch no hash table.
 */
const HOLDER = Symbol('kcm.admission.holder');

/** The tags of the caller holding `entry` now (with admission), for the query metrics (lib/observability). */
export function holderTags(entry: object): Tags | undefined {
  return ((entry as Record<symbol, unknown>)[HOLDER] as { tags?: Tags } | undefined)?.tags;
}

export class TagAdmission<E extends object> implements AdmissionPolicy<E> {
  private readonly stats: TagStatsTable;
  private readonly slots: SlotTable;
  private readonly quotaKeys: readonly string[];
  private readonly fairKey: string | undefined;
  private readonly limiter: RateLimiter | undefined;
  private readonly agingMs: number;
  /** Groups by id (class, fair value, quota values). */
  private readonly groups = new Map<string, Group<E>>();
  /** Groups with waiters (each knows its index: O(1) add and swap-remove): the only thing `next` walks. */
  private readonly active: Array<Group<E>> = [];
  /** Scratch of `next`, per class (reused: the choice allocates nothing). */
  private readonly classBest: Array<Ticket<E> | undefined> = [undefined, undefined, undefined];
  private readonly classHeld = [0, 0, 0];
  private readonly classEnqueued = [0, 0, 0];
  private readonly classOldest = [0, 0, 0];
  /** Holds the groups of callers with neither a quota nor a fair-share tag. */
  private readonly untagged = new Slot('', '', Number.POSITIVE_INFINITY);
  /** The ticket of each checked-out record. */
  private readonly holders: Array<Ticket<E>> = [];
  private readonly dropGroup = (group: Group<E>): void => {
    const last = this.active.pop() as Group<E>;
    if (last !== group) {
      this.active[group.index] = last;
      last.index = group.index;
    }
    group.index = -1;
    if (group.owner !== undefined) group.owner.groups[group.cls] = undefined;
    else this.groups.delete(group.id);
  };

  constructor(
    options: ResolvedAdmissionOptions,
    clock: Clock,
  ) {
    this.stats = new TagStatsTable(options.tagKeys, options.maxTagValues);
    this.quotaKeys = Object.keys(options.quotas);
    this.fairKey = options.fairShare;
    const slotLimits: Record<string, Readonly<Record<string, number>>> = { ...options.quotas };
    if (this.fairKey !== undefined) slotLimits[this.fairKey] ??= {};
    this.slots = new SlotTable(slotLimits);
    this.limiter = Object.keys(options.rateLimits).length > 0 ? new RateLimiter(options.rateLimits, clock) : undefined;
    this.agingMs = options.priorityAgingMs;
  }

  admit(explicit: Tags | undefined, priority: string | undefined): Ticket<E> | Error {
    const tags = effectiveTags(explicit) ?? NO_TAGS;
    const rows = this.stats.rowsFor(tags);
    if (this.limiter !== undefined) {
      const refusal = this.limiter.take(tags);
      if (refusal !== undefined) {
        for (const row of rows) row.rateLimited++;
        return rateLimitedError(refusal);
      }
    }
    this.slots.sweepIfLarge();
    let quotas: readonly Slot[] | undefined;
    for (const key of this.quotaKeys) {
      const value = tags[key];
      if (value === undefined) continue;
      const slot = this.slots.slot(key, value);
      quotas = quotas === undefined ? slot.alone : [...quotas, slot];
    }
    const fairValue = this.fairKey === undefined ? undefined : tags[this.fairKey];
    const fair = fairValue === undefined ? undefined : this.slots.slot(this.fairKey as string, fairValue);
    return new Ticket<E>(tags, priority === undefined ? 1 : CLASS_OF[priority], quotas ?? NO_SLOTS, fair, rows);
  }

  mayHold(ticket: WaiterTicket): boolean {
    return !(ticket as Ticket<E>).blocked();
  }

  enqueued(waiter: Waiter<E>, t: WaiterTicket): void {
    const ticket = t as Ticket<E>;
    waiter.ticket = ticket;
    ticket.waiter = waiter;
    ticket.enqueuedMono = waiter.enqueuedMono;
    const group = this.groupOf(ticket);
    if (group.head === undefined) {
      group.index = this.active.length;
      group.quota = ticket.quotas.length === 1 ? ticket.quotas[0] : undefined;
      this.active.push(group);
    }
    group.push(ticket);
    for (const slot of ticket.quotas) slot.waiting++;
    if (ticket.fair !== undefined) ticket.fair.waiting++;
    for (const row of ticket.rows) row.waiting++;
  }

  /** The group of a ticket's kind, made on first use. O(slots of the ticket). */
  private groupOf(ticket: Ticket<E>): Group<E> {
    const { cls, fair, quotas } = ticket;
    // One slot only (one tenant key, say): the group hangs on the slot, no id to build.
    const only = quotas.length === 0 ? fair : quotas.length === 1 && (fair === undefined || fair === quotas[0]) ? quotas[0] : undefined;
    if (only !== undefined || (quotas.length === 0 && fair === undefined)) {
      const owner = only ?? this.untagged;
      let group = owner.groups[cls] as Group<E> | undefined;
      if (group === undefined) owner.groups[cls] = group = new Group<E>('', cls, fair, owner, this.dropGroup);
      return group;
    }
    let id = `${cls}`;
    if (fair !== undefined) id += `\u0000${fair.value}`;
    for (const slot of quotas) id += `\u0001${slot.key}\u0000${slot.value}`;
    let group = this.groups.get(id);
    if (group === undefined) this.groups.set(id, (group = new Group<E>(id, cls, fair, undefined, this.dropGroup)));
    return group;
  }

  next(now: number): Waiter<E> | undefined {
    // Per class: its best group by fair share then age, and its oldest waiter (which ages the class).
    const best = this.classBest;
    const held = this.classHeld;
    const enqueuedAt = this.classEnqueued;
    const oldest = this.classOldest;
    best[0] = best[1] = best[2] = undefined;
    oldest[0] = oldest[1] = oldest[2] = Number.POSITIVE_INFINITY;
    const active = this.active;
    for (let i = 0; i < active.length; i++) {
      const group = active[i];
      const head = group.head as Ticket<E>;
      const quota = group.quota;
      if (quota !== undefined ? quota.held >= quota.limit : head.quotas.length !== 0 && head.blocked()) continue;
      const c = group.cls;
      const enqueued = head.enqueuedMono;
      if (enqueued < oldest[c]) oldest[c] = enqueued;
      const h = group.fair === undefined ? 0 : group.fair.held;
      const b = best[c];
      if (b === undefined || h < held[c] || (h === held[c] && enqueued < enqueuedAt[c])) {
        best[c] = head;
        held[c] = h;
        enqueuedAt[c] = enqueued;
      }
    }
    // Between classes: the highest after aging (a class is promoted one step per priorityAgingMs its
    // oldest waiter has waited); ties to the class waiting longest. Aging never reorders one class.
    let chosen: Ticket<E> | undefined;
    let chosenClass = 0;
    let chosenOldest = 0;
    for (let c = 0; c < 3; c++) {
      const candidate = best[c];
      if (candidate === undefined) continue;
      const effective = this.agingMs > 0 && c > 0 ? Math.max(0, c - Math.floor((now - oldest[c]) / this.agingMs)) : c;
      if (chosen === undefined || effective < chosenClass || (effective === chosenClass && oldest[c] < chosenOldest)) {
        chosen = candidate;
        chosenClass = effective;
        chosenOldest = oldest[c];
      }
    }
    return chosen?.waiter;
  }

  checkedOut(entry: E, ticket: WaiterTicket, now: number, waitedMs: number | undefined): void {
    const t = ticket as Ticket<E>;
    t.sinceMono = now;
    (entry as Record<symbol, unknown>)[HOLDER] = t;
    t.holderIndex = this.holders.length;
    this.holders.push(t);
    for (const slot of t.quotas) slot.held++;
    // A fair-share key with a quota has the same slot in both: count it once.
    if (t.fair !== undefined && !t.quotas.includes(t.fair)) t.fair.held++;
    for (const row of t.rows) {
      row.inUse++;
      row.acquired++;
      if (waitedMs !== undefined) {
        row.wait.count++;
        row.wait.totalMs += waitedMs;
        if (waitedMs > row.wait.maxMs) row.wait.maxMs = waitedMs;
      }
    }
  }

  released(entry: E, now: number): void {
    const t = (entry as Record<symbol, unknown>)[HOLDER] as Ticket<E> | undefined;
    if (t === undefined) return;
    (entry as Record<symbol, unknown>)[HOLDER] = undefined;
    // Swap-remove: O(1), no hash table churning on every hand-out.
    const last = this.holders.pop() as Ticket<E>;
    if (last !== t) {
      this.holders[t.holderIndex] = last;
      last.holderIndex = t.holderIndex;
    }
    t.holderIndex = -1;
    for (const slot of t.quotas) slot.held--;
    if (t.fair !== undefined && !t.quotas.includes(t.fair)) t.fair.held--;
    for (const row of t.rows) {
      row.inUse--;
      row.heldMs += now - t.sinceMono;
    }
  }

  timedOut(waiter: Waiter<E>, error: Error): void {
    const t = waiter.ticket as Ticket<E>;
    for (const row of t.rows) row.timedOut++;
    let note = '';
    const full = t.quotas.find((slot) => slot.held >= slot.limit);
    if (full !== undefined) {
      note += ` It was held back by its quota: ${full.key}=${full.value} holds ${full.held} of its ${full.limit} connections (admission.quotas.${full.key}); others were served meanwhile.`;
    }
    const top = this.topHolders();
    if (top !== '') note += ` Held: ${top}.`;
    if (note !== '' && error instanceof ConnectionManagerError) error.message += note;
  }

  tagsOf(entry: E): Tags | undefined {
    return ((entry as Record<symbol, unknown>)[HOLDER] as Ticket<E> | undefined)?.tags;
  }

  tagStats(): TagStatsByKey {
    return this.stats.snapshot();
  }

  /**
   * "8 of 10 held by tenant=acme": the tag shared by the most holders. O(holders × their tags),
   * only when building a timeout message.
   */
  private topHolders(): string {
    const counts = new Map<string, number>();
    for (const t of this.holders) {
      for (const [key, value] of Object.entries(t.tags)) {
        const label = formatTags({ [key]: value });
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
    }
    let label = '';
    let most = 0;
    for (const [l, n] of counts) if (n > most) [label, most] = [l, n];
    return most === 0 ? '' : `${most} of ${this.holders.length} held by ${label}`;
  }

  /** The class name of a ticket (for tests and messages). */
  static className(cls: number): string {
    return CLASS_NAMES[cls];
  }
}
