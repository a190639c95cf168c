#!/usr/bin/env node
/**
 * Memory per tracked key of the memory limit store (issue 18): N distinct keys, each with one
 * per-key rate limit (GCRA, the common shape), one admitted request each; then heap + external
 * memory after a full GC, divided by N. Needs `node --expose-gc` and a build (`node scripts/build.mjs`).
 *
 *   node --expose-gc bench/scale-memory.mjs [--keys 1000000] [--shape gcra|window]
 *
 * Prints one JSON line: { shape, keys, bytesPerKey, heapMB }. The key strings themselves are
 * counted (the store holds them): about 150 B of the total is the Map entry and a 33-character key.
 */
import { MemoryLimitStore } from '../dist/stores/memory-limit-store.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const N = Number(arg('keys', '1000000'));
const shape = arg('shape', 'gcra');
const t = 1_700_000_000_000;
const store = new MemoryLimitStore({ clock: { now: () => t }, maxKeys: N + 10 });
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external; // external includes the typed arrays' buffers
};
gc();
const before = used();
for (let i = 0; i < N; i++) {
  const id = i.toString(36).padStart(8, '0');
  const bucket =
    shape === 'window'
      ? {
          id: 'rpd',
          key: `{t:tenant${i % 1000}}:rpd:key:k_${id}`,
          kind: 'requests',
          algorithm: 'window',
          limit: 1000,
          burst: 0,
          windowMs: 86_400_000,
          shadow: false,
          per: 'key',
        }
      : {
          id: 'rpm',
          key: `{t:tenant${i % 1000}}:rpm:key:k_${id}`,
          kind: 'requests',
          algorithm: 'gcra',
          limit: 60,
          burst: 0,
          windowMs: 60_000,
          shadow: false,
          per: 'key',
        };
  const r = store.reserveNow({ buckets: [bucket], costs: [1], requestId: `r${i}` });
  if (!r.ok) throw new Error(`request ${i} denied`);
}
gc();
const after = used();
if (store.size() !== N) throw new Error(`expected ${N} keys, store holds ${store.size()}`);
console.log(
  JSON.stringify({
    shape,
    keys: N,
    bytesPerKey: Math.round((after - before) / N),
    heapMB: Math.round(after / 1e6),
  }),
);
