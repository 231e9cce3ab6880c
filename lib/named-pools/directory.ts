/**
 * The manager's pools other than its default one: the static `pools`, made at start, and the pools
 * `poolFactory` makes on first use of a name. It finds a pool by name (`manager.pool(name)`),
 * calls the factory once per name (concurrent first uses share the call), keeps at most `maxPools`
 * made pools open (closing the least recently used quiet one to make room), closes those unused for
 * `poolIdleTimeoutMs`, and keeps the counters of closed pools for the manager's totals.
 *
 * Costs: finding an open pool is two Map lookups; a handle's call adds one clock read (its
 * last-use time, for the idle timeout and LRU). Making room is O(P) over the made pools, and the
 * idle sweep runs every `poolIdleTimeoutMs / 4` (at most once a minute) over them.
 */
import type { Logger } from 'winston';
import { ConnectionManagerError } from '../errors';
import type { ResolvedConfig } from '../options-types';
import type { TimerHandle } from '../pool/clock';
import { newCounters, type PoolCounters } from '../pool/stats';
import { NamedPool, type NamedPoolParts } from '../manager/named-pool';
import { DynamicPoolHandle, type PoolResolver } from './handle';
import { configFor, isPoolName, minimumOf, resolveNamedPool } from './options';

/** A name `poolFactory` answered for, with its pool once made. */
class MadePool {
  pool: NamedPool | undefined;
  making: Promise<NamedPool> | undefined;
  /** Monotonic time of the last call through a handle, or of activity seen by the sweep. */
  lastActive: number;
  /** acquired + released when the sweep last looked. */
  seen = 0;

  constructor(readonly handle: DynamicPoolHandle, now: number) {
    this.lastActive = now;
  }
}

