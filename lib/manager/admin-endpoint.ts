/**
 * A manager's admin endpoint while it starts and listens: the metrics fed by each pool's events,
 * the HTTP server, and where it listens once it does.
 */
import type { Logger } from 'winston';
import { PoolMetrics } from '../admin/metrics';
import { startAdminServer, type AdminServer, type AdminServerOptions, type AdminTarget } from '../admin/server';
import { ConnectionManagerError } from '../errors';
import type { PoolObserver } from '../pool/types';
import { errorMessage } from '../pool/messages';

/** Where the admin endpoint listens (see `ConnectionManager.adminReady`). */
export interface AdminEndpoint {
  /** `http://host:port`. */
  url: string;
  port: number;
}

/** A pool the metrics observe, by the name its metrics carry. */
export interface ObservedPool {
  readonly name: string;
  readonly pool: { observe(observer: PoolObserver | undefined): void };
}

export class AdminEndpointHandle {
  private server: AdminServer | undefined;
  private readonly start: Promise<AdminServer>;
  private readonly metrics: PoolMetrics;

  constructor(target: AdminTarget, options: Omit<AdminServerOptions, 'metrics' | 'logger'>, pools: readonly ObservedPool[], log: Logger) {
    // Histograms are fed by pool events; gauges and counters are read at scrape time.
    const metrics = (this.metrics = new PoolMetrics(() => target.getPoolStats()));
    this.observe(pools);
    this.start = startAdminServer(target, { ...options, metrics, logger: log });
    this.start.then(
      (server) => {
        this.server = server;
      },
      (error: unknown) => log.error(`Admin endpoint could not start: ${errorMessage(error)}`),
    );
  }

  /** Feeds the histograms from the events of `pools` too (a pool made after the start). */
  observe(pools: readonly ObservedPool[]): void {
    for (const p of pools) p.pool.observe(this.metrics.observer(p.name));
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
