/**
 * The queue of callers waiting for a connection: strictly first come, first served.
 *
 * Each waiter ends exactly once: served, timed out, aborted, or rejected by `close()`. Deadlines
 * are kept without a timer per waiter: waiters with the same timeout reach their deadlines in the
 * order they arrived, so each distinct timeout gets one list and one timer armed for its oldest
 * waiter (the same trick Node uses for its own timer lists). Enqueue and dequeue are O(1) and
 * allocate nothing but the waiter itself.
 */
import type { Clock, TimerHandle } from './clock';
import type { TagStatsByKey } from './stats';

/** One caller waiting for a connection. */
export class Waiter<E> {
  /** Links of the FIFO queue. */
  prev: Waiter<E> | undefined = undefined;
  next: Waiter<E> | undefined = undefined;
  /** Links of this waiter's timeout bucket. */
  bucketPrev: Waiter<E> | undefined = undefined;
  bucketNext: Waiter<E> | undefined = undefined;
  bucket: TimeoutBucket<E> | undefined = undefined;
  /** False once the waiter has been served, timed out, aborted or rejected. */
  active = true;
  abortListener: (() => void) | undefined = undefined;
  /** Where the caller asked for the connection (only recorded when leak detection is on). */
  site: string | undefined = undefined;
  /** The admission policy's ticket (undefined without `admission`): its place in the policy's sub-queues. */
  ticket: WaiterTicket | undefined = undefined;

  constructor(
    readonly resolve: (entry: E) => void,
    readonly reject: (error: Error) => void,
    /** Monotonic time the caller started waiting. */
    readonly enqueuedMono: number,
    /** Monotonic time the caller gives up. */
    readonly deadlineMono: number,
    /** The caller's whole timeout (for the timeout message). */
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    /** How long this waiter may wait from `enqueuedMono`: its timeout bucket. */
    readonly waitMs: number = timeoutMs,
  ) {}
}

/** Waiters sharing one wait (`Waiter.waitMs`), oldest first, with one timer for the oldest. */
interface TimeoutBucket<E> {
  readonly timeoutMs: number;
  head: Waiter<E> | undefined;
  tail: Waiter<E> | undefined;
  timer: TimerHandle | undefined;
}

/**
 * What an admission policy keeps for one acquire. `unlink` takes its waiter out of the policy's
 * sub-queues in O(1); the queue calls it whenever the waiter leaves (served, timed out, aborted,
 * rejected), so deadlines and aborts keep working for waiters the policy holds back.
 */
export interface WaiterTicket {
  unlink(): void;
}

/**
 * The pool's one seam to admission (lib/admission): the queue asks it "which waiter next, given
 * what is free?" instead of the pump growing rules. The pool holds `AdmissionPolicy | undefined`
 * and takes its plain FIFO path when undefined, so without admission nothing here costs anything.
 * Other wings (a circuit breaker, a shared budget) add their own interfaces beside this one.
 */
export interface AdmissionPolicy<E> {
  /**
   * Called once per acquire, after the arguments, the pool's state, the signal and the deadline
   * were checked. `tags`/`priority` are the call's own (the policy adds any scoped tags).
   * @returns the caller's ticket, or the error to refuse the acquire with at once (`E_RATE_LIMITED`).
   */
  admit(tags: Readonly<Record<string, string>> | undefined, priority: string | undefined): WaiterTicket | Error;
  /** True when the caller of `ticket` may take a connection now (no quota of its stands at its limit). */
  mayHold(ticket: WaiterTicket): boolean;
  /** `waiter` joined the queue with `ticket` (which the policy sets as `waiter.ticket`). */
  enqueued(waiter: Waiter<E>, ticket: WaiterTicket): void;
  /** The waiter to serve with one free connection, or undefined when none may be served; it stays queued. */
  next(now: number): Waiter<E> | undefined;
  /** `entry` was handed to the caller of `ticket` at `now`, after `waitedMs` in the queue (undefined: at once). */
  checkedOut(entry: E, ticket: WaiterTicket, now: number, waitedMs: number | undefined): void;
  /** `entry` was given back at `now`. */
  released(entry: E, now: number): void;
  /** `waiter` timed out with `error`: count it and say in the message why it was held back. */
  timedOut(waiter: Waiter<E>, error: Error): void;
  /** The holder's tags of a checked-out `entry`. */
  tagsOf(entry: E): Readonly<Record<string, string>> | undefined;
  /** The per-tag statistics (`stats.tags`). */
  tagStats(): TagStatsByKey;
}

/** Called when a waiter's deadline passes or its signal aborts; the waiter is already dequeued. */
export interface WaiterEndings<E> {
  onTimeout(waiter: Waiter<E>): void;
  onAbort(waiter: Waiter<E>): void;
}

export class WaiterQueue<E> {
  private head: Waiter<E> | undefined = undefined;
  private tail: Waiter<E> | undefined = undefined;
  private readonly buckets = new Map<number, TimeoutBucket<E>>();
  /** Waiting callers. */
  size = 0;

  constructor(
    private readonly clock: Clock,
    private readonly endings: WaiterEndings<E>,
  ) {}

  /** The oldest waiter, without removing it. */
  peek(): Waiter<E> | undefined {
    return this.head;
  }

