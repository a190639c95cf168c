/**
 * RedisLimitStore beyond the shared contract: the Lua script agrees decision for decision with the
 * memory store (same server time), the script is reloaded after a restart, the local deny cache saves
 * round trips, and every key it writes expires.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_WINDOW_MS } from '../../src/core/limits/buckets.js';
import type { LimitBucket, Reservation, ReserveResult } from '../../src/core/ports.js';
import { MemoryLimitStore } from '../../src/stores/memory-limit-store.js';
import { limitRedisOptions, RedisLimitStore } from '../../src/stores/redis-limit-store.js';
import { freePort, privateRedis } from './limit-redis-server.js';

const prefix = `sluice-test:${randomBytes(6).toString('hex')}:`;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  await redis.connect();
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

let n = 0;
function b(p: Partial<LimitBucket> & Pick<LimitBucket, 'kind' | 'algorithm' | 'limit'>): LimitBucket {
  n++;
  return {
    id: `b${n}`,
    key: `{t:redis}:b${n}:${p.algorithm}:k:x`,
    burst: 0,
    windowMs: 60_000,
    shadow: false,
    per: 'key',
    ...p,
  };
}

describe('RedisLimitStore', () => {
  it('decides exactly as the memory store would at the same instant (differential, server time)', async () => {
    const bucketArb = (i: number) =>
      fc.oneof(
        fc
          .record({
            limit: fc.integer({ min: 1, max: 40 }),
            burst: fc.integer({ min: 0, max: 10 }),
            windowMs: fc.integer({ min: 1000, max: 600_000 }),
            shadow: fc.boolean(),
          })
          .map(
            (r): LimitBucket => ({
              id: `r${i}`,
              key: `r${i}`,
              kind: 'tokens',
              algorithm: 'gcra',
              per: 'key',
              ...r,
            }),
          ),
        fc
          .record({
            limit: fc.integer({ min: 1, max: 30 }),
            windowMs: fc.integer({ min: 3_600_000, max: 30 * 86_400_000 }),
            shadow: fc.boolean(),
          })
          .map(
            (r): LimitBucket => ({
              id: `w${i}`,
              key: `w${i}`,
              kind: 'usd',
              algorithm: 'window',
              burst: 0,
              per: 'key',
              ...r,
            }),
          ),
        fc.record({ limit: fc.integer({ min: 1, max: 3 }) }).map(
          (r): LimitBucket => ({
            id: `l${i}`,
            key: `l${i}`,
            kind: 'concurrent',
            algorithm: 'lease',
            burst: 0,
            shadow: false,
            per: 'key',
            windowMs: 60_000,
            ...r,
          }),
        ),
      );
    const op = fc.oneof(
      fc.record({
        t: fc.constant('reserve' as const),
        costs: fc.array(fc.integer({ min: 0, max: 45 }), { minLength: 3, maxLength: 3 }),
      }),
      fc.record({
        t: fc.constant('settle' as const),
        which: fc.nat(),
        actual: fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 3, maxLength: 3 }),
      }),
      fc.record({ t: fc.constant('release' as const), which: fc.nat() }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 3 })
          .chain((k) => fc.tuple(...Array.from({ length: k }, (_, i) => bucketArb(i)))),
        fc.array(op, { maxLength: 25 }),
        async (shape, ops) => {
          run++;
          const buckets = shape.map((x) => ({ ...x, key: `{t:diff${run}}:${x.key}` }));
          let now = 0;
          const memory = new MemoryLimitStore({ clock: { now: () => now } });
          const remote = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
          const held: { r: Reservation; m: Reservation }[] = [];
          let rid = 0;
          // Usd limits get cent-sized costs: fractions must agree too.
          const money = (i: number, x: number) => (buckets[i]!.kind === 'usd' ? x / 100 : x);
          for (const o of ops) {
            if (o.t === 'reserve') {
              const costs = buckets.map((_, i) => money(i, o.costs[i]!));
              const id = `d${run}_${++rid}`;
              const r = await remote.reserve({ buckets, costs, requestId: id });
              now = remote.lastServerTime();
              const m = await memory.reserve({ buckets, costs, requestId: id });
              expect(summary(r)).toEqual(summary(m));
              if (r.ok && m.ok) held.push({ r: r.reservation, m: m.reservation });
            } else if (held.length > 0) {
              const h = held[o.which % held.length]!;
              if (o.t === 'settle') {
                const actual = buckets.map((_, i) => money(i, o.actual[i]!));
                await remote.settle(h.r, actual);
                if (remote.lastServerTime() > 0) now = remote.lastServerTime();
                await memory.settle(h.m, actual);
              } else {
                await remote.release(h.r);
                if (remote.lastServerTime() > 0) now = remote.lastServerTime();
                await memory.release(h.m);
              }
            }
            const rs = await remote.peek(buckets);
            now = remote.lastServerTime();
            expect(rs).toEqual(await memory.peek(buckets));
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it('three instances sharing one Redis admit exactly 50 of 600 concurrent requests on a 50-per-minute limit', async () => {
    const clients = [0, 1, 2].map(() => new Redis({ host: '127.0.0.1', port: 6379 }));
    try {
      const stores = clients.map((c) => new RedisLimitStore({ redis: c, prefix }));
      const rpm = b({ kind: 'requests', algorithm: 'gcra', limit: 50 });
      const results = await Promise.all(
        Array.from({ length: 600 }, (_, i) =>
          stores[i % 3]!.reserve({ buckets: [rpm], costs: [1], requestId: `m${i}` }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(50);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  it('remembers a denied bucket locally: repeated denials cost no Redis call', async () => {
    let local = 1_000_000;
    const store = new RedisLimitStore({ redis, prefix, clock: { now: () => local } });
    const rpm = b({ kind: 'requests', algorithm: 'gcra', limit: 1 });
    const tokens = b({ kind: 'tokens', algorithm: 'gcra', limit: 100 });
    expect((await store.reserve({ buckets: [rpm, tokens], costs: [1, 10], requestId: 'c1' })).ok).toBe(true);
    const first = await store.reserve({ buckets: [rpm, tokens], costs: [1, 10], requestId: 'c2' });
    expect(first.ok).toBe(false);
    const calls = store.stats().calls;
    for (let i = 0; i < 50; i++) {
      const r = await store.reserve({ buckets: [rpm, tokens], costs: [1, 10], requestId: `c${i + 3}` });
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.bucketIndex).toBe(0);
        expect(r.states[1]!.remaining).toBe(90);
      }
    }
    expect(store.stats().calls).toBe(calls);
    expect(store.stats().cachedDenials).toBe(50);
    // Past the wait Redis said, the next request asks Redis again.
    local += 60_001;
    await store.reserve({ buckets: [rpm, tokens], costs: [1, 10], requestId: 'c99' });
    expect(store.stats().calls).toBe(calls + 1);
  });

  it('a cached denial binds only requests at least as large, and a local refund drops it', async () => {
    const store = new RedisLimitStore({ redis, prefix });
    const tpm = b({ kind: 'tokens', algorithm: 'gcra', limit: 1000 });
    const big = await store.reserve({ buckets: [tpm], costs: [900], requestId: 'e1' });
    expect(big.ok).toBe(true);
    expect((await store.reserve({ buckets: [tpm], costs: [500], requestId: 'e2' })).ok).toBe(false);
    const calls = store.stats().calls;
    expect((await store.reserve({ buckets: [tpm], costs: [50], requestId: 'e3' })).ok).toBe(true);
    expect(store.stats().calls).toBe(calls + 1);
    if (big.ok) await store.settle(big.reservation, [100]);
    expect((await store.reserve({ buckets: [tpm], costs: [500], requestId: 'e4' })).ok).toBe(true);
  });

  it('every key it writes expires: GCRA when full again, windows after the window, leases after the TTL', async () => {
    const store = new RedisLimitStore({ redis, prefix });
    const g = b({ kind: 'tokens', algorithm: 'gcra', limit: 600, windowMs: 60_000 });
    const w = b({ kind: 'requests', algorithm: 'window', limit: 5, windowMs: 86_400_000 });
    const l = b({ kind: 'concurrent', algorithm: 'lease', limit: 2, windowMs: 30_000 });
    const r = await store.reserve({ buckets: [g, w, l], costs: [60, 1, 1], requestId: 'x1' });
    expect(r.ok).toBe(true);
    const ttl = async (bk: LimitBucket) => redis.pttl(prefix + bk.key);
    const tg = await ttl(g);
    expect(tg).toBeGreaterThan(5000); // 60 tokens at 10 a second: ~6 s
    expect(tg).toBeLessThanOrEqual(6001);
    const tw = await ttl(w);
    expect(tw).toBeGreaterThan(86_400_000);
    expect(tw).toBeLessThanOrEqual(86_400_000 + 86_400_000 / 60 + 1);
    const tl = await ttl(l);
    expect(tl).toBeGreaterThan(29_000);
    expect(tl).toBeLessThanOrEqual(30_001);
    // The open-reservation record lives until the settle (at most SETTLE_WINDOW_MS).
    const record = `${prefix}{t:redis}:open:x1`;
    expect(await redis.pttl(record)).toBeGreaterThan(SETTLE_WINDOW_MS - 60_000);
    expect(await redis.pttl(record)).toBeLessThanOrEqual(SETTLE_WINDOW_MS);
    if (r.ok) await store.settle(r.reservation, [0, 1, 1]);
    expect(await redis.exists(prefix + g.key)).toBe(0); // refunded to full: nothing left to keep
    expect(await redis.exists(record)).toBe(0);
  });

  it('calls made in one event-loop turn leave in one socket write (limitRedisOptions auto-pipelining)', async () => {
    const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, ...limitRedisOptions() });
    await client.connect();
    try {
      const store = new RedisLimitStore({ redis: client, prefix, denyCacheMaxMs: 0 });
      const buckets = Array.from({ length: 20 }, () => b({ kind: 'requests', algorithm: 'gcra', limit: 3 }));
      // 1. One call first, so the script is cached on the server (no NOSCRIPT retry below).
      await store.reserve({ buckets: [buckets[0]!], costs: [1], requestId: 'warm' });
      // 2. Twenty reserves started in one turn: counted at the socket.
      const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
      const write = stream.write.bind(stream);
      let writes = 0;
      stream.write = (...a: unknown[]) => {
        writes++;
        return write(...a);
      };
      const results = await Promise.all(
        buckets.map((bk, i) => store.reserve({ buckets: [bk], costs: [1], requestId: `p${i}` })),
      );
      stream.write = write;
      expect(writes).toBe(1);
      // 3. Each call still got its own answer.
      expect(results.map((r) => r.ok && r.states[0]!.remaining)).toEqual([1, ...Array(19).fill(2)]);
    } finally {
      client.disconnect();
    }
  });

  it('reloads the script after a Redis restart (NOSCRIPT), on a private server', async () => {
    const server = privateRedis(await freePort());
    await server.start();
    const client = new Redis({ host: '127.0.0.1', port: server.port, ...limitRedisOptions() });
    client.on('error', () => {}); // the restart below refuses connections for a moment
    try {
      await new Promise((r) => client.once('ready', r));
      const store = new RedisLimitStore({ redis: client, prefix: 'p:' });
      const rpm = b({ kind: 'requests', algorithm: 'gcra', limit: 5 });
      expect((await store.reserve({ buckets: [rpm], costs: [1], requestId: 'n1' })).ok).toBe(true);
      expect(store.stats().scriptLoads).toBe(1); // first use: not cached yet
      expect((await store.reserve({ buckets: [rpm], costs: [1], requestId: 'n2' })).ok).toBe(true);
      expect(store.stats().scriptLoads).toBe(1);
      await server.kill();
      await server.start();
      for (let i = 0; i < 100 && client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
      const after = await store.reserve({ buckets: [rpm], costs: [1], requestId: 'n3' });
      expect(after.ok).toBe(true);
      expect(store.stats().scriptLoads).toBe(2);
      // An empty server after the restart: the bucket starts full again.
      if (after.ok) expect(after.states[0]!.remaining).toBe(4);
    } finally {
      client.disconnect();
      await server.kill();
    }
  });
});

function summary(r: ReserveResult): unknown {
  return r.ok
    ? { ok: true, states: r.states, shadowDenied: r.shadowDenied }
    : { ok: false, bucketIndex: r.bucketIndex, retryAfterMs: r.retryAfterMs, states: r.states };
}
