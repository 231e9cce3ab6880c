/**
 * The PostgreSQL connector: opens, checks and closes node-postgres clients through knex's pg
 * dialect client (so knex's session setup — version check, search path — applies to every
 * connection). This directory is the only place that touches knex or pg internals.
 */
import type { Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { Logger } from 'winston';
import { systemClock, withTimeout, type Clock } from '../pool/clock';
import type { Connector } from '../pool/connector';
import type { SessionSetupHook, ValidationHook } from '../options-types';
import { runAfterCreate, runValidate, type ConnectionSource } from './connection-source';
import { errorMessage } from '../pool/messages';
import { cachingClientClass } from '../statement-cache/client';

/** How long `close()` waits for the server to end a session before destroying the socket. */
const CLOSE_GRACE_MS = 2_000;

/** The pg client internals read here, each guarded. */
interface PgClientInternals {
  /** knex's pg dialect marks a client it saw fail or end. */
  __knex__disposed?: unknown;
  connection?: {
    stream?: { destroy?: () => void };
    on?: (event: 'errorMessage', listener: (message: { severity?: unknown; code?: unknown }) => void) => unknown;
  };
}

/**
 * True for a server error that ends the session: severity FATAL or PANIC, or (for servers whose
 * messages are translated) SQLSTATE class 57P (operator intervention) or 08 (connection exception).
 */
function endsSession(message: { severity?: unknown; code?: unknown }): boolean {
  if (message.severity === 'FATAL' || message.severity === 'PANIC') return true;
  return typeof message.code === 'string' && (message.code.startsWith('57P') || message.code.startsWith('08'));
}

/**
 * SQLSTATE classes and codes that retrying cannot fix: authentication (class 28), unknown database
 * (3D000), syntax or permission errors in session setup (class 42), unsupported feature (0A000).
 */
function isPermanentSqlState(code: string): boolean {
  return code.startsWith('28') || code === '3D000' || code.startsWith('42') || code === '0A000';
}

/** The knex pg dialect client internals used to open a connection, each guarded. */
interface KnexPgClientInternals {
  driver?: { Client?: new (settings: unknown) => PgClient };
  connectionSettings?: unknown;
  _acquireOnlyConnection?: () => Promise<PgClient>;
}

/** What pg keeps of a connection attempt: its connect-timeout timer and the socket. */
interface PgAttemptInternals {
  connectionTimeoutHandle?: unknown;
  connection?: { stream?: { destroy?: () => void; on?: (event: 'error', listener: () => void) => unknown } };
}

function ignore(): void {
  // A socket error with nobody left to tell: the attempt already failed or was abandoned.
}

/**
 * Opens one pg client the way knex's dialect does (same settings, same 'error'/'end' marks), but
 * so that no failure of the attempt can reach the process as an unhandled 'error' event. pg arms
 * its connect timer before `socket.connect()`, which may throw synchronously (a bad port); the
 * timer would later destroy a socket that has no error listener, once per retry. So the socket
 * gets a listener before connecting, and a failed attempt's timer is cleared and socket destroyed.
 */
export function openGuarded(knexClient: Knex.Client): Promise<PgClient> {
  const internals = knexClient as unknown as KnexPgClientInternals;
  const Client = internals.driver?.Client;
  if (typeof Client !== 'function') return Promise.reject(new Error('knex has no pg driver loaded (is the "pg" package installed?)'));
  let raw: PgClient;
  try {
    // A subclass whose query() consults the statement cache once the record attaches one.
    raw = new (cachingClientClass(Client))(internals.connectionSettings);
  } catch (error) {
    return Promise.reject(error);
  }
  const marks = raw as unknown as PgClientInternals & PgAttemptInternals;
  raw.on('error', (error) => {
    marks.__knex__disposed = error;
  });
  raw.on('end', () => {
    marks.__knex__disposed ??= 'Connection ended unexpectedly';
  });
  marks.connection?.stream?.on?.('error', ignore);
  const abandon = (error: unknown): never => {
    clearTimeout(marks.connectionTimeoutHandle as NodeJS.Timeout | undefined);
    try {
      marks.connection?.stream?.destroy?.();
    } catch {
      // Already destroyed: nothing left to free.
    }
    throw error;
  };
  try {
    return raw.connect().then(() => raw, abandon);
  } catch (error) {
    return Promise.reject(error).catch(abandon);
  }
}

/** Where a connector's settings come from and what runs on each new session. */
export interface PgConnectorSetup {
  /** The settings of each open (fixed, or from a connection function). Default: the knex client's. */
  source?: ConnectionSource;
  /** `pool.afterCreate`. */
  afterCreate?: SessionSetupHook;
  /** `pool.validate`: replaces `SELECT 1`. */
  validate?: ValidationHook;
}

export class PgConnector implements Connector<PgClient> {
  private txStatusUnsupported = false;

  constructor(
    private readonly client: Knex.Client,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    private readonly setup: PgConnectorSetup = {},
  ) {
    // knex's acquireRawConnection (version check, search path) opens through this method.
    (client as unknown as KnexPgClientInternals)._acquireOnlyConnection = () => openGuarded(client);
  }

  /**
   * Opens one connection: its settings (a connection function may be called), the connect with
   * knex's session setup, then `pool.afterCreate`; all of it within `timeoutMs`. A failure at any
   * step rejects (and closes what was opened), so the pool counts it and retries like any other.
   */
  open(timeoutMs: number): Promise<PgClient> {
    const hook = this.setup.afterCreate;
    let attempt: Promise<PgClient>;
    try {
      const settings = this.setup.source?.next();
      attempt = settings instanceof Promise ? settings.then((s) => this.connect(s)) : this.connect(settings);
    } catch (error) {
      return Promise.reject(error);
    }
    if (hook === undefined) {
      // A connection that arrives after the pool gave up is closed: no server session is leaked.
      return withTimeout(attempt, timeoutMs, this.clock, 'Opening a connection (pool.createTimeoutMs)', (raw) => void this.close(raw));
    }
    let connected: PgClient | undefined;
    let closing: Promise<void> | undefined;
    const closeOnce = (raw: PgClient): Promise<void> => (closing ??= this.close(raw));
    const prepared = attempt.then((raw) => {
      connected = raw;
      return this.prepare(raw, hook, closeOnce);
    });
    return withTimeout(prepared, timeoutMs, this.clock, 'Opening a connection (pool.createTimeoutMs)', (raw) => void closeOnce(raw)).catch(
      (error: unknown) => {
        // A hook still running at the deadline holds an open session: close it now, not when (or
        // if ever) the hook ends.
        if (connected !== undefined) void closeOnce(connected);
        throw error;
      },
    );
  }

  /** Connects with `settings` (when given; knex's dialect reads them synchronously as it starts). */
  private connect(settings: Record<string, unknown> | undefined): Promise<PgClient> {
    if (settings !== undefined) (this.client as unknown as KnexPgClientInternals).connectionSettings = settings;
    return this.client.acquireRawConnection() as Promise<PgClient>;
  }

  /** Runs the session set-up hook; a throw closes the session and fails the open. */
  private async prepare(raw: PgClient, hook: SessionSetupHook, closeOnce: (raw: PgClient) => Promise<void>): Promise<PgClient> {
    try {
      await runAfterCreate(hook, raw);
    } catch (error) {
      this.log.warn(`pool.afterCreate failed; closing the new connection: ${errorMessage(error)}`);
      await closeOnce(raw);
      throw error;
    }
    return raw;
  }

  close(raw: PgClient): Promise<void> {
    // end() waits for the server to close the socket; on a dead or black-holed network that may
    // never happen, so after a short grace period the socket is destroyed locally.
    const destroy = (): void => (raw as unknown as PgClientInternals).connection?.stream?.destroy?.();
    let ending: Promise<void>;
    try {
      ending = this.client.destroyRawConnection(raw) as Promise<void>;
    } catch (error) {
      ending = Promise.reject(error);
    }
    return withTimeout(ending, CLOSE_GRACE_MS, this.clock, 'Closing a connection').catch(destroy);
  }

  watch(raw: PgClient, onBroken: (error: unknown) => void): void {
    raw.on('error', (error) => onBroken(error));
    raw.on('end', () => onBroken(new Error('Connection ended unexpectedly')));
    const internals = raw as unknown as PgClientInternals;
    // When a session-ending error answers a running query, pg only rejects that query; 'end'
    // follows a few ticks later, when the socket closes. The caller may release the connection in
    // between, so mark it dead as soon as the message arrives (before the query's rejection runs).
    internals.connection?.on?.('errorMessage', (message) => {
      if (endsSession(message)) onBroken(message);
    });
    if (internals.__knex__disposed !== undefined) onBroken(internals.__knex__disposed);
    if (typeof (raw as Partial<PgClient>).getTransactionStatus !== 'function' && !this.txStatusUnsupported) {
      this.txStatusUnsupported = true;
      this.log.warn('This pg version has no getTransactionStatus(); every released connection will be rolled back defensively (slower). Upgrade pg.');
    }
  }

  /** From the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed one. */
  inTransaction(raw: PgClient): boolean {
    if (this.txStatusUnsupported) return true;
    const status = raw.getTransactionStatus();
    return status === 'T' || status === 'E';
  }

  async rollback(raw: PgClient): Promise<void> {
    await raw.query('ROLLBACK');
  }

  async validate(raw: PgClient, timeoutMs: number): Promise<boolean> {
    if ((raw as unknown as PgClientInternals).__knex__disposed !== undefined) return false;
    const hook = this.setup.validate;
    // A throw from the hook counts as invalid, like a failed SELECT 1.
    const answered = hook ? runValidate(hook, raw).catch(() => false) : raw.query('SELECT 1').then(() => true, () => false);
    return withTimeout(answered, timeoutMs, this.clock, 'Validation').catch(() => false);
  }

  isRetryable(error: unknown): boolean {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return !isPermanentSqlState(code);
    // Programming and configuration errors (a malformed URL, a wrong option type) stay wrong.
    if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) return false;
    return true;
  }
}
