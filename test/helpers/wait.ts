/**
 * Waiting in tests without sleeping on a guess: `waitFor` polls one exact condition and returns as
 * soon as it holds (failing with a clear message at the bound); `paceLoad` is for the other case,
 * keeping traffic flowing for a while during a fault, and says so at the call site.
 */

export interface WaitOptions {
  /** Give up after this long (ms); the poll then throws, naming `what`. */
  timeoutMs?: number;
  /** Pause between two checks (ms). */
  intervalMs?: number;
  /** What is awaited, for the failure message. */
  what?: string;
}

/**
 * Polls `cond` until it returns a truthy value and returns that value. Throws
 * `timed out after N ms waiting for <what>` (with the last value seen) when it never does.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20, what = 'the condition' }: WaitOptions = {},
): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last value: ${String(v)})`);
    await new Promise<void>((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Keeps the load already running for `ms` more: pacing traffic through a phase of a fault test (a
 * dependency down, a lock held), not waiting for any state. Never use it to wait for something.
 */
export const paceLoad = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
