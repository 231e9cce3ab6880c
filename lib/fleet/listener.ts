/**
 * One manager's part in the fleet: a dedicated PostgreSQL session (not one of the pool's, not
 * counted in `max`) that LISTENs on the fleet channel, checks each command (protocol.ts), runs the
 * ones for its service on the manager's default pool, one at a time, and replies on the command's
 * reply channel. The session is named `kcm-fleet:<service>:<instance>` in pg_stat_activity, so
 * `kcm fleet` knows which instances should answer. When it is lost it is opened again with backoff
 * (the `retry` delays, up to ten times `retry.maxDelayMs`). docs/fleet.md describes the model.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Client, type ClientConfig, type Notification } from 'pg';
import type { Logger } from 'winston';
import type { ResolvedRetryOptions } from '../options-types';
import type { FleetStats } from '../pool/stats';
import type { Clock, TimerHandle } from '../pool/clock';
import { errorMessage } from '../pool/messages';
import { NonceWindow, signReply, verifyCommand, type FleetCommand } from './protocol';
import type { ResolvedFleetOptions } from './options';

/** What the fleet runs commands on: the manager's default pool. */
export interface FleetTarget {
  resetPool(): Promise<number>;
  triggerExpireConnections(): Promise<number>;
  triggerRenewConnections(): Promise<number>;
  resize(limits: { min?: number; max?: number }): Promise<{ closed: number; retiring: number }>;
}

/** A new instance id, `host:pid:random`: short enough that session names stay within 63 bytes. */
export function newInstanceId(): string {
  return `${hostname().slice(0, 8)}:${process.pid}:${randomBytes(2).toString('hex')}`;
}

/** The prefix of a listening session's application_name. */
export const LISTENER_PREFIX = 'kcm-fleet';

/** A listening session's application_name: at most 10 + 24 + 1 + 21 = 56 bytes. */
export function listenerName(service: string, instance: string): string {
  return `${LISTENER_PREFIX}:${service}:${instance}`;
}

export class FleetListener {

  private client: Client | undefined;
  private closed = false;
  private failures = 0;
  private timer: TimerHandle | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly seen = new NonceWindow();
  private readonly counts = { commands: 0, refused: 0, reconnects: 0 };
  private last: FleetStats['last'];

  constructor(
    /** This instance's id (`newInstanceId()`), also in its pool sessions' names. */
    readonly instance: string,
    private readonly options: ResolvedFleetOptions,
    /** The settings to connect with (the direct connection, or the manager's), asked at each connect. */
    private readonly settings: () => Promise<ClientConfig>,
    private readonly target: FleetTarget,
    private readonly retry: ResolvedRetryOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    void this.connect();
  }

  /** `getPoolStats().fleet`. */
  stats(): FleetStats {
    return { service: this.options.service, channel: this.options.channel, instance: this.instance, listening: this.client !== undefined, ...this.counts, ...(this.last ? { last: this.last } : {}) };
  }

  /** Stops listening and closes the session; commands already running finish. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    await this.queue;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: Client | undefined;
    try {
      const settings = await this.settings();
      client = new Client({ ...settings, application_name: listenerName(this.options.service, this.instance) });
      client.on('error', (error) => this.lost(client as Client, error));
      client.on('end', () => this.lost(client as Client, new Error('connection ended')));
      await client.connect();
      await client.query(`LISTEN "${this.options.channel}"`);
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      client.on('notification', (message: Notification) => this.onNotification(message));
      this.client = client;
      if (this.failures > 0 || this.counts.reconnects > 0 || this.wasConnected) this.log.info(`Fleet listener of service "${this.options.service}" listening again on "${this.options.channel}"`);
      this.wasConnected = true;
      this.failures = 0;
    } catch (error) {
      client?.removeAllListeners('end');
      await client?.end().catch(() => undefined);
      this.failures++;
      this.log.warn(`Fleet listener could not listen on "${this.options.channel}" (${errorMessage(error)}); retrying`, { service: this.options.service });
      this.schedule();
    }
  }

  private wasConnected = false;

  private lost(client: Client, error: unknown): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.counts.reconnects++;
    this.log.warn(`Fleet listener lost its session (${errorMessage(error)}); reconnecting`, { service: this.options.service });
    client.end().catch(() => undefined);
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    const delay = Math.min(this.retry.initialDelayMs * 2 ** Math.min(this.failures, 16), this.retry.maxDelayMs * 10);
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      void this.connect();
    }, Math.max(10, delay));
  }

  private onNotification(message: Notification): void {
    if (message.channel !== this.options.channel || message.payload === undefined) return;
    const verdict = verifyCommand(message.payload, this.options.token, this.options.service, this.clock.wallNow(), this.seen);
    if (!verdict.ok) {
      if (verdict.forOthers) return;
      this.counts.refused++;
      this.log.warn(`Fleet command refused: ${verdict.reason}`, { service: this.options.service, channel: this.options.channel });
      return;
    }
    // One at a time, in arrival order (the pool serialises its admin operations anyway).
    this.queue = this.queue.then(() => this.run(verdict.command));
  }

  private async run(command: FleetCommand): Promise<void> {
    let count: number | undefined;
    let failure: string | undefined;
    try {
      count = await this.execute(command);
    } catch (error) {
      failure = errorMessage(error);
    }
    this.counts.commands++;
    this.last = { command: command.cmd, at: new Date(this.clock.wallNow()), ok: failure === undefined, ...(failure === undefined ? {} : { error: failure }) };
    this.log.info(`Fleet command ${command.cmd} ${failure === undefined ? `done: ${count}` : `failed: ${failure}`}`, { service: this.options.service, nonce: command.nonce });
    const reply = signReply(this.options.token, {
      nonce: command.nonce, instance: this.instance, ok: failure === undefined, ...(count === undefined ? {} : { count }), ...(failure === undefined ? {} : { error: failure }), ts: this.clock.wallNow(),
    });
    try {
      await this.client?.query('SELECT pg_notify($1, $2)', [command.reply, JSON.stringify(reply)]);
    } catch (error) {
      this.log.warn(`Fleet reply to ${command.cmd} could not be sent: ${errorMessage(error)}`, { service: this.options.service });
    }
  }

  private async execute(command: FleetCommand): Promise<number> {
    switch (command.cmd) {
      case 'reset': return this.target.resetPool();
      case 'expire': return this.target.triggerExpireConnections();
      case 'renew': return this.target.triggerRenewConnections();
      case 'resize': {
        const { closed, retiring } = await this.target.resize(command.args ?? {});
        return closed + retiring;
      }
    }
  }
}
