/**
 * Picks the replica for a read: among the healthy ones, by the configured strategy. Health is set
 * by the health monitor (and by the manager when a replica fails a read); an unhealthy replica gets
 * no reads until the monitor sees it healthy again.
 */
import type { Logger } from 'winston';
import type { RoutingStrategy } from '../options';
import type { PgPool } from '../driver/pg-pool';

/** One replica and what the router knows of it. */
export interface ReplicaState {
  readonly name: string;
  readonly weight: number;
  readonly handle: PgPool;
  healthy: boolean;
  /** Replay lag at the last check, in milliseconds; null when unknown. */
  lagMs: number | null;
  /** Why it is unhealthy (last failure or "lag"). */
  reason: string | undefined;
  /** Times it went out of or back into rotation. */
  healthChanges: number;
  /** Reads served by it. */
  reads: number;
}

export class Router {
  private cursor = 0;

  constructor(
    readonly replicas: readonly ReplicaState[],
    private readonly strategy: RoutingStrategy,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** The replica for the next read, or undefined when none is healthy (read from the primary). */
  pick(): ReplicaState | undefined {
    const replicas = this.replicas;
    const n = replicas.length;
    if (n === 0) return undefined;
    switch (this.strategy) {
      case 'round-robin':
        for (let i = 0; i < n; i++) {
          const r = replicas[(this.cursor + i) % n] as ReplicaState;
          if (r.healthy) {
            this.cursor = (this.cursor + i + 1) % n;
            return r;
          }
        }
        return undefined;
      case 'least-busy': {
        let best: ReplicaState | undefined;
        let bestLoad = Number.POSITIVE_INFINITY;
        // Start from a rotating index so ties are spread instead of always hitting the first.
        for (let i = 0; i < n; i++) {
          const r = replicas[(this.cursor + i) % n] as ReplicaState;
          if (!r.healthy) continue;
          const load = r.handle.pool.counts.busyCount + r.handle.pool.waiting;
          if (load < bestLoad) {
            best = r;
            bestLoad = load;
          }
        }
        this.cursor = (this.cursor + 1) % n;
        return best;
      }
      case 'random': {
        let total = 0;
        for (const r of replicas) if (r.healthy) total += r.weight;
        if (total <= 0) return undefined;
        let ticket = this.random() * total;
        for (const r of replicas) {
          if (!r.healthy || r.weight <= 0) continue;
          ticket -= r.weight;
          if (ticket < 0) return r;
        }
        return replicas.find((r) => r.healthy && r.weight > 0);
      }
    }
  }

  /** Takes a replica out of rotation (idempotent). */
  markUnhealthy(replica: ReplicaState, reason: string): void {
    replica.reason = reason;
    if (!replica.healthy) return;
    replica.healthy = false;
    replica.healthChanges++;
    this.log.warn(`Replica "${replica.name}" taken out of rotation: ${reason}; its reads go to other replicas or the primary`, {
      replica: replica.name,
      lagMs: replica.lagMs,
    });
  }

  /** Puts a replica back into rotation (idempotent). */
  markHealthy(replica: ReplicaState): void {
    replica.reason = undefined;
    if (replica.healthy) return;
    replica.healthy = true;
    replica.healthChanges++;
    this.log.info(`Replica "${replica.name}" back in rotation (lag: ${replica.lagMs ?? 'unknown'} ms)`, { replica: replica.name, lagMs: replica.lagMs });
  }
}
