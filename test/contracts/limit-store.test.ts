/**
 * One contract for every LimitStore: memory and Redis (real server at 127.0.0.1:6379, a unique key
 * prefix per run, only our own keys deleted). Redis takes time from the server, so these cases never
 * move a clock: waits are checked against the exact value minus the few ms a test can take.
 * Clock-driven behaviour (refill, expiry, roll-off) is tested on the memory store in test/stores/.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitBucket, LimitStore, ReserveResult } from '../../src/core/ports.js';
import { MemoryLimitStore } from '../../src/stores/memory-limit-store.js';
import { limitRedisOptions, RedisLimitStore } from '../../src/stores/redis-limit-store.js';
import { ResilientLimitStore } from '../../src/stores/resilient-limit-store.js';

/** Slack for real time passing between two calls on a loaded 2-core machine. */
const SLACK_MS = 500;

let seq = 0;
function bucket(p: Partial<LimitBucket> & Pick<LimitBucket, 'kind' | 'algorithm' | 'limit'>): LimitBucket {
  seq++;
  return {
    id: `b${seq}`,
    key: `{t:contract}:b${seq}:${p.algorithm}:k:${randomBytes(4).toString('hex')}`,
    burst: 0,
    windowMs: 60_000,
    shadow: false,
    per: 'key',
    ...p,
  };
}
const rpm = (limit: number, burst = 0) =>
  bucket({ kind: 'requests', algorithm: 'gcra', limit, burst, windowMs: 60_000 });
const tpm = (limit: number) => bucket({ kind: 'tokens', algorithm: 'gcra', limit, windowMs: 60_000 });
const daily = (limit: number, kind: LimitBucket['kind'] = 'requests') =>
  bucket({ kind, algorithm: 'window', limit, windowMs: 86_400_000 });
const inflight = (limit: number) =>
  bucket({ kind: 'concurrent', algorithm: 'lease', limit, windowMs: 300_000 });

let rid = 0;
const reqId = () => `req_${++rid}_${randomBytes(3).toString('hex')}`;

function ok(r: ReserveResult) {
  if (!r.ok) throw new Error(`expected ok, got deny on bucket ${r.bucketIndex} (wait ${r.retryAfterMs})`);
  return r;
}
function denied(r: ReserveResult) {
  if (r.ok) throw new Error('expected deny, got ok');
  return r;
}

