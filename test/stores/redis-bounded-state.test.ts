/**
 * Issue 21 item 3: Redis state is bounded. After 20,000 requests of each limit shape (requests
 * only, tokens, concurrency, mixed), settled and released the way the gateway does it, the only keys
 * left are bucket states — no per-request record — and every key expires within its window plus the
 * settle window. On a private redis-server (free port), so DBSIZE counts only this test's keys.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_WINDOW_MS } from '../../src/core/limits/buckets.js';
import type { LimitBucket, Reservation } from '../../src/core/ports.js';
import { RedisLimitStore } from '../../src/stores/redis-limit-store.js';
import { freePort, type PrivateRedis, privateRedis } from './limit-redis-server.js';

const REQUESTS = 20_000;
const PRINCIPALS = 20;
const PARALLEL = 64;

let server: PrivateRedis;
let redis: Redis;

beforeAll(async () => {
  server = privateRedis(await freePort());
  await server.start();
  redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
  await redis.connect();
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await server?.kill();
});

type Shape = (p: number) => LimitBucket[];
const B = (
  key: string,
  kind: LimitBucket['kind'],
  algorithm: LimitBucket['algorithm'],
  limit: number,
  windowMs: number,
): LimitBucket => ({ id: key, key, kind, algorithm, limit, burst: 0, windowMs, shadow: false, per: 'key' });

// Generous limits: the point is what is left behind by admitted requests, not denials.
const shapes: Record<string, Shape> = {
  'requests only': (p) => [
    B(`{t:r${p}}:rpm:key:k${p}`, 'requests', 'gcra', 1e9, 60_000),
    B(`{t:r${p}}:rpd:tenant`, 'requests', 'window', 1e9, 86_400_000),
  ],
  tokens: (p) => [
    B(`{t:t${p}}:tpm:key:k${p}`, 'tokens', 'gcra', 1e12, 60_000),
    B(`{t:t${p}}:tpd:tenant`, 'tokens', 'window', 1e12, 86_400_000),
  ],
  concurrency: (p) => [B(`{t:c${p}}:inflight:key:k${p}`, 'concurrent', 'lease', 1e6, 300_000)],
  mixed: (p) => [
    B(`{t:m${p}}:rpm:key:k${p}`, 'requests', 'gcra', 1e9, 60_000),
    B(`{t:m${p}}:tpm:key:k${p}`, 'tokens', 'gcra', 1e12, 60_000),
    B(`{t:m${p}}:usd:tenant`, 'usd', 'window', 1e9, 86_400_000),
    B(`{t:m${p}}:inflight:key:k${p}`, 'concurrent', 'lease', 1e6, 300_000),
  ],
};

const estimate = (b: LimitBucket) => (b.kind === 'tokens' ? 1000 : b.kind === 'usd' ? 0.01 : 1);
const actual = (b: LimitBucket, i: number) =>
  b.kind === 'tokens' ? 100 + (i % 700) : b.kind === 'usd' ? 0.001 * (1 + (i % 9)) : estimate(b);

/** Runs `total` requests (reserve, settle like the gateway, release); every `refundEvery`-th fails and is refunded. */
async function drive(
  store: RedisLimitStore,
  name: string,
  shape: Shape,
  total: number,
  refundEvery = 0,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const buckets = shape(i % PRINCIPALS);
      const r = await store.reserve({
        buckets,
        costs: buckets.map(estimate),
        requestId: `${name.replace(/ /g, '-')}-${i}`,
      });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const failed = refundEvery > 0 && i % refundEvery === 0;
      const res: Reservation = r.reservation;
      await store.settle(
        res,
        buckets.map((b) => (failed ? 0 : actual(b, i))),
      );
      await store.release(res);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

async function keysWithTtl(match: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor = '0';
  do {
    const [c, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = c;
    for (const k of keys) {
      const ttl = await redis.pttl(k);
      if (ttl !== -2) out.set(k, ttl); // -2: expired since the scan (fast GCRA states do)
    }
  } while (cursor !== '0');
  return out;
}

describe('Redis limit state stays bounded', () => {
  for (const [name, shape] of Object.entries(shapes)) {
    it(`${name}: ${REQUESTS} requests leave only bucket states, each with a TTL`, async () => {
      const prefix = `bounded:${name.replace(/ /g, '-')}:`;
      const store = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
      await drive(store, name, shape, REQUESTS);
      const buckets = new Set<string>();
      for (let p = 0; p < PRINCIPALS; p++) for (const b of shape(p)) buckets.add(prefix + b.key);
      // 1. At most one key per distinct bucket is left under this test's prefix (leases released:
      // their sets are gone). Counted by prefix, not DBSIZE: earlier tests' keys expire meanwhile.
      const keys = await keysWithTtl(`${prefix}*`);
      expect(keys.size).toBeLessThanOrEqual(buckets.size);
      // 2. Nothing per request: every key left is one of the buckets, and expires in time.
      const longest = Math.max(...shape(0).map((b) => b.windowMs));
      for (const [k, ttl] of keys) {
        expect(buckets.has(k), k).toBe(true);
        expect(ttl, k).toBeGreaterThanOrEqual(0); // -1 would be a key without a TTL; 0 is expiring now
        expect(ttl, k).toBeLessThanOrEqual(longest + longest / 60 + 1 + SETTLE_WINDOW_MS);
      }
    }, 120_000);
  }

  it('requests only, with failed calls refunded: one claim per refund, expiring within the window', async () => {
    const prefix = 'bounded:refunds:';
    const store = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
    const shape: Shape = (p) => [B(`{t:f${p}}:rpm:key:k${p}`, 'requests', 'gcra', 1e9, 60_000)];
    await drive(store, 'refunds', shape, 2000, 10);
    const keys = await keysWithTtl(`${prefix}*`);
    const claims = [...keys].filter(([k]) => k.includes(':open:'));
    // 200 refunds: each claimed once (a duplicate would find the claim), for at most the 60 s window.
    expect(claims.length).toBe(200);
    for (const [k, ttl] of claims) {
      expect(ttl, k).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(60_000);
    }
    expect(keys.size - claims.length).toBeLessThanOrEqual(PRINCIPALS);
  }, 60_000);

  it('a duplicate refund of a requests-only reservation is ignored, even from a copy of it', async () => {
    const prefix = 'bounded:dup:';
    const store = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
    const rpm = B('{t:d}:rpm:key:k', 'requests', 'gcra', 3, 60_000);
    const r = await store.reserve({ buckets: [rpm], costs: [1], requestId: 'd1' });
    if (!r.ok) throw new Error('expected admission');
    const copy = JSON.parse(JSON.stringify(r.reservation)) as Reservation;
    await store.settle(r.reservation, [0]); // refunded: 3 left
    await store.reserve({ buckets: [rpm], costs: [1], requestId: 'd2' }); // 2 left
    await store.settle(copy, [0]); // duplicate (another process may hold the copy): ignored
    await store.settle(r.reservation, [0]);
    expect((await store.peek([rpm]))[0]!.remaining).toBe(2);
  });

  it('a usage-settled reservation whose settle changes nothing still removes its record', async () => {
    const prefix = 'bounded:same:';
    const store = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
    const tpm = B('{t:s}:tpm:key:k', 'tokens', 'gcra', 1000, 60_000);
    const r = await store.reserve({ buckets: [tpm], costs: [100], requestId: 's1' });
    if (!r.ok) throw new Error('expected admission');
    expect(await redis.exists(`${prefix}{t:s}:open:s1`)).toBe(1);
    await store.settle(r.reservation, [100]);
    expect(await redis.exists(`${prefix}{t:s}:open:s1`)).toBe(0);
  });
});
