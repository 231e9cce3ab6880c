/**
 * Checks a connection string or pg connection object before anything reaches the driver. A bad
 * value there does not fail cleanly: a port of "abc" makes the socket throw after pg armed its
 * connect timer, which later fires on a socket nobody listens to and kills the process. So every
 * field pg reads is checked here, then the whole setting is parsed by pg itself, as a connect would.
 */
import type { Knex } from 'knex';
import { Client as PgClient } from 'pg';
import { invalidConfig } from './errors';
import { checkNumber, describe, isPlainObject, type NumberRule } from './options-rules';

const STRING_FIELDS = ['host', 'user', 'database', 'application_name', 'options', 'client_encoding', 'fallback_application_name'] as const;
/** Session timeouts pg sends to the server; `false` (pg's default) or 0 leaves them off. */
const SESSION_TIMEOUTS = ['statement_timeout', 'query_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout'] as const;
const CLIENT_TIMEOUTS = ['connectionTimeoutMillis', 'keepAliveInitialDelayMillis'] as const;
const MS: NumberRule = { min: 0, integer: false, kind: 'ms', zeroDisables: true, unit: 'milliseconds' };
const PORT: NumberRule = { min: 1, max: 65535, integer: true, kind: 'count', unit: 'TCP port' };
const EXAMPLE_URL = 'postgres://user:password@127.0.0.1:5432/db';

/** Validates a connection setting; `at` names it in messages (`connection`, `replicas[0].connection`). */
export function resolveConnection(value: unknown, at = 'connection'): string | Knex.PgConnectionConfig {
  if (typeof value === 'string') {
    if (value.trim() === '') {
      throw invalidConfig(at, 'the connection string is empty', `Set it to a URL such as ${EXAMPLE_URL}, or set DATABASE_URL.`);
    }
    checkParsed(at, { connectionString: value }, true);
    return value;
  }
  if (!isPlainObject(value)) {
    throw invalidConfig(
      at,
      value === undefined ? 'it is missing' : `expected a connection string or object, got ${describe(value)}`,
      `Pass ${at}: "${EXAMPLE_URL}" (or a pg connection object), or set DATABASE_URL.`,
    );
  }
  checkFields(at, value);
  checkParsed(at, value, false);
  return value as Knex.PgConnectionConfig;
}

function checkFields(at: string, value: Record<string, unknown>): void {
  for (const key of STRING_FIELDS) {
    if (value[key] !== undefined && typeof value[key] !== 'string') {
      throw invalidConfig(`${at}.${key}`, `expected a string, got ${describe(value[key])}`, `Set ${at}.${key} to a string, or leave it out.`);
    }
  }
  if (value.port !== undefined) {
    // pg parses the port with parseInt, so a numeric string works; anything else reaches the socket.
    const port = typeof value.port === 'string' && /^\s*\d+\s*$/.test(value.port) ? Number(value.port) : value.port;
    checkNumber(`${at}.port`, port, PORT);
  }
  const password = value.password;
  if (password !== undefined && typeof password !== 'string' && typeof password !== 'function') {
    throw invalidConfig(`${at}.password`, `expected a string (or a function returning one), got ${typeof password}`, `Set ${at}.password to a string.`);
  }
  if (value.ssl !== undefined && typeof value.ssl !== 'boolean' && !isPlainObject(value.ssl)) {
    throw invalidConfig(`${at}.ssl`, `expected true, false or TLS options, got ${describe(value.ssl)}`, `Set ${at}.ssl to true, or to options such as { rejectUnauthorized: false }.`);
  }
  if (value.keepAlive !== undefined && typeof value.keepAlive !== 'boolean') {
    throw invalidConfig(`${at}.keepAlive`, `expected true or false, got ${describe(value.keepAlive)}`, `Set ${at}.keepAlive to true or false.`);
  }
  for (const key of CLIENT_TIMEOUTS) {
    if (value[key] !== undefined) checkNumber(`${at}.${key}`, value[key], MS);
  }
  for (const key of SESSION_TIMEOUTS) {
    if (value[key] !== undefined && value[key] !== false) checkNumber(`${at}.${key}`, value[key], MS);
  }
  if (value.connectionString !== undefined && (typeof value.connectionString !== 'string' || value.connectionString.trim() === '')) {
    throw invalidConfig(`${at}.connectionString`, `expected a connection URL, got ${describe(value.connectionString)}`, `Set it to a URL such as ${EXAMPLE_URL}, or leave it out.`);
  }
}

/**
 * Lets pg parse the setting as `connect()` would (URL syntax, sslnegotiation, certificate files
 * named in the URL, PG* environment defaults), then checks the port it would dial. Building a pg
 * client opens nothing: its socket is created unconnected.
 */
function checkParsed(at: string, settings: Record<string, unknown>, isString: boolean): void {
  let port: unknown;
  try {
    port = (new PgClient(settings) as unknown as { port: unknown }).port;
  } catch (error) {
    // The URL may hold a password: the message names the problem, never the value.
    const reason = error instanceof Error ? error.message : String(error);
    throw invalidConfig(
      isString ? at : `${at}.connectionString`,
      `pg cannot use it (${reason})`,
      `Check the URL's syntax (a port from 1 to 65535, percent-encoded special characters), e.g. ${EXAMPLE_URL}.`,
    );
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidConfig(`${at}${isString ? '' : '.port'}`, `the port pg would connect to is ${describe(port)}`, 'Use a port from 1 to 65535 (in the URL, in port, or in PGPORT).');
  }
}
