/**
 * One connection budget across every pool of a manager (`budget: { maxConnections }`): the default
 * pool, its replicas' pools, named pools and pools made on demand. A slot is a record that holds or
 * may soon hold a server session (being opened, open, or being closed), so the server never sees
 * more than `maxConnections` sessions of the manager, however the pools move.
 *
 * A pool takes a slot before each open (`take`) and gives it back when the record is gone (`give`).
 * When the budget is spent, the pool that was refused joins the queue of waiting pools (first come,
 * first served, each pool once) and the budget frees slots for it, in this order:
 * 1. Idle connections: the longest-idle connection of any other pool above that pool's `min` is
 *    closed (an idle pool made on demand has `min` 0, so all of its idle connections qualify);
 *    when there is none and callers wait (not merely a pool's `min` to refill), one at `min` too:
 *    under a spent budget a waiting caller beats a connection kept warm.
 * 2. Released connections (`claims`): a pool closes the next connection it would have put back in
 *    service instead of lending it again, when none of its own callers waits (below its `min` only
 *    for another pool's callers), or, above its `min`, when it holds more than the first waiting
 *    pool (any, if that pool holds none; two more, if it holds some, so busy pools settle at an
 *    even split instead of trading a connection at every release). Without this a pool whose callers never stop would keep its slots forever and
 *    starve the others; with it, pools beyond what the budget can give one connection each take
 *    turns, one release at a time.
 * Reclaims in flight are counted, so no more are started than the waiting pools need. A freed slot
 * goes to the first waiting pool with callers waiting, else to the first refilling its `min`
 * (`grant`); a pool that still needs more joins the queue again at
 * its end, so the waiting pools are served in turn and none waits forever while connections are
 * released somewhere.
 *
 * Costs: `take` and `give` are O(1) while no pool waits; `claims` reads one Set size then. While
 * pools wait, a refusal costs O(W) to add up the waiting pools' need plus O(I) over the idle
 * connections of every pool to find the longest-idle one (W waiting pools, I idle connections, both
 * bounded by `maxConnections`), and a release O(W). Nothing of it is on the path of an acquire that
 * an idle connection serves.
 */
import type { BudgetMember, BudgetSeam } from '../pool/types';
import type { BudgetStats } from '../pool/stats';

export class ConnectionBudget implements BudgetSeam {
  /** Slots taken: records of every member that are being opened, open, or being closed. */
  private used = 0;
  /** Records closing for another pool, whose slots have not come back yet. */
  private inFlight = 0;
  /** Connections closed for another pool, ever. */
  private reclaimedTotal = 0;
  private readonly members = new Set<BudgetMember>();
  /** Pools refused a slot, in the order they are served (a Set keeps insertion order). */
  private readonly queue = new Set<BudgetMember>();
  /** The pool being handed freed slots right now: only it may take while others wait. */
  private granting: BudgetMember | undefined;

  constructor(readonly maxConnections: number) {}

  join(member: BudgetMember): void {
    this.members.add(member);
  }

  leave(member: BudgetMember): void {
    this.members.delete(member);
    this.queue.delete(member);
    // Its need is gone: a slot it was waiting for may serve the next pool.
    this.grant();
  }

  take(member: BudgetMember): boolean {
    if (this.hasRoom(member)) {
      this.used++;
      return true;
    }
    this.queue.add(member);
    this.reclaim();
    return false;
  }

  hasRoom(member: BudgetMember): boolean {
    return this.used < this.maxConnections && (this.granting === member || (this.granting === undefined && this.queue.size === 0));
  }

  give(_member: BudgetMember, reclaimed: boolean): void {
    this.used--;
    if (reclaimed) this.inFlight--;
    this.grant();
  }

  claims(member: BudgetMember): boolean {
    if (this.queue.size === 0) return false;
    const first = this.firstWaitingOtherThan(member);
    if (first === undefined || this.inFlight >= this.demand()) return false;
    const aboveMin = member.counts.openCount > member.options.min;
    // Nobody of its own waits: the record would only go idle while another pool waits. Below its
    // min only for another pool's callers, never to refill another pool's min (pools would trade
    // their min connections back and forth).
    if (member.waiting === 0) return aboveMin || first.waiting > 0;
    if (!aboveMin) return false;
    // Otherwise only from a pool that holds more than the first waiting pool: every slot to a pool
    // that has none, and, between pools that have some, only while they differ by more than one, so
    // two busy pools settle instead of trading a connection at every release.
    const held = first.counts.occupied;
    return member.counts.occupied > (held === 0 ? 0 : held + 1);
  }

  reclaiming(member: BudgetMember): void {
    this.inFlight++;
    this.reclaimedTotal++;
    // A pool giving up a slot while it waits itself goes to the back: the slot is for the others.
    if (this.queue.delete(member)) this.queue.add(member);
  }

  /** `stats.budget`. */
  stats(): BudgetStats {
    return {
      maxConnections: this.maxConnections,
      open: this.used,
      reclaimed: this.reclaimedTotal,
      waitingPools: [...this.queue].map((m) => m.name),
    };
  }

  /**
   * Hands free slots to the waiting pools, first come first served among those with callers
   * waiting; pools only refilling their `min` come after them (else a refill could take, again and
   * again, the slot a caller was waiting for). O(W) per slot.
   */
  private grant(): void {
    if (this.granting !== undefined) return;
    while (this.used < this.maxConnections && this.queue.size > 0) {
      let next: BudgetMember | undefined;
      for (const member of this.queue) {
        if (member.waiting > 0) {
          next = member;
          break;
        }
      }
      next ??= this.queue.values().next().value as BudgetMember;
      this.queue.delete(next);
      this.granting = next;
      try {
        // Takes what it needs now; if it needs more than is free it queues again, at the end.
        next.pump();
      } finally {
        this.granting = undefined;
      }
    }
  }

  /** The first pool in the queue that is not `member` (at most two steps). */
  private firstWaitingOtherThan(member: BudgetMember): BudgetMember | undefined {
    for (const waiting of this.queue) if (waiting !== member) return waiting;
    return undefined;
  }

  /** Opens the waiting pools would start now. O(W). */
  private demand(): number {
    let need = 0;
    for (const member of this.queue) need += member.need();
    return need;
  }

  /**
   * Closes longest-idle connections of pools that are not waiting, while the waiting pools need
   * more than is on its way: above their pools' `min` first, then, for waiting callers (not for
   * another pool's `min`), at `min` too — a caller waiting beats a connection kept warm.
   */
  private reclaim(): void {
    let demand = this.demand();
    let evenAtMin = false;
    while (this.inFlight < demand) {
      const victim = this.longestIdle(evenAtMin);
      if (victim !== undefined && victim.reclaimIdle(evenAtMin)) {
        demand = this.demand();
        continue;
      }
      if (evenAtMin || !this.callersWait()) return;
      evenAtMin = true;
    }
  }

  /** The pool, not waiting itself, whose longest-idle connection has been idle longest. O(I). */
  private longestIdle(evenAtMin: boolean): BudgetMember | undefined {
    let victim: BudgetMember | undefined;
    let since = Number.POSITIVE_INFINITY;
    for (const member of this.members) {
      if (this.queue.has(member)) continue;
      const idleSince = member.longestIdleSince(evenAtMin);
      if (idleSince !== undefined && idleSince < since) {
        since = idleSince;
        victim = member;
      }
    }
    return victim;
  }

  /** True when a waiting pool has callers waiting (not only its `min` to refill). */
  private callersWait(): boolean {
    for (const member of this.queue) if (member.waiting > 0) return true;
    return false;
  }
}
