/**
 * Where the settings of each new connection come from: fixed settings, or a function called the
 * way knex calls one (its result is kept until the `expirationChecker` it returned says it expired;
 * without one, the first result is kept for good). The function is how credentials are rotated
 * (IAM tokens, Vault leases; see docs/operations.md). And the session set-up hook
 * (`pool.afterCreate`), run on every new connection before anyone sees it.
 */
import type { Client as PgClient, QueryResult } from 'pg';
import { ConnectionManagerError, invalidConfig } from '../errors';
import { resolveConnection } from '../options-connection';
import type { ConnectionProvider, ResolvedConfig, SessionSetupConnection, StaticConnection } from '../options-types';

/** Settings for node-postgres, made from one connection setting. */
export type ToDriverSettings = (connection: StaticConnection) => Record<string, unknown>;

/** The settings for the next open: fixed, or from the provider when its last result expired. */
export class ConnectionSource {
  private readonly provider: ConnectionProvider | undefined;
  private settings: Record<string, unknown> | undefined;
  private expired: (() => boolean) | undefined;

  constructor(
    connection: ResolvedConfig['connection'],
    private readonly toDriver: ToDriverSettings,
    private readonly at: string,
  ) {
    if (typeof connection === 'function') this.provider = connection;
    else this.settings = toDriver(connection);
  }

  /**
   * The settings to open with now; a promise only when the provider has to be called. Opens that
   * need new settings at the same time each call it, as with knex: a call that hangs then holds up
   * only its own open (bounded by `pool.createTimeoutMs`), never the ones after it.
   */
  next(): Record<string, unknown> | Promise<Record<string, unknown>> {
    if (this.settings !== undefined && (this.expired === undefined || !this.expired())) return this.settings;
    return this.refresh();
  }

  /**
   * Calls the provider and checks its result like a static setting. A throw or a bad result fails
   * this open (the pool reports it as `E_CONNECT` with the error as `cause`, and retries).
   */
  private async refresh(): Promise<Record<string, unknown>> {
    const provided: unknown = await (this.provider as ConnectionProvider)();
    let checker: unknown;
    let connection: unknown = provided;
    if (typeof provided === 'object' && provided !== null && 'expirationChecker' in provided) {
      const { expirationChecker, ...rest } = provided as Record<string, unknown>;
      checker = expirationChecker;
      connection = rest;
      const password = Object.getOwnPropertyDescriptor(provided, 'password');
      if (password) Object.defineProperty(connection, 'password', password);
      if (typeof checker !== 'function') {
        throw invalidConfig(
          `${this.at}().expirationChecker`,
          'expected a function returning true once the settings expired',
          'Return { ...settings, expirationChecker: () => Date.now() > expiresAt }, or leave it out.',
        );
      }
    }
    const settings = this.toDriver(resolveConnection(connection, `${this.at}()`));
    this.settings = settings;
    this.expired = checker as (() => boolean) | undefined;
    return settings;
  }
}

/** What `pool.afterCreate` receives: the new session, for the duration of the hook. */
class SetupConnection implements SessionSetupConnection {
  done = false;
  constructor(private readonly raw: PgClient) {}

  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, bindings?: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.done) {
      return Promise.reject(new ConnectionManagerError('E_NOT_CHECKED_OUT', 'This connection was lent to pool.afterCreate only: use it inside the hook, and await every query before the hook returns.'));
    }
    return this.raw.query<R>(sql, bindings as unknown[] | undefined);
  }
}

/** Runs a `pool.validate` hook on `raw`: true only for `true`; the connection is the hook's only while it runs. */
export async function runValidate(hook: (connection: SessionSetupConnection) => Promise<boolean> | boolean, raw: PgClient): Promise<boolean> {
  const lent = new SetupConnection(raw);
  try {
    return (await hook(lent)) === true;
  } finally {
    lent.done = true;
  }
}

/** Runs the session set-up hook on `raw`; the connection is usable by the hook only while it runs. */
export async function runAfterCreate(hook: (connection: SessionSetupConnection) => Promise<void> | void, raw: PgClient): Promise<void> {
  const setup = new SetupConnection(raw);
  try {
    await hook(setup);
  } finally {
    setup.done = true;
  }
}
