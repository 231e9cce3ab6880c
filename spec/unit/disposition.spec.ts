/**
 * The one disposition function (lib/pool/disposition.ts), as a table: for each moment the pool
 * decides (release, after its own check passed or failed, on arrival) and each combination of the
 * record's marks and the pool's state, where the record goes. And the close-reason-to-counter
 * table that destroy() applies to every closure.
 */
import { CLOSE_COUNTER, disposition, type Disposition, type DispositionInput, type DispositionPoint } from '../../lib/pool/disposition';
import type { CloseReason } from '../../lib/pool/entry';
import { checkedFakePools } from '../helpers/invariants';
import type { FakeConn } from '../helpers/fake-connector';

const fakePool = checkedFakePools();

const clean: DispositionInput = { broken: undefined, retire: false, retireReason: 'retired', generation: 1 };
const dead: DispositionInput = { ...clean, broken: new Error('socket closed') };
const expired: DispositionInput = { ...clean, retire: true, retireReason: 'expired' };
const renewed: DispositionInput = { ...clean, retire: true, retireReason: 'renewed' };
const stale: DispositionInput = { ...clean, generation: 0 };
const deadAndRetired: DispositionInput = { ...expired, broken: new Error('gone') };

const close = (reason: CloseReason): Disposition => ({ kind: 'close', reason });
const ROLLBACK: Disposition = { kind: 'rollback' };
const RETURN: Disposition = { kind: 'return' };

// point, record, pool open, in transaction, expected
const TABLE: Array<[DispositionPoint, string, DispositionInput, boolean, boolean, Disposition]> = [
  ['release', 'clean', clean, true, false, RETURN],
  ['release', 'clean, inside a transaction', clean, true, true, ROLLBACK],
  ['release', 'dead', dead, true, false, close('broken')],
  ['release', 'dead, inside a transaction', dead, true, true, close('broken')],
  ['release', 'clean, pool closing', clean, false, false, close('poolClosed')],
  ['release', 'inside a transaction, pool closing', clean, false, true, close('poolClosed')],
  ['release', 'dead, pool closing', dead, false, false, close('broken')],
  ['release', 'retired (expired)', expired, true, false, close('expired')],
  ['release', 'retired (renewed), inside a transaction', renewed, true, true, close('renewed')],
  ['release', 'dead and retired', deadAndRetired, true, false, close('broken')],
  ['release', 'opened before a reset', stale, true, false, close('reset')],
  ['checked', 'clean', clean, true, false, RETURN],
  ['checked', 'dead meanwhile', dead, true, false, close('validation')],
  ['checked', 'pool closing meanwhile', clean, false, false, close('poolClosed')],
  ['checked', 'retired meanwhile', renewed, true, false, close('renewed')],
  ['checked', 'opened before a reset', stale, true, false, close('reset')],
  ['checked', 'transaction flag ignored after the check', clean, true, true, RETURN],
  ['checkFailed', 'clean', clean, true, false, close('validation')],
  ['checkFailed', 'pool closing', clean, false, false, close('validation')],
  ['checkFailed', 'retired', expired, true, false, close('validation')],
  ['opened', 'clean', clean, true, false, RETURN],
  ['opened', 'reported dead before arrival', dead, true, false, close('broken')],
  ['opened', 'pool closing', clean, false, false, close('poolClosed')],
  ['opened', 'opened before a reset', stale, true, false, close('reset')],
];

describe('disposition', () => {
  test.each(TABLE)('%s, %s (pool open: %s, in transaction: %s)', (point, _label, entry, poolOpen, inTransaction, expected) => {
    expect(disposition(point, entry, poolOpen, 1, inTransaction)).toEqual(expected);
  });

  test('allocates nothing: the same decision is the same object', () => {
    expect(disposition('release', clean, true, 1, false)).toBe(disposition('opened', clean, true, 1, false));
    expect(disposition('release', dead, true, 1, false)).toBe(disposition('opened', dead, true, 1, false));
  });
});

describe('close reason → counter', () => {
  test.each([
    ['broken', 'validationFailures'],
    ['validation', 'validationFailures'],
    ['expired', 'expired'],
    ['idle', 'idleClosed'],
    ['renewed', 'renewed'],
    ['retired', undefined],
    ['reset', undefined],
    ['poolClosed', undefined],
    ['createAbandoned', undefined],
    ['disposed', 'validationFailures'],
  ] as Array<[CloseReason, string | undefined]>)('%s counts in %s', (reason, counter) => {
    expect(CLOSE_COUNTER[reason]).toBe(counter);
  });

  test('a dead connection counts as a validation failure wherever it is found: on arrival too', async () => {
    const { pool, connector, clock } = fakePool({ pool: { min: 0, max: 2 } });
    connector.defaultOutcome = 'slow';
    const caller = pool.acquire();
    await clock.flush();
    const [gate] = connector.waitingGates();
    // The driver reports the connection dead while the pool is taking it in.
    const watch = jest.spyOn(connector, 'watch').mockImplementationOnce((_raw: FakeConn, onBroken) => onBroken(new Error('terminated')));
    gate?.release();
    connector.defaultOutcome = 'ok';
    await clock.flush();
    expect(watch).toHaveBeenCalledTimes(2); // the dead one, then its replacement for the caller
    expect(pool.stats().counters).toMatchObject({ created: 2, destroyed: 1, validationFailures: 1 });
    pool.release(await caller);
  });
});