  /**
   * Adds a waiter at the back of the queue and arms its deadline and abort signal. It waits
   * `waitMs` (what is left of the caller's deadline; by default its whole `timeoutMs`). The signal
   * is subscribed before anything is queued: if that throws, the queue is unchanged.
   */
  push(resolve: (entry: E) => void, reject: (error: Error) => void, timeoutMs: number, signal: AbortSignal | undefined, waitMs = timeoutMs): Waiter<E> {
    const now = this.clock.now();
    const waiter = new Waiter<E>(resolve, reject, now, now + waitMs, timeoutMs, signal, waitMs);
    if (signal) {
      const listener = (): void => {
        if (!waiter.active) return;
        this.remove(waiter);
        this.endings.onAbort(waiter);
      };
      signal.addEventListener('abort', listener, { once: true });
      waiter.abortListener = listener;
    }
    waiter.prev = this.tail;
    if (this.tail) this.tail.next = waiter;
    else this.head = waiter;
    this.tail = waiter;
    this.size++;
    this.addToBucket(waiter);
    return waiter;
  }

  /** Removes and returns the oldest waiter (it is no longer active: the caller must settle it). */
  shift(): Waiter<E> | undefined {
    const waiter = this.head;
    if (waiter) this.remove(waiter);
    return waiter;
  }

  /** Removes every waiter, oldest first (for `close()`). */
  drain(): Waiter<E>[] {
    const out: Waiter<E>[] = [];
    for (let w = this.shift(); w; w = this.shift()) out.push(w);
    return out;
  }

  /** Waiters that started waiting at or before `mono`, oldest first (a snapshot). */
  enqueuedBy(mono: number): Waiter<E>[] {
    const out: Waiter<E>[] = [];
    for (let w = this.head; w && w.enqueuedMono <= mono; w = w.next) out.push(w);
    return out;
  }

  /** Unlinks a waiter from the queue, its bucket and its signal; marks it inactive. */
  remove(waiter: Waiter<E>): void {
    if (!waiter.active) return;
    waiter.active = false;
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.tail = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.size--;
    this.removeFromBucket(waiter);
    if (waiter.ticket !== undefined) waiter.ticket.unlink();
    if (waiter.abortListener !== undefined) unsubscribe(waiter);
  }

  /** Cancels every bucket timer (for `close()`). */
  stopTimers(): void {
    for (const bucket of this.buckets.values()) {
      if (bucket.timer !== undefined) this.clock.clearTimer(bucket.timer);
      bucket.timer = undefined;
    }
    this.buckets.clear();
  }

  private addToBucket(waiter: Waiter<E>): void {
    let bucket = this.buckets.get(waiter.waitMs);
    if (!bucket) {
      bucket = { timeoutMs: waiter.waitMs, head: undefined, tail: undefined, timer: undefined };
      this.buckets.set(waiter.waitMs, bucket);
    }
    waiter.bucket = bucket;
    waiter.bucketPrev = bucket.tail;
    if (bucket.tail) bucket.tail.bucketNext = waiter;
    else bucket.head = waiter;
    bucket.tail = waiter;
    if (bucket.timer === undefined) this.arm(bucket, waiter.deadlineMono - this.clock.now());
    else if (bucket.head === waiter) this.clock.setKeepAlive(bucket.timer, true);
  }

  private removeFromBucket(waiter: Waiter<E>): void {
    const bucket = waiter.bucket;
    if (!bucket) return;
    if (waiter.bucketPrev) waiter.bucketPrev.bucketNext = waiter.bucketNext;
    else bucket.head = waiter.bucketNext;
    if (waiter.bucketNext) waiter.bucketNext.bucketPrev = waiter.bucketPrev;
    else bucket.tail = waiter.bucketPrev;
    waiter.bucketPrev = waiter.bucketNext = undefined;
    waiter.bucket = undefined;
    // Nobody left to wait for: the timer must not keep the process alive until it fires.
    if (bucket.head === undefined && bucket.timer !== undefined) this.clock.setKeepAlive(bucket.timer, false);
    // The bucket's timer stays armed: when it fires it re-arms for the new oldest waiter, or
    // drops the bucket if it is empty. Re-arming on every dequeue would cost a timer per waiter.
  }

  private arm(bucket: TimeoutBucket<E>, delayMs: number): void {
    // While callers wait, their deadline timer keeps the process alive: their promises will settle.
    bucket.timer = this.clock.setTimer(() => this.expire(bucket), Math.max(1, Math.ceil(delayMs)), bucket.head !== undefined);
  }

  /** Ends every waiter of `bucket` whose deadline has passed, then re-arms for the next one. */
  private expire(bucket: TimeoutBucket<E>): void {
    bucket.timer = undefined;
    const now = this.clock.now();
    while (bucket.head && bucket.head.deadlineMono <= now) {
      const waiter = bucket.head;
      this.remove(waiter);
      this.endings.onTimeout(waiter);
    }
    if (bucket.head) this.arm(bucket, bucket.head.deadlineMono - now);
    else if (this.buckets.get(bucket.timeoutMs) === bucket) this.buckets.delete(bucket.timeoutMs);
  }
}

/**
 * Drops a dequeued waiter's abort listener. Runs inside timers and releases: a signal whose
 * removeEventListener throws must not take the process down or leave a connection checked out
 * with no holder. The listener is inert once the waiter is inactive, so leaving it subscribed is
 * harmless. Kept out of `remove()` so the common case (no signal) stays small.
 */
function unsubscribe<E>(waiter: Waiter<E>): void {
  const listener = waiter.abortListener as () => void;
  waiter.abortListener = undefined;
  try {
    waiter.signal?.removeEventListener('abort', listener);
  } catch {
    // Nothing to undo: the waiter is already unlinked.
  }
}
