/**
 * Watches each replica's health and replay lag on one timer, over a dedicated connection per
 * replica (outside its pool, so a busy pool never makes a replica look dead). A replica that fails
 * the check, or lags more than `routing.maxReplicaLagMs`, is taken out of rotation; it returns on
 * the first check that passes.
 *
 * Lag is measured with the replica's own functions: 0 when everything received has been replayed
 * (the receive position is not past the replay position; right after a standby starts it lags
 * behind it), otherwise the age of the last replayed transaction
 * (`clock_timestamp() - pg_last_xact_replay_timestamp()`). A standby behind the primary that has
 * replayed no transaction since it started has no such age: its lag is unknown (null) and it is
 * kept out of rotation until it catches up.
 */
import type { Client as PgClient } from 'pg';
import type { Logger } from 'winston';
import type { Clock, TimerHandle } from '../pool/clock';
import { withTimeout } from '../pool/clock';
import { errorMessage } from '../pool/messages';
import { PgConnector } from '../driver/pg-connector';
import type { ReplicaState, Router } from './router';

const LAG_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
    WHEN pg_last_xact_replay_timestamp() IS NULL THEN NULL
    ELSE GREATEST(0, EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp())) * 1000)
  END::float8 AS lag_ms`;

interface Probe {
  connector: PgConnector;
  client: PgClient | undefined;
  broken: boolean;
}

export interface HealthOptions {
  intervalMs: number;
  maxLagMs: number;
  /** Bound on opening the probe connection and on the check query. */
  timeoutMs: number;
}

export class ReplicaHealthMonitor {
  private readonly probes = new Map<ReplicaState, Probe>();
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** The round in progress (or the last one); never rejects. */
  private current: Promise<void>;
  /** Settles after the first round of checks (never rejects). */
  readonly firstRound: Promise<void>;

  constructor(
    private readonly router: Router,
    private readonly options: HealthOptions,
    private readonly clock: Clock,
    log: Logger,
  ) {
    for (const replica of router.replicas) {
      this.probes.set(replica, { connector: new PgConnector(replica.handle.knex.client, log), client: undefined, broken: false });
    }
    this.current = this.firstRound = this.runRound();
  }

  /** Checks every replica once, in parallel (waits for a round already running instead). */
  round(): Promise<void> {
    if (this.timer !== undefined) {
      this.clock.clearTimer(this.timer);
      this.timer = undefined;
      this.current = this.runRound();
    }
    return this.current;
  }

  private async runRound(): Promise<void> {
    await Promise.all(this.router.replicas.map((replica) => this.check(replica)));
    if (!this.stopped) {
      this.timer = this.clock.setTimer(() => {
        this.timer = undefined;
        this.current = this.runRound();
      }, this.options.intervalMs);
    }
  }

  private async check(replica: ReplicaState): Promise<void> {
    const probe = this.probes.get(replica) as Probe;
    try {
      if (!probe.client || probe.broken) {
        await this.closeProbe(probe);
        probe.client = await probe.connector.open(this.options.timeoutMs);
        probe.broken = false;
        probe.client.on('error', () => (probe.broken = true));
        probe.client.on('end', () => (probe.broken = true));
      }
      const result = await withTimeout(probe.client.query<{ in_recovery: boolean; lag_ms: number | null }>(LAG_SQL), this.options.timeoutMs, this.clock, 'replica health check');
      if (this.stopped) return;
      const row = result.rows[0];
      replica.lagMs = row && row.lag_ms !== null ? Math.round(row.lag_ms) : null;
      const maxLag = this.options.maxLagMs;
      if (maxLag > 0 && replica.lagMs !== null && replica.lagMs > maxLag) {
        this.router.markUnhealthy(replica, `replay lag ${replica.lagMs} ms exceeds routing.maxReplicaLagMs=${maxLag}`);
      } else if (maxLag > 0 && replica.lagMs === null) {
        this.router.markUnhealthy(replica, `replay lag unknown (behind the primary, no transaction replayed since the standby started); routing.maxReplicaLagMs=${maxLag}`);
      } else {
        this.router.markHealthy(replica);
      }
    } catch (error) {
      probe.broken = true;
      if (this.stopped) return;
      replica.lagMs = null;
      this.router.markUnhealthy(replica, `health check failed: ${errorMessage(error)}`);
    }
  }

  private async closeProbe(probe: Probe): Promise<void> {
    const client = probe.client;
    probe.client = undefined;
    if (client) await probe.connector.close(client).catch(() => undefined);
  }

  /** Stops the checks and closes the probe connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.current;
    await Promise.all([...this.probes.values()].map((p) => this.closeProbe(p)));
  }
}
