/**
 * The fleet's messages: a command sent with PostgreSQL's NOTIFY to every instance of a service, and
 * each instance's reply. Both are JSON, signed with HMAC-SHA256 under the fleet's shared token over
 * every field that matters, so a session that can NOTIFY on the channel but does not know the token
 * cannot steer the fleet, and a reply cannot be forged either. A command carries the time it was
 * sent and a random nonce: an instance refuses one older (or newer) than `MAX_SKEW_MS`, and one whose
 * nonce it has already seen within that window (a replay). docs/fleet.md describes the model.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a fleet command asks every instance of the service to do. */
export type FleetCommandName = 'reset' | 'expire' | 'renew' | 'resize';

export const FLEET_COMMANDS: readonly FleetCommandName[] = ['reset', 'expire', 'renew', 'resize'];

/** How far a command's send time may be from an instance's clock. */
export const MAX_SKEW_MS = 30_000;

/** A command as sent (before signing, `mac` is absent). */
export interface FleetCommand {
  v: 1;
  cmd: FleetCommandName;
  service: string;
  /** `resize`'s limits; absent for the other commands. */
  args?: { min?: number; max?: number };
  /** Send time, Unix milliseconds. */
  ts: number;
  /** 32 hex characters, fresh for every command. */
  nonce: string;
  /** The channel the instances reply on. */
  reply: string;
  mac: string;
}

/** One instance's answer to a command. */
export interface FleetReply {
  v: 1;
  /** The command's nonce. */
  nonce: string;
  /** The instance that answers (`host:pid:random`). */
  instance: string;
  ok: boolean;
  /** The trigger's count (connections evicted, retired, replaced; for resize, closed + retiring). */
  count?: number;
  /** Why it failed, when `ok` is false. */
  error?: string;
  ts: number;
  mac: string;
}

function mac(token: string, fields: readonly unknown[]): string {
  return createHmac('sha256', token).update(JSON.stringify(fields)).digest('hex');
}

function commandFields(c: Omit<FleetCommand, 'mac'>): unknown[] {
  return ['cmd', c.v, c.cmd, c.service, c.args ?? null, c.ts, c.nonce, c.reply];
}

function replyFields(r: Omit<FleetReply, 'mac'>): unknown[] {
  return ['reply', r.v, r.nonce, r.instance, r.ok, r.count ?? null, r.error ?? null, r.ts];
}

/** A signed command for `service`, with a fresh nonce and reply channel. */
export function signCommand(token: string, cmd: FleetCommandName, service: string, args: FleetCommand['args'], now: number): FleetCommand {
  const nonce = randomBytes(16).toString('hex');
  const unsigned: Omit<FleetCommand, 'mac'> = { v: 1, cmd, service, ...(args === undefined ? {} : { args }), ts: now, nonce, reply: `kcm_reply_${nonce}` };
  return { ...unsigned, mac: mac(token, commandFields(unsigned)) };
}

/** A signed reply to `nonce`. */
export function signReply(token: string, reply: Omit<FleetReply, 'mac' | 'v'>): FleetReply {
  const unsigned: Omit<FleetReply, 'mac'> = { v: 1, ...reply };
  return { ...unsigned, mac: mac(token, replyFields(unsigned)) };
}

function sameMac(expected: string, actual: unknown): boolean {
  if (typeof actual !== 'string' || actual.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected, 'utf8'), Buffer.from(actual, 'utf8'));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a payload is not a command this instance will run, or the command. */
export type Verdict = { ok: true; command: FleetCommand } | { ok: false; reason: string; forOthers?: boolean };

/**
 * Checks a NOTIFY payload: well-formed, for `service`, signed with `token`, sent within
 * `MAX_SKEW_MS` of `now`, and with a nonce `seen` does not know yet (it is recorded when accepted).
 * A well-signed command for another service is `forOthers` (not an attack: ignored quietly).
 */
export function verifyCommand(payload: string, token: string, service: string, now: number, seen: NonceWindow): Verdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isObject(parsed) || parsed.v !== 1) return { ok: false, reason: 'not a version 1 fleet command' };
  const c = parsed as unknown as FleetCommand;
  if (!FLEET_COMMANDS.includes(c.cmd) || typeof c.service !== 'string' || typeof c.ts !== 'number' || typeof c.nonce !== 'string' ||
    !/^[0-9a-f]{32}$/.test(c.nonce) || c.reply !== `kcm_reply_${c.nonce}` || (c.args !== undefined && !isObject(c.args))) {
    return { ok: false, reason: 'malformed fields' };
  }
  if (!sameMac(mac(token, commandFields(c)), c.mac)) return { ok: false, reason: 'bad signature (wrong token, or the message was altered)' };
  if (c.service !== service) return { ok: false, reason: `for service ${JSON.stringify(c.service)}`, forOthers: true };
  if (Math.abs(now - c.ts) > MAX_SKEW_MS) return { ok: false, reason: `stale: sent ${Math.round((now - c.ts) / 1000)} s from this instance's clock (at most ${MAX_SKEW_MS / 1000} s)` };
  if (!seen.add(c.nonce, c.ts)) return { ok: false, reason: 'replayed (nonce already seen)' };
  return { ok: true, command: c };
}

/** Checks a reply payload to the command with `nonce`; undefined when it is not a genuine one. */
export function verifyReply(payload: string, token: string, nonce: string): FleetReply | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || parsed.v !== 1 || parsed.nonce !== nonce || typeof parsed.instance !== 'string' || typeof parsed.ok !== 'boolean') return undefined;
  const r = parsed as unknown as FleetReply;
  return sameMac(mac(token, replyFields(r)), r.mac) ? r : undefined;
}

/**
 * The nonces accepted within the skew window, so a replayed command is refused; entries older than
 * twice the window are dropped (a replay that old is refused as stale anyway). Bounded: at most
 * `capacity` nonces (the oldest dropped first).
 */
export class NonceWindow {
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity = 10_000) {}

  /** Records `nonce` (sent at `ts`); false when it was already there. */
  add(nonce: string, ts: number): boolean {
    if (this.seen.has(nonce)) return false;
    for (const [old, at] of this.seen) {
      if (this.seen.size < this.capacity && at >= ts - 2 * MAX_SKEW_MS) break;
      this.seen.delete(old);
    }
    this.seen.set(nonce, ts);
    return true;
  }
}
