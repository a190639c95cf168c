import { MemoryLimitStore } from '../src/stores/memory-limit-store.js';
const HUGE = 1e9;
const base = { burst: 0, shadow: false, per: 'key' };
const buckets = Array.from({ length: 1000 }, (_, k) => [
    { ...base, id: 'rpm', key: `{t:bench}:rpm:g:k:${k}`, kind: 'requests', algorithm: 'gcra', limit: HUGE, windowMs: 60_000 },
    { ...base, id: 'tpm', key: `{t:bench}:tpm:g:k:${k}`, kind: 'tokens', algorithm: 'gcra', limit: HUGE, windowMs: 60_000 },
    { ...base, id: 'daily', key: `{t:bench}:daily:w:k:${k}`, kind: 'usd', algorithm: 'window', limit: 1_000_000, windowMs: 86_400_000 },
    { ...base, id: 'inflight', key: `{t:bench}:inflight:l:k:${k}`, kind: 'concurrent', algorithm: 'lease', limit: 100, windowMs: 360_000 },
] as any);
const s = new MemoryLimitStore();
const costs = [1, 500, 0.0012, 1];
const t0 = performance.now();
for (let i = 0; i < 200000; i++) {
  const r = s.reserveNow({ buckets: buckets[i % 1000], costs, requestId: 'q' + i });
  if (!r.ok) throw new Error('deny');
  await s.release(r.reservation);
}
console.log((200000 / (performance.now() - t0)) * 1000);