function limitStoreContract(
  name: string,
  make: () => Promise<{ store: LimitStore; done: () => Promise<void> }>,
) {
  describe(`LimitStore contract: ${name}`, () => {
    let store: LimitStore;
    let done: () => Promise<void>;
    beforeAll(async () => {
      ({ store, done } = await make());
    });
    afterAll(async () => {
      await store.close();
      await done();
    });
    const reserve = (buckets: LimitBucket[], costs: number[], requestId = reqId()) =>
      store.reserve({ buckets, costs, requestId });

    it('admits N at once from a full allowance, then denies with the exact wait for one refill', async () => {
      const b = rpm(20);
      for (let i = 0; i < 20; i++) ok(await reserve([b], [1]));
      const d = denied(await reserve([b], [1]));
      expect(d.bucketIndex).toBe(0);
      // 20 per minute refills one every 3 s.
      expect(d.retryAfterMs).toBeLessThanOrEqual(3000);
      expect(d.retryAfterMs).toBeGreaterThan(3000 - SLACK_MS);
      expect(d.states[0]).toMatchObject({ id: b.id, kind: 'requests', limit: 20, remaining: 0 });
    });

    it('burst raises the allowance to N + B', async () => {
      const b = rpm(4, 2);
      for (let i = 0; i < 6; i++) ok(await reserve([b], [1]));
      denied(await reserve([b], [1]));
    });

    it('reports remaining and reset after each admission', async () => {
      const b = tpm(1000);
      const r = ok(await reserve([b], [250]));
      expect(r.states[0]!.remaining).toBe(750);
      // 250 tokens of 1000 per minute take 15 s to refill.
      expect(r.states[0]!.resetMs).toBeLessThanOrEqual(15_000);
      expect(r.states[0]!.resetMs).toBeGreaterThan(15_000 - SLACK_MS);
    });

    it('a cost larger than limit + burst can never fit: Infinity, and nothing is charged', async () => {
      const b = tpm(1000);
      const d = denied(await reserve([b], [1001]));
      expect(d.retryAfterMs).toBe(Number.POSITIVE_INFINITY);
      ok(await reserve([b], [1000]));
    });

    it('all or none: when one bucket denies, no bucket is charged', async () => {
      const a = tpm(1000);
      const full = rpm(1);
      ok(await reserve([full], [1]));
      const d = denied(await reserve([a, full], [600, 1]));
      expect(d.bucketIndex).toBe(1);
      const [s] = await store.peek([a]);
      expect(s!.remaining).toBe(1000);
    });

    it('a denial reports every bucket as it stands, not as it would be after the request', async () => {
      const roomy = tpm(1000);
      const full = rpm(1);
      ok(await reserve([roomy, full], [100, 1]));
      const d = denied(await reserve([roomy, full], [100, 1]));
      expect(d.states[0]!.remaining).toBeGreaterThanOrEqual(900);
      expect(d.states[0]!.remaining).toBeLessThan(910);
      expect(d.states[1]!.remaining).toBe(0);
    });

    it('rejected requests cost nothing: repeated denials do not push the wait further', async () => {
      const b = rpm(2);
      ok(await reserve([b], [1]));
      ok(await reserve([b], [1]));
      const first = denied(await reserve([b], [1]));
      for (let i = 0; i < 20; i++) denied(await reserve([b], [1]));
      const last = denied(await reserve([b], [1]));
      expect(last.retryAfterMs).toBeLessThanOrEqual(first.retryAfterMs);
      const [s] = await store.peek([b]);
      expect(s!.remaining).toBe(0);
      expect(s!.resetMs).toBeLessThanOrEqual(60_000);
    });

    it('the bound limit is the one with the longest wait', async () => {
      const fast = rpm(60); // refills every 1 s
      const slow = rpm(1); // refills every 60 s
      ok(await reserve([fast, slow], [60, 1]));
      const d = denied(await reserve([fast, slow], [1, 1]));
      expect(d.bucketIndex).toBe(1);
      expect(d.retryAfterMs).toBeGreaterThan(59_000 - SLACK_MS);
    });

    it('settle refunds the difference: a max_tokens reservation is refunded down to the actual output', async () => {
      const b = tpm(10_000);
      const r = ok(await reserve([b], [8000]));
      expect(r.states[0]!.remaining).toBe(2000);
      await store.settle(r.reservation, [1200]);
      const [s] = await store.peek([b]);
      // 8000 − 1200 = 6800 refunded (the refill in between only adds).
      expect(s!.remaining).toBeGreaterThanOrEqual(8800);
      expect(s!.remaining).toBeLessThan(8800 + 100);
      ok(await reserve([b], [8800]));
    });

    it('settle is idempotent per reservation', async () => {
      const b = tpm(10_000);
      const r = ok(await reserve([b], [5000]));
      await store.settle(r.reservation, [0]);
      const other = ok(await reserve([b], [9000]));
      expect(other.states[0]!.remaining).toBeLessThan(1100);
      await store.settle(r.reservation, [0]);
      await store.settle(r.reservation, [0]);
      const [s] = await store.peek([b]);
      expect(s!.remaining).toBeLessThan(1100);
    });

    it('an overrun is carried as debt that later requests wait out', async () => {
      const b = tpm(6000); // 100 tokens a second
      const r = ok(await reserve([b], [1000]));
      await store.settle(r.reservation, [7000]); // 1000 over the whole allowance
      const d = denied(await reserve([b], [1]));
      // Debt 1000 + 1 token at 100 a second: ~10 s.
      expect(d.retryAfterMs).toBeGreaterThan(10_000 - SLACK_MS);
      expect(d.retryAfterMs).toBeLessThanOrEqual(10_010);
      const [s] = await store.peek([b]);
      expect(s!.remaining).toBe(0);
    });

    it('sliding window: admits the limit over the window, then waits for the oldest usage to leave (never longer than the window)', async () => {
      const b = daily(5);
      for (let i = 0; i < 5; i++) ok(await reserve([b], [1]));
      const d = denied(await reserve([b], [1]));
      expect(d.retryAfterMs).toBeGreaterThan(86_400_000 - SLACK_MS);
      expect(d.retryAfterMs).toBeLessThanOrEqual(86_400_000);
      expect(d.states[0]).toMatchObject({ remaining: 0, limit: 5 });
    });

    it('sliding window: settle refunds into the booked slot and carries overruns', async () => {
      const b = daily(100, 'tokens');
      const r = ok(await reserve([b], [80]));
      await store.settle(r.reservation, [30]);
      expect((await store.peek([b]))[0]!.remaining).toBe(70);
      const r2 = ok(await reserve([b], [10]));
      await store.settle(r2.reservation, [60]);
      expect((await store.peek([b]))[0]!.remaining).toBe(10);
      denied(await reserve([b], [11]));
      await store.settle(r2.reservation, [0]); // already settled: ignored
      expect((await store.peek([b]))[0]!.remaining).toBe(10);
    });

    it('money limits count fractions of a dollar exactly', async () => {
      const b = daily(1, 'usd');
      ok(await reserve([b], [0.3]));
      ok(await reserve([b], [0.3]));
      ok(await reserve([b], [0.4]));
      const d = denied(await reserve([b], [0.000001]));
      expect(d.states[0]!.remaining).toBe(0);
    });

    it('concurrency: leases up to the cap, release frees one, release is idempotent', async () => {
      const b = inflight(2);
      const a = ok(await reserve([b], [1]));
      const c = ok(await reserve([b], [1]));
      expect(c.states[0]!.remaining).toBe(0);
      const d = denied(await reserve([b], [1]));
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(1000);
      await store.release(a.reservation);
      await store.release(a.reservation);
      ok(await reserve([b], [1]));
      denied(await reserve([b], [1]));
      await store.release(c.reservation);
      expect((await store.peek([b]))[0]!.remaining).toBe(1);
    });

    it('concurrency: settle does not free a lease; a denied request takes no lease', async () => {
      const lease = inflight(1);
      const rate = rpm(1);
      const a = ok(await reserve([lease, rate], [1, 1]));
      await store.settle(a.reservation, [1, 1]);
      denied(await reserve([lease], [1]));
      await store.release(a.reservation);
      denied(await reserve([lease, rate], [1, 1])); // the rate binds, so no lease is taken
      expect((await store.peek([lease]))[0]!.remaining).toBe(1);
    });

    it('shadow limits never deny, report what they would have refused, and are not charged for it', async () => {
      const shadow = { ...rpm(1), shadow: true };
      const real = rpm(10);
      const r1 = ok(await reserve([shadow, real], [1, 1]));
      expect(r1.shadowDenied).toEqual([]);
      const r2 = ok(await reserve([shadow, real], [1, 1]));
      expect(r2.shadowDenied).toEqual([shadow.id]);
      expect((await store.peek([real]))[0]!.remaining).toBe(8);
      // Settling a reservation in which the shadow bucket was not charged refunds nothing there.
      await store.settle(r2.reservation, [0, 0]);
      const [s] = await store.peek([shadow]);
      expect(s!.remaining).toBe(0);
    });

    it('peek changes nothing', async () => {
      const b = rpm(3);
      for (let i = 0; i < 5; i++) await store.peek([b]);
      for (let i = 0; i < 3; i++) ok(await reserve([b], [1]));
    });

    it('a reservation survives a JSON round trip (it may cross processes)', async () => {
      const b = tpm(1000);
      const r = ok(await reserve([b], [900]));
      await store.settle(JSON.parse(JSON.stringify(r.reservation)), [100]);
      expect((await store.peek([b]))[0]!.remaining).toBeGreaterThanOrEqual(900);
    });
  });
}

limitStoreContract('memory', async () => ({ store: new MemoryLimitStore(), done: async () => {} }));

limitStoreContract('redis', async () => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  await redis.connect();
  const prefix = `sluice-test:${randomBytes(6).toString('hex')}:`;
  // No deny cache here: the contract is about the store's own answers.
  const store = new RedisLimitStore({ redis, prefix, denyCacheMaxMs: 0 });
  return {
    store,
    done: async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
});

// The store `sluice serve` builds for `limits: { store: redis }`, with production settings: the
// ioredis options of limitRedisOptions(), the default timeouts, the connection check, local fallback.
limitStoreContract('resilient (redis, production settings)', async () => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, ...limitRedisOptions(), lazyConnect: true });
  await redis.connect();
  const prefix = `sluice-test:${randomBytes(6).toString('hex')}:`;
  const store = new ResilientLimitStore({
    remote: new RedisLimitStore({ redis, prefix }),
    isConnected: () => redis.status === 'ready',
  });
  return {
    store,
    done: async () => {
      expect(store.degraded()).toBe(false);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
});
