/**
 * Read-your-writes: after a write, reads from the same async context go to the primary for
 * `readYourWritesMs`, so a caller never reads from a replica that has not replayed its own write.
 *
 * The context is an AsyncLocalStorage store entered synchronously by the call that writes, so it
 * covers the rest of the caller's async function and everything it awaits afterwards (for an HTTP
 * server: the rest of that request). Work started elsewhere does not see it — see docs/routing.md.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../pool/clock';

interface WriteMark {
  lastWriteMono: number;
}

/** The async-context store of write marks; one per manager, shared by all of its pools (see `ReadYourWrites`). */
export type WriteMarks = AsyncLocalStorage<WriteMark>;

/** A store of write marks for a manager. */
export function createWriteMarks(): WriteMarks {
  return new AsyncLocalStorage<WriteMark>();
}

export class ReadYourWrites {
  /**
   * @param storage shared by every pool of a manager, so one `withReadYourWrites()` scope covers
   *   them all: a write on any pool's primary sends the scope's reads to the primary of whichever
   *   pool, each for its own `windowMs` (cautious across databases, never stale).
   */
  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly storage: WriteMarks = createWriteMarks(),
  ) {}

  /** Records a write in the caller's async context. Must be called synchronously by the caller's call. */
  noteWrite(): void {
    if (this.windowMs <= 0) return;
    const now = this.clock.now();
    const mark = this.storage.getStore();
    if (mark) mark.lastWriteMono = now;
    else this.storage.enterWith({ lastWriteMono: now });
  }

  /**
   * Runs `fn` in a context of its own: a write anywhere inside it (however deep, before or after
   * any `await`) is seen by every read inside it. Typically one per request.
   */
  run<T>(fn: () => T): T {
    return this.storage.run({ lastWriteMono: Number.NEGATIVE_INFINITY }, fn);
  }

  /** True when the caller's context wrote within the window, so its reads must see the primary. */
  mustReadPrimary(): boolean {
    if (this.windowMs <= 0) return false;
    const mark = this.storage.getStore();
    return mark !== undefined && this.clock.now() - mark.lastWriteMono < this.windowMs;
  }
}
