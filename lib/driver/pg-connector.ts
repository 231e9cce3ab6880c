/**
 * The PostgreSQL connector: opens, checks and closes node-postgres clients through knex's pg
 * dialect client (so knex's session setup — version check, search path — applies to every
 * connection). This directory is the only place that touches knex or pg internals.
 */
import type { Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import type { Logger } from 'winston';
import type { Connector } from '../pool/connector';

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

export class PgConnector implements Connector<PgClient> {
  private txStatusUnsupported = false;

  constructor(
    private readonly client: Knex.Client,
    private readonly log: Logger,
  ) {}

  open(timeoutMs: number): Promise<PgClient> {
    const attempt = this.client.acquireRawConnection() as Promise<PgClient>;
    return new Promise<PgClient>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`Opening a connection timed out after ${timeoutMs} ms (pool.createTimeoutMs)`));
      }, timeoutMs);
      timer.unref();
      attempt.then(
        (raw) => {
          if (timedOut) {
            void this.close(raw); // arrived after we gave up: do not leak the server session
            return;
          }
          clearTimeout(timer);
          resolve(raw);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (!timedOut) reject(error);
        },
      );
    });
  }

  close(raw: PgClient): Promise<void> {
    // end() waits for the server to close the socket; on a dead or black-holed network that may
    // never happen, so after a short grace period the socket is destroyed locally.
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        (raw as unknown as PgClientInternals).connection?.stream?.destroy?.();
        resolve();
      }, 2_000);
      timer.unref();
      this.client.destroyRawConnection(raw).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          clearTimeout(timer);
          (raw as unknown as PgClientInternals).connection?.stream?.destroy?.();
          resolve();
        },
      );
    });
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
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
        timer.unref();
      });
      return await Promise.race([raw.query('SELECT 1').then(() => true, () => false), timeout]);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  isRetryable(error: unknown): boolean {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return !isPermanentSqlState(code);
    // Programming and configuration errors (a malformed URL, a wrong option type) stay wrong.
    if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) return false;
    return true;
  }
}
