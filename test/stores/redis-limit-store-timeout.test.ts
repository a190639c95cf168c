import { describe, expect, it } from 'vitest';
import { LimitCallTimeoutError, withTimeout } from '../../src/stores/redis-limit-store.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

describe('withTimeout', () => {
  it('rejects a store call that is really slow', async () => {
    const never = new Promise<number>(() => {});
    await expect(withTimeout(never, 20)).rejects.toBeInstanceOf(LimitCallTimeoutError);
  });

  it('regression: event-loop lag is not blamed on the store (no degraded mode while Redis answers)', async () => {
    // The reply is ready right after the loop unblocks; the timer fires late because this process was busy.
    const reply = new Promise<number>((resolve) => setImmediate(() => resolve(42)));
    const p = withTimeout(reply, 20);
    busy(80);
    await expect(p).resolves.toBe(42);
  });
});
