/**
 * The exposure rule shared by option resolution and the admin endpoint: which hosts are loopback,
 * and that a reachable host needs a token.
 */
import { isConnectionManagerError } from '../../lib/errors';
import { exposureError, isLoopbackHost } from '../../lib/net';

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST', 'api.localhost', '127.0.0.1', '127.1.2.3', ' 127.0.0.1 ', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])(
    '%j is loopback',
    (host) => expect(isLoopbackHost(host)).toBe(true),
  );

  it.each(['0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', '127.0.0.1.example.com', ''])(
    '%j is reachable from elsewhere',
    (host) => expect(isLoopbackHost(host)).toBe(false),
  );
});

describe('exposureError', () => {
  it('allows a loopback host without a token, and any host with one', () => {
    expect(exposureError('127.0.0.1', undefined)).toBeUndefined();
    expect(exposureError('0.0.0.0', 'a-long-random-secret')).toBeUndefined();
  });

  it('refuses a reachable host without a token, naming the option and the fix', () => {
    const error = exposureError('0.0.0.0', undefined);
    expect(isConnectionManagerError(error, 'E_INVALID_CONFIG')).toBe(true);
    expect(error?.message).toMatch(/admin\.token/);
    expect(error?.message).toMatch(/0\.0\.0\.0/);
    expect(error?.message).toMatch(/127\.0\.0\.1/);
  });
});
