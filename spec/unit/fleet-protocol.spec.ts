/**
 * The fleet's message checks (lib/fleet/protocol.ts): a genuine command passes once; a wrong token,
 * an altered field, another service, a stale or future time, a replayed nonce and malformed payloads
 * are refused; replies verify only with the token and the command's nonce.
 */
import { MAX_SKEW_MS, NonceWindow, signCommand, signReply, verifyCommand, verifyReply } from '../../lib/fleet/protocol';

const TOKEN = 'fleet-secret-0123456789abcdef';
const NOW = Date.UTC(2026, 0, 1);

describe('fleet protocol', () => {
  test('a genuine command passes once; its replay is refused', () => {
    const seen = new NonceWindow();
    const payload = JSON.stringify(signCommand(TOKEN, 'resize', 'orders', { min: 1, max: 5 }, NOW));
    const first = verifyCommand(payload, TOKEN, 'orders', NOW + 10, seen);
    expect(first).toMatchObject({ ok: true, command: { cmd: 'resize', args: { min: 1, max: 5 } } });
    expect(verifyCommand(payload, TOKEN, 'orders', NOW + 20, seen)).toEqual({ ok: false, reason: 'replayed (nonce already seen)' });
  });

  test.each([
    ['a wrong token', (c: Record<string, unknown>) => c, 'not-the-secret-0123456789', /bad signature/],
    ['an altered command', (c: Record<string, unknown>) => ({ ...c, cmd: 'reset' }), TOKEN, /bad signature/],
    ['altered limits', (c: Record<string, unknown>) => ({ ...c, args: { max: 500 } }), TOKEN, /bad signature/],
    ['another reply channel', (c: Record<string, unknown>) => ({ ...c, reply: 'elsewhere' }), TOKEN, /malformed/],
    ['an unknown command', (c: Record<string, unknown>) => ({ ...c, cmd: 'drop' }), TOKEN, /malformed/],
    ['another version', (c: Record<string, unknown>) => ({ ...c, v: 2 }), TOKEN, /version 1/],
  ])('%s is refused', (_label, alter, token, reason) => {
    const command = signCommand(TOKEN, 'renew', 'orders', undefined, NOW) as unknown as Record<string, unknown>;
    const verdict = verifyCommand(JSON.stringify(alter(command)), token, 'orders', NOW, new NonceWindow());
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
  });

  test('stale or future commands are refused; another service\'s is ignored quietly', () => {
    const seen = new NonceWindow();
    const old = JSON.stringify(signCommand(TOKEN, 'renew', 'orders', undefined, NOW - MAX_SKEW_MS - 1));
    expect(verifyCommand(old, TOKEN, 'orders', NOW, seen)).toMatchObject({ ok: false, reason: expect.stringContaining('stale') });
    const future = JSON.stringify(signCommand(TOKEN, 'renew', 'orders', undefined, NOW + MAX_SKEW_MS + 1));
    expect(verifyCommand(future, TOKEN, 'orders', NOW, seen)).toMatchObject({ ok: false, reason: expect.stringContaining('stale') });
    const billing = JSON.stringify(signCommand(TOKEN, 'renew', 'billing', undefined, NOW));
    expect(verifyCommand(billing, TOKEN, 'orders', NOW, seen)).toMatchObject({ ok: false, forOthers: true });
  });

  test.each(['', 'null', '[]', '{"v":1}', '{"v":1,"cmd":"renew","service":"orders","ts":"now","nonce":"x","reply":"y","mac":"z"}', 'not json'])('malformed payload %j is refused', (payload) => {
    expect(verifyCommand(payload, TOKEN, 'orders', NOW, new NonceWindow())).toMatchObject({ ok: false });
  });

  test('replies verify only with the token and the command\'s nonce', () => {
    const command = signCommand(TOKEN, 'renew', 'orders', undefined, NOW);
    const reply = JSON.stringify(signReply(TOKEN, { nonce: command.nonce, instance: 'h:1:ab', ok: true, count: 3, ts: NOW }));
    expect(verifyReply(reply, TOKEN, command.nonce)).toMatchObject({ instance: 'h:1:ab', ok: true, count: 3 });
    expect(verifyReply(reply, 'not-the-secret-0123456789', command.nonce)).toBeUndefined();
    expect(verifyReply(reply, TOKEN, 'f'.repeat(32))).toBeUndefined();
    expect(verifyReply(JSON.stringify({ ...JSON.parse(reply), count: 99 }), TOKEN, command.nonce)).toBeUndefined();
  });

  test('the nonce window stays bounded', () => {
    const seen = new NonceWindow(3);
    for (let i = 0; i < 10; i++) expect(seen.add(`n${i}`, NOW)).toBe(true);
    expect(seen.add('n9', NOW)).toBe(false);
    expect((seen as unknown as { seen: Map<string, number> }).seen.size).toBeLessThanOrEqual(3);
  });
});
