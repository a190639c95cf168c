/**
 * Fuzz settings: a fixed seed (FUZZ_SEED, default 42) so a failure replays, and a size (FUZZ_RUNS,
 * default 150 per property) small enough for CI. A long run: `FUZZ_RUNS=5000 npx vitest run test/fuzz`.
 */
import type { Parameters } from 'fast-check';

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 42);
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);

/** fast-check parameters for one property; `share` scales the run count for costlier properties. */
export function fuzzParams(share = 1): Parameters<unknown> {
  return {
    seed: FUZZ_SEED,
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * share)),
    endOnFailure: true,
    // One request per run: long shrinking against a live process is slow, a few steps suffice.
    interruptAfterTimeLimit: Math.max(60_000, FUZZ_RUNS * 200),
    markInterruptAsFailure: false,
  };
}

/** Per-test time budget that grows with the run count. */
export function fuzzTimeout(share = 1): number {
  return 30_000 + FUZZ_RUNS * share * 150;
}
