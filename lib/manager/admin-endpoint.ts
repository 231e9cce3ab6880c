/**
 * A manager's admin endpoint while it starts and listens: the HTTP server serving the manager's
 * metrics (lib/observability feeds them, whether or not the endpoint runs), and where it listens.
 */
import type { Logger } from 'winston';
import type { PoolMetrics } from '../admin/metrics';
import { startAdminServer, type AdminServer, type AdminServerOptions, type AdminTarget } from '../admin/server';
import { ConnectionManagerError } from '../errors';
import { errorMessage } from '../pool/messages';

/** Where the admin endpoint listens (see `ConnectionManager.adminReady`). */
export interface AdminEndpoint {
  /** `http://host:port`. */
  url: string;
  port: number;
}

export class AdminEndpointHandle {
  private server: AdminServer | undefined;
  private readonly start: Promise<AdminServer>;

  constructor(target: AdminTarget, options: Omit<AdminServerOptions, 'metrics' | 'logger'>, metrics: PoolMetrics, log: Logger) {
    this.start = startAdminServer(target, { ...options, metrics, logger: log });
    this.start.then(
      (server) => {
        this.server = server;
      },
      (error: unknown) => log.error(`Admin endpoint could not start: ${errorMessage(error)}`),
    );
  }

  /** Where it listens, once it does. */
  get current(): AdminEndpoint | undefined {
    return this.server && { url: this.server.url, port: this.server.port };
  }

  /** Resolves once it listens; rejects with the listen error. */
  async ready(): Promise<AdminEndpoint> {
    const server = await this.start;
    return { url: server.url, port: server.port };
  }

  /** Stops it (whether it started or not). */
  close(): Promise<void> {
    return this.start.then((server) => server.close(), () => undefined);
  }
}

/** `E_INVALID_CONFIG` for `adminReady()` without an `admin` option. */
export function adminNotConfigured(): ConnectionManagerError {
  return new ConnectionManagerError('E_INVALID_CONFIG', 'Invalid option "admin": the admin endpoint is not configured. Pass admin: { port } to getConnectionInstance().');
}
