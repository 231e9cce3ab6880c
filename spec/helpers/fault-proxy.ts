/**
 * A loopback TCP proxy that can misbehave on demand, for fault tests: it sits between the pool and
 * a PostgreSQL server on 127.0.0.1 and can
 *
 * - `pass`: forward bytes both ways (a healthy network);
 * - `refuse`: stop listening, so new connections get ECONNREFUSED (a server that is down or a
 *   port that is closed); connections already through keep working;
 * - `blackhole`: accept new connections and never answer them, and stop forwarding on every
 *   connection already through (a hung server, a dropped route, a firewall eating packets).
 *   Bytes swallowed by the black hole are gone: a connection black-holed once stays dead even
 *   after the mode changes back, as a TCP stream that lost data would.
 *
 * `killAll()` destroys every current connection (the peer sees a reset), `close()` stops the proxy
 * and destroys everything it holds. Every socket is tracked, so nothing outlives `close()`.
 */
import * as net from 'node:net';

export type FaultMode = 'pass' | 'refuse' | 'blackhole';

/** One client connection through the proxy and, when forwarded, its upstream half. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Set once the pair has been black-holed; it never forwards again. */
  blackholed: boolean;
}

export interface FaultProxyOptions {
  /** Port of the server on 127.0.0.1 to forward to. */
  targetPort: number;
  /** Mode to start in (default `pass`). */
  mode?: FaultMode;
}

export class FaultProxy {
  /** The port the proxy listens on (kept across `refuse` and back). */
  readonly port: number;
  /** Client connections the proxy accepted, in every mode. */
  accepted = 0;

  private modeValue: FaultMode;
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private closed = false;

  private constructor(
    private readonly targetPort: number,
    port: number,
    server: net.Server,
    mode: FaultMode,
  ) {
    this.port = port;
    this.server = server;
    this.modeValue = mode;
  }

  /** Starts a proxy on a free port of 127.0.0.1. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const mode = options.mode ?? 'pass';
    // Listen first (to learn the port), then honour a starting mode of `refuse`.
    const holder: { proxy?: FaultProxy } = {};
    const server = net.createServer((socket) => holder.proxy?.onConnection(socket));
    const port = await listen(server, 0);
    const proxy = (holder.proxy = new FaultProxy(options.targetPort, port, server, 'pass'));
    await proxy.setMode(mode);
    return proxy;
  }

  get mode(): FaultMode {
    return this.modeValue;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** Connections currently held (forwarded or black-holed). */
  get connectionCount(): number {
    return this.pairs.size;
  }

  /** Switches the mode; resolves once the listening socket matches it. */
  async setMode(mode: FaultMode): Promise<void> {
    if (this.closed) throw new Error('the fault proxy is closed');
    this.modeValue = mode;
    if (mode === 'blackhole') {
      for (const pair of this.pairs) this.blackhole(pair);
    }
    if (mode === 'refuse') {
      // Closes the listening socket at once (the port refuses from now on); connections already
      // through are not affected. net.Server#close's callback would wait for them, so no waiting.
      this.server?.close();
      this.server = undefined;
    } else if (!this.server) {
      const server = net.createServer((socket) => this.onConnection(socket));
      await listen(server, this.port);
      this.server = server;
    }
  }

  /** Destroys every connection through the proxy now (both halves). */
  killAll(): void {
    for (const pair of [...this.pairs]) this.drop(pair);
  }

  /** Stops listening and destroys every connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.killAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    this.accepted++;
    const pair: Pair = { client, upstream: undefined, blackholed: false };
    this.pairs.add(pair);
    client.on('error', () => this.drop(pair));
    client.on('close', () => this.drop(pair));
    if (this.closed || this.modeValue === 'refuse') {
      this.drop(pair);
      return;
    }
    if (this.modeValue === 'blackhole') {
      this.blackhole(pair);
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
    pair.upstream = upstream;
    // A black hole also swallows the server's goodbye: the client half stays open, unanswered.
    const upstreamGone = (): void => {
      if (pair.blackholed) pair.upstream = undefined;
      else this.drop(pair);
    };
    upstream.on('error', upstreamGone);
    upstream.on('close', upstreamGone);
    // Forward by hand rather than pipe(), so a black hole can stop a stream in the middle.
    client.on('data', (chunk: Buffer) => {
      if (!pair.blackholed) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.blackholed) client.write(chunk);
    });
  }

  /** From now on, `pair` swallows everything in both directions and never closes by itself. */
  private blackhole(pair: Pair): void {
    pair.blackholed = true;
    // Keep reading so the peer's writes do not back up, and drop what arrives.
    pair.client.resume();
    pair.upstream?.resume();
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}

function listen(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
