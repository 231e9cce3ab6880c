/**
 * `knex-connection-manager/testing`: fault injection for the tests of services built on the
 * manager. Not exported from the main entry point. The faults go through the same code paths as
 * real ones: a failed open is an error from the connector (retried, counted, opening the circuit),
 * a failed validation is a `false` from the connector's check, a killed connection is a session
 * the server terminated (`pg_terminate_backend`), latency is time spent before the driver is
 * called. docs/resilience.md has a recipe.
 */
import type { Client as PgClient } from 'pg';
import { ConnectionManagerError } from '../errors';
import type { ConnectionManager } from '../manager';
import type { Connector } from '../pool/connector';
import type { Pool } from '../pool/pool';
import type { PgPooledConnection } from '../driver/pooled-connection';
import { FAULT_SEAM } from '../resilience/seam';

/** The faults to inject; each is optional. */
export interface Faults {
  /** The next `n` connection attempts fail (ECONNREFUSED), or each fails with probability `rate` (0..1). */
  connectFailures?: number | { rate: number };
  /** Each connection attempt waits this long first (it counts toward `createTimeoutMs`). */
  connectLatencyMs?: number;
  /** The next `n` validations (on borrow, keepalive, `isConnectionValid()`) fail. */
  validationFailures?: number;
  /** Terminates `n` open sessions on the server (idle ones first), once. */
  killConnections?: number;
  /** Each query waits this long before it is sent. */
  queryLatencyMs?: number;
}

/** What `injectFaults()` returns. */
export interface FaultHandle {
  /** Settles once the one-shot faults (`killConnections`) are done; resolves with the sessions killed. */
  readonly settled: Promise<number>;
  /** Removes every fault; connections opened meanwhile keep working normally. */
  clear(): void;
}

type PgPool = Pool<PgClient, PgPooledConnection>;
type Seamed = { [FAULT_SEAM](): PgPool[] };
type QueryFn = (...args: unknown[]) => unknown;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function injectedRefusal(): Error {
  return Object.assign(new Error('connect ECONNREFUSED (injected by injectFaults)'), { code: 'ECONNREFUSED' });
}

function checkCount(name: string, value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid fault "${name}": expected a number >= 0, got ${String(value)}. Pass for example { ${name}: 3 }.`);
  }
  return value;
}

/**
 * Injects `faults` into every pool of `manager` (primary and replicas) until `clear()`.
 * @throws ConnectionManagerError `E_INVALID_CONFIG` for a bad fault or something that is not a manager.
 */
export function injectFaults(manager: ConnectionManager, faults: Faults): FaultHandle {
  const seam = (manager as unknown as Partial<Seamed>)[FAULT_SEAM];
  if (typeof seam !== 'function') throw new ConnectionManagerError('E_INVALID_CONFIG', 'injectFaults(manager, faults): manager must be a ConnectionManager from getConnectionInstance().');
  const pools = seam.call(manager);
  const rate = typeof faults.connectFailures === 'object' && faults.connectFailures !== null ? faults.connectFailures.rate : undefined;
  if (rate !== undefined && !(typeof rate === 'number' && rate >= 0 && rate <= 1)) {
    throw new ConnectionManagerError('E_INVALID_CONFIG', `Invalid fault "connectFailures.rate": expected a number from 0 to 1, got ${String(rate)}.`);
  }
  let connectFailures = rate === undefined ? checkCount('connectFailures', faults.connectFailures) : 0;
  const connectLatencyMs = checkCount('connectLatencyMs', faults.connectLatencyMs);
  let validationFailures = checkCount('validationFailures', faults.validationFailures);
  const kills = checkCount('killConnections', faults.killConnections);
  const queryLatencyMs = checkCount('queryLatencyMs', faults.queryLatencyMs);
  let active = true;
  const undo: Array<() => void> = [];

  /** Delays `raw`'s queries while the fault is active. */
  const slowDown = (raw: PgClient): void => {
    const client = raw as unknown as { query: QueryFn };
    if (Object.prototype.hasOwnProperty.call(client, 'query')) return;
    const original = client.query;
    client.query = function (this: unknown, ...args: unknown[]): unknown {
      if (!active) return original.apply(this, args);
      if (typeof args[args.length - 1] === 'function') {
        setTimeout(() => original.apply(this, args), queryLatencyMs);
        return undefined;
      }
      return delay(queryLatencyMs).then(() => original.apply(this, args));
    };
    undo.push(() => delete (client as { query?: QueryFn }).query);
  };

  for (const pool of pools) {
    const connector = pool.faultConnector() as Connector<PgClient> & { open: Connector<PgClient>['open']; validate: Connector<PgClient>['validate'] };
    const open = connector.open;
    const validate = connector.validate;
    connector.open = async function (this: unknown, timeoutMs: number): Promise<PgClient> {
      if (active && connectLatencyMs > 0) await delay(Math.min(connectLatencyMs, timeoutMs));
      if (active && (connectFailures > 0 || (rate !== undefined && Math.random() < rate))) {
        if (connectFailures > 0) connectFailures--;
        throw injectedRefusal();
      }
      const raw = await open.call(connector, Math.max(1, timeoutMs - (active ? connectLatencyMs : 0)));
      if (active && queryLatencyMs > 0) slowDown(raw);
      return raw;
    };
    connector.validate = function (raw: PgClient, timeoutMs: number): Promise<boolean> {
      if (active && validationFailures > 0) {
        validationFailures--;
        return Promise.resolve(false);
      }
      return validate.call(connector, raw, timeoutMs);
    };
    undo.push(() => {
      delete (connector as Partial<typeof connector>).open;
      delete (connector as Partial<typeof connector>).validate;
    });
    if (queryLatencyMs > 0) for (const entry of pool.openEntries()) if (entry.raw) slowDown(entry.raw);
  }

  const settled = kills > 0 ? killSessions(manager, pools, kills) : Promise.resolve(0);
  return {
    settled,
    clear(): void {
      active = false;
      for (const step of undo.splice(0)) step();
    },
  };
}

/** Terminates up to `n` of the pools' open sessions on the server, idle ones first. */
function killSessions(manager: ConnectionManager, pools: PgPool[], n: number): Promise<number> {
  // From a session of its own, which is not among the victims.
  return manager.withConnection(async (own) => {
    const entries = pools.flatMap((p) => p.openEntries()).filter((e) => e !== (own as unknown))
      .sort((a, b) => Number(b.state === 'idle') - Number(a.state === 'idle'));
    const pids = entries.map((e) => (e.raw as unknown as { processID?: number } | undefined)?.processID).filter((pid): pid is number => typeof pid === 'number').slice(0, n);
    if (pids.length === 0) return 0;
    const { rows } = await own.query<{ n: number }>('select count(*)::int as n from (select pg_terminate_backend(pid) from unnest($1::int[]) as pid) t', [pids]);
    return rows[0].n;
  });
}
