/**
 * Where each open's settings come from: fixed ones as they are, a connection function called as
 * knex calls it (again only once its expirationChecker says so), and its results checked like
 * static settings (docs/knex.md#connection-settings-from-a-function).
 */
import { ConnectionSource } from '../../lib/driver/connection-source';
import { driverSettings } from '../../lib/driver/pg-pool';
import { resolveOptions, type ConnectionProvider, type StaticConnection } from '../../lib/options';

const toDriver = (c: StaticConnection): Record<string, unknown> => (typeof c === 'string' ? { connectionString: c } : { ...c });
const URL = 'postgres://app@127.0.0.1:5432/db';

test('fixed settings are returned as they are, synchronously, every time', () => {
  const source = new ConnectionSource(URL, toDriver, 'connection');
  const first = source.next();
  expect(first).toEqual({ connectionString: URL });
  expect(source.next()).toBe(first);
});

test('without an expirationChecker the function is called once and its result kept', async () => {
  const provider = jest.fn(() => URL);
  const source = new ConnectionSource(provider, toDriver, 'connection');
  const pending = source.next();
  expect(pending).toBeInstanceOf(Promise);
  expect(await pending).toEqual({ connectionString: URL });
  expect(source.next()).toEqual({ connectionString: URL });
  expect(provider).toHaveBeenCalledTimes(1);
});

test('with an expirationChecker it is called again only once the checker says the settings expired', async () => {
  let expired = false;
  let n = 0;
  const provider: ConnectionProvider = async () => ({ connectionString: URL, application_name: `gen-${++n}`, expirationChecker: () => expired });
  const source = new ConnectionSource(provider, toDriver, 'connection');
  expect(await source.next()).toEqual({ connectionString: URL, application_name: 'gen-1' });
  expect(source.next()).toEqual({ connectionString: URL, application_name: 'gen-1' });
  expired = true;
  const refreshed = await source.next();
  expect(refreshed).toEqual({ connectionString: URL, application_name: 'gen-2' });
  expect(refreshed).not.toHaveProperty('expirationChecker');
});

test('its results are checked like static settings, and a bad expirationChecker is refused', async () => {
  const badPort = new ConnectionSource(() => ({ host: '127.0.0.1', port: 'abc' }) as never, toDriver, 'replicas[r1].connection');
  await expect(badPort.next()).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('"replicas[r1].connection().port"') as string });
  const notAnObject = new ConnectionSource(() => 42 as never, toDriver, 'connection');
  await expect(notAnObject.next()).rejects.toMatchObject({ code: 'E_INVALID_CONFIG' });
  const badChecker = new ConnectionSource(() => ({ connectionString: URL, expirationChecker: 'soon' }) as never, toDriver, 'connection');
  await expect(badChecker.next()).rejects.toMatchObject({ code: 'E_INVALID_CONFIG', message: expect.stringContaining('expirationChecker') as string });
});

test('a throwing function rejects the open with its own error, and the next open calls it again', async () => {
  const failure = new Error('vault sealed');
  const provider = jest.fn<string, []>().mockImplementationOnce(() => {
    throw failure;
  }).mockReturnValue(URL);
  const source = new ConnectionSource(provider, toDriver, 'connection');
  await expect(source.next()).rejects.toBe(failure);
  expect(await source.next()).toEqual({ connectionString: URL });
});

test('a password the function returns non-enumerable stays with the settings', async () => {
  const settings = { host: '127.0.0.1', expirationChecker: () => false };
  Object.defineProperty(settings, 'password', { value: 's3cret', enumerable: false });
  const config = resolveOptions({ connection: URL });
  const source = new ConnectionSource(() => settings, (c) => driverSettings(c, config), 'connection');
  const out = await source.next();
  expect(out.password).toBe('s3cret');
  expect(JSON.stringify(out)).not.toContain('s3cret');
  expect(out).toMatchObject({ host: '127.0.0.1', keepAlive: true, application_name: 'knex-connection-manager' });
});
