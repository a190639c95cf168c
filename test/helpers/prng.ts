/** A small deterministic PRNG (mulberry32) for property tests: a failure replays from its seed. */
export { mulberry32 as prng } from '../../src/core/prng.js';
