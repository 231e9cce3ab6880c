/**
 * One physical connection's record and its state machine.
 *
 *   creating ──► reserved ◄──► idle ◄──► inUse
 *      │            │  ▲                  │ │
 *      │            │  └──────────────────┘ │
 *      └────────────┴──► closing ◄──────────┘ ──► closed
 *
 * `reserved` is a record the pool has taken aside so it cannot be handed out meanwhile: just
 * opened (before the pool decides where it goes), being validated, or being rolled back. `retire` is a mark, not a state: a retired record is closed the
 * next time it would become idle (soft eviction). docs/lifecycle.md has the full diagram.
 */
import { ConnectionManagerError } from '../errors';

/** The states of a connection record. */
export type EntryState = 'creating' | 'idle' | 'inUse' | 'reserved' | 'closing' | 'closed';

/** Why a record was closed; each reason has a counter in the stats. */
export type CloseReason =
  | 'broken'
  | 'validation'
  | 'retired'
  | 'expired'
  | 'idle'
  | 'renewed'
  | 'reset'
  | 'poolClosed'
  | 'createAbandoned'
  | 'disposed'
  | 'reclaimed'
  | 'resized';

const TRANSITIONS: Readonly<Record<EntryState, readonly EntryState[]>> = {
  creating: ['reserved', 'closing'],
  idle: ['inUse', 'reserved', 'closing'],
  inUse: ['idle', 'reserved', 'closing'],
  reserved: ['idle', 'inUse', 'closing'],
  closing: ['closed'],
  closed: [],
};

/** `TRANSITIONS` as nested flags, so the check on every hand-out is two property reads. */
const ALLOWED = Object.fromEntries(
  Object.entries(TRANSITIONS).map(([from, tos]) => [from, Object.fromEntries(tos.map((to) => [to, true]))]),
) as Record<EntryState, Partial<Record<EntryState, true>>>;

/** Every record state that holds an open server session counted in `total`. */
export function isOpenState(state: EntryState): boolean {
  return state === 'idle' || state === 'inUse' || state === 'reserved';
}

/**
 * A connection record. The pool owns the transitions; everything else reads.
 * Times ending in `Mono` are on the clock's monotonic scale, `...Wall` in Unix milliseconds.
 */
export class PoolEntry<C> {
  /** The N of `conn_<N>_<ns>`: creation order, the key in the registry's B-tree; 0 until opened. */
  seq = 0;
  /** `conn_<N>_<unix time in ns>`; empty until opened. */
  id = '';
  /** The driver connection; undefined until opened. */
  raw: C | undefined = undefined;
  state: EntryState = 'creating';
  /** Soft eviction mark: close instead of returning to idle. */
  retire = false;
  /** Why the record is to be retired (counted when it closes). */
  retireReason: CloseReason = 'retired';
  /** The pool generation the record was opened in (see `Pool.beginGeneration`). */
  generation = 0;
  /** Set when the driver reported the connection dead (error / end event). */
  broken: unknown = undefined;

  createdMono = 0;
  lastUsedMono = 0;
  /**
   * Unix milliseconds minus monotonic milliseconds, fixed when the record is opened: wall-clock
   * dates are derived from monotonic times, so the hot path never reads the wall clock.
   */
  wallOffset = 0;
  /** When the current lease began (monotonic), for leak detection and "longest held". */
  checkedOutMono = 0;
  /** Monotonic time after which the record is past its max lifetime (Infinity = never). */
  expiresMono = Number.POSITIVE_INFINITY;
  /** Last keepalive or borrow validation (monotonic). */
  lastPingMono = 0;
  /** The current lease was already reported as a possible leak. */
  leakReported = false;
  /** How many times the record has been checked out (tells one lease from the next). */
  leases = 0;
  /** Where the current lease was acquired, when leak detection records it. */
  acquiredAt: string | undefined = undefined;

  /** Position in the registry's idle stack; -1 when not idle. */
  idleIndex = -1;

  /**
   * A promise already resolved with this record, made once: an immediate hand-out returns it
   * instead of allocating a new promise per acquire (a promise can be awaited any number of times).
   */
  private resolvedSelf: Promise<this> | undefined = undefined;

  /** The pool that owns this record (to refuse releasing it to another manager). */
  readonly owner: object;

  /**
   * A private brand: only objects this class constructed have it. A copy (`{ ...conn }`), a
   * prototype child (`Object.create(conn)`) or a proxy has every public property of a record but
   * not this, so `isRecord` tells the real record from a look-alike by identity, in O(1).
   */
  readonly #brand = true;

  constructor(owner: object) {
    this.owner = owner;
  }

  /** True only for an object this class constructed (never a copy, child or proxy of one). */
  static isRecord(value: unknown): value is PoolEntry<unknown> {
    return typeof value === 'object' && value !== null && #brand in value;
  }

  /** This record as an already-resolved promise (shared by every immediate hand-out). */
  asResolved(): Promise<this> {
    return (this.resolvedSelf ??= Promise.resolve(this));
  }

  /** Gives the record its driver connection; subclasses also tag `raw` to find the record from it. */
  attach(raw: C): void {
    this.raw = raw;
  }

  /** Moves to `next`, refusing moves the state machine does not allow (a bug, never user input). */
  transition(next: EntryState): void {
    if (ALLOWED[this.state][next] !== true) {
      throw new Error(`Illegal connection state change ${this.state} -> ${next} for ${this.id || 'a new connection'}`);
    }
    this.state = next;
  }

  /** The record's public `inUse`: checked out, or busy with pool maintenance. */
  get inUse(): boolean {
    return this.state === 'inUse' || this.state === 'reserved';
  }

  /** When the connection was opened. */
  get createdAt(): Date {
    return new Date(this.createdMono + this.wallOffset);
  }

  /** When the connection was last checked out or returned. */
  get lastUsed(): Date {
    return new Date(this.lastUsedMono + this.wallOffset);
  }

  /** Throws `E_NOT_CHECKED_OUT` unless the record is currently leased (use after release). */
  assertLeased(): void {
    if (this.state !== 'inUse') {
      throw new ConnectionManagerError(
        'E_NOT_CHECKED_OUT',
        `Connection ${this.id} is not checked out (state: ${this.state}). Use a connection only between getConnection() and releaseConnection().`,
      );
    }
  }
}