export class PoolDirectory implements PoolResolver {
  private readonly statics = new Map<string, NamedPool>();
  private readonly made = new Map<string, MadePool>();
  /** Pools closing or closed, whose counters still count in the totals. */
  private readonly retired = new Set<NamedPool>();
  private readonly retiredCounters: PoolCounters = newCounters();
  private madeCount = 0;
  private closedCount = 0;
  private sweepTimer: TimerHandle | undefined;
  private open = true;
  private readonly log: Logger;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly parts: NamedPoolParts,
    /** Told of every pool as it is made (metrics). */
    private readonly onMade: (pool: NamedPool) => void,
  ) {
    this.log = parts.log;
    for (const [name, named] of Object.entries(config.pools)) {
      this.statics.set(name, new NamedPool(name, configFor(config, named), parts, `pools.${name}`));
    }
    if (config.poolFactory !== undefined && config.poolIdleTimeoutMs > 0) this.scheduleSweep();
  }

  /** `manager.pool(name)` for a name other than `primary`. */
  handle(name: string): NamedPool | DynamicPoolHandle {
    const named = this.statics.get(name);
    if (named !== undefined) return named;
    const made = this.made.get(name);
    if (made !== undefined) return made.handle;
    if (!isPoolName(name)) {
      throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid pool name ${typeof name === 'string' ? JSON.stringify(name) : typeof name}: a pool name is a string of 1-128 characters, without control characters or "/". Pass the name of a pool.`);
    }
    if (this.config.poolFactory === undefined) throw this.unknown(name);
    return this.make(name, undefined).handle;
  }

  resolve(name: string): NamedPool | Promise<NamedPool> {
    const made = this.made.get(name);
    if (made !== undefined) {
      made.lastActive = this.parts.clock.now();
      if (made.pool !== undefined) return made.pool;
      if (made.making !== undefined) return made.making;
    }
    const again = this.make(name, made?.handle);
    return again.pool ?? (again.making as Promise<NamedPool>);
  }

  current(name: string): NamedPool | undefined {
    return this.statics.get(name) ?? this.made.get(name)?.pool;
  }

  /** The open pool that lent `connection`, if any. */
  ownerOf(connection: unknown): NamedPool | undefined {
    return this.pools().find((pool) => pool.ownerOf(connection) !== undefined);
  }

  /** Every open pool: the static ones, then the made ones. */
  pools(): NamedPool[] {
    const out = [...this.statics.values()];
    for (const made of this.made.values()) if (made.pool !== undefined) out.push(made.pool);
    return out;
  }

  /** Pools made so far, pools closed so far, and the counters of the closed ones. */
  totals(): { made: number; closed: number; retired: readonly NamedPool[]; counters: PoolCounters } {
    return { made: this.madeCount, closed: this.closedCount, retired: [...this.retired], counters: this.retiredCounters };
  }

  /** Closes every pool; waits for all of them, those closed earlier included. */
  async close(): Promise<void> {
    this.open = false;
    if (this.sweepTimer !== undefined) this.parts.clock.clearTimer(this.sweepTimer);
    const closing = [...this.pools(), ...this.retired].map((pool) => pool.close());
    this.made.clear();
    await Promise.all(closing);
  }

  /** Starts making the pool `name` (under `handle`, when one exists already). */
  private make(name: string, handle: DynamicPoolHandle | undefined): MadePool {
    if (!this.open) throw new ConnectionManagerError('E_POOL_CLOSED', 'The connection manager is closed. Call getConnectionInstance() again to create a new one.');
    const factory = this.config.poolFactory;
    if (factory === undefined) throw this.unknown(name);
    this.makeRoom();
    const made = new MadePool(handle ?? new DynamicPoolHandle(name, this, this.config.knex), this.parts.clock.now());
    this.made.set(name, made);
    let result: ReturnType<typeof factory>;
    try {
      result = factory(name);
    } catch (error) {
      this.forget(name, made);
      throw error;
    }
    if (result instanceof Promise || (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function')) {
      made.making = Promise.resolve(result).then(
        (value) => this.build(name, made, value),
        (error: unknown) => {
          this.forget(name, made);
          throw error;
        },
      );
      // Nobody may be waiting on it yet (`manager.pool(name)` alone): a failure is told to the next call.
      made.making.catch(() => undefined);
    } else {
      this.build(name, made, result);
    }
    return made;
  }

  /** Builds the pool from the factory's answer; forgets the name when there is none. */
  private build(name: string, made: MadePool, value: unknown): NamedPool {
    made.making = undefined;
    if (this.made.get(name) !== made || !this.open) {
      throw new ConnectionManagerError('E_POOL_CLOSED', `The pool "${name}" was made after the connection manager closed.`);
    }
    if (value === undefined) {
      this.forget(name, made);
      throw this.unknown(name);
    }
    const label = `poolFactory(${JSON.stringify(name)})`;
    let resolved;
    try {
      resolved = resolveNamedPool(value, label, this.config.pool, false);
    } catch (error) {
      this.forget(name, made);
      throw error;
    }
    const room = this.minimumRoom();
    if (resolved.pool.min > room) {
      this.log.warn(`Pool "${name}" gets min 0 instead of ${resolved.pool.min}: the pools' min connections would not fit in budget.maxConnections (${this.config.budget?.maxConnections})`, { pool: name });
      resolved = { ...resolved, pool: { ...resolved.pool, min: 0, minIdle: 0 } };
    }
    const pool = new NamedPool(name, configFor(this.config, resolved), this.parts, label);
    made.pool = pool;
    this.madeCount++;
    this.log.info(`Pool "${name}" made by poolFactory (max: ${resolved.pool.max}; ${this.made.size} made pool(s) open)`, { pool: name });
    this.onMade(pool);
    return pool;
  }

  /** Connections of `min` the budget has left for a new pool (unbounded without a budget). */
  private minimumRoom(): number {
    if (this.config.budget === undefined) return Number.POSITIVE_INFINITY;
    let used = minimumOf(this.config);
    for (const pool of this.pools()) used += minimumOf(pool.config);
    return this.config.budget.maxConnections - used;
  }

  /** Under `maxPools`, closes the least recently used quiet made pool, or refuses. */
  private makeRoom(): void {
    if (this.made.size < this.config.maxPools) return;
    let victim: [string, MadePool] | undefined;
    for (const entry of this.made) {
      const pool = entry[1].pool;
      if (pool === undefined || !pool.quiet) continue;
      if (victim === undefined || entry[1].lastActive < victim[1].lastActive) victim = entry;
    }
    if (victim === undefined) {
      throw new ConnectionManagerError(
        'E_TOO_MANY_POOLS',
        `Cannot make another pool: maxPools (${this.config.maxPools}) pools made by poolFactory are open and each has connections checked out or callers waiting. Raise maxPools, or release connections sooner.`,
      );
    }
    this.retire(victim[0], victim[1], `the least recently used of ${this.config.maxPools} (maxPools), to make room`);
  }

  /** Closes and forgets a made pool; its counters join the totals once it is closed. */
  private retire(name: string, made: MadePool, why: string): void {
    const pool = made.pool as NamedPool;
    this.made.delete(name);
    this.closedCount++;
    this.retired.add(pool);
    this.log.info(`Closing pool "${name}": ${why}`, { pool: name });
    void pool.close().then(() => {
      if (!this.retired.delete(pool)) return;
      for (const p of pool.pools) {
        const counters = p.stats().counters;
        for (const key of Object.keys(counters) as Array<keyof PoolCounters>) this.retiredCounters[key] += counters[key];
      }
    });
  }

  private forget(name: string, made: MadePool): void {
    if (this.made.get(name) === made) this.made.delete(name);
  }

  private unknown(name: string): ConnectionManagerError {
    const known = ['primary', ...this.statics.keys(), ...[...this.made.keys()].filter((n) => this.made.get(n)?.pool !== undefined)];
    const shown = known.length > 20 ? `${known.slice(0, 20).join(', ')}, … (${known.length} in all)` : known.join(', ');
    return new ConnectionManagerError(
      'E_UNKNOWN_POOL',
      `No pool named ${JSON.stringify(name)}${this.config.poolFactory === undefined ? '' : ' (poolFactory returned undefined for it)'}. Known pools: ${shown}. Add it to "pools", or make poolFactory return { connection } for it.`,
    );
  }

  /** Closes made pools unused for `poolIdleTimeoutMs`; activity counts calls and the pool's own hand-outs. */
  private sweep(): void {
    const now = this.parts.clock.now();
    for (const [name, made] of [...this.made]) {
      const pool = made.pool;
      if (pool === undefined) continue;
      const counters = pool.primary.pool.stats().counters;
      const activity = counters.acquired + counters.released;
      if (activity !== made.seen) {
        made.seen = activity;
        made.lastActive = now;
      }
      if (now - made.lastActive >= this.config.poolIdleTimeoutMs && pool.quiet) {
        this.retire(name, made, `unused for ${Math.round(now - made.lastActive)} ms (poolIdleTimeoutMs ${this.config.poolIdleTimeoutMs})`);
      }
    }
    this.scheduleSweep();
  }

  private scheduleSweep(): void {
    if (!this.open) return;
    const every = Math.max(10, Math.min(this.config.poolIdleTimeoutMs / 4, 60_000));
    this.sweepTimer = this.parts.clock.setTimer(() => this.sweep(), every);
  }
}

/** `manager.pool(name)` of a manager without named pools: the only pool is `primary`. */
export function noSuchPool(name: unknown): never {
  if (typeof name !== 'string') throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid pool name: expected a string, got ${typeof name}. Pass the name of a pool, such as "primary".`);
  throw new ConnectionManagerError('E_UNKNOWN_POOL', `No pool named ${JSON.stringify(name)}: no "pools" or "poolFactory" is configured, so the only pool is "primary". Add it to "pools", or configure a poolFactory.`);
}
