/**
 * Issue 18, Redis Cluster: on a real cluster of 3 masters (one replica each) started here, three
 * store objects with their own cluster connections (as three instances would have) are given 600
 * concurrent requests against a key limit of 50 plus tenant, IP and global limits — buckets in
 * different hash slots — and admit exactly what the tightest limit allows, ten runs in a row.
 * A manual failover of the master serving the key's slot mid-run gives no over-admission; calls
 * in flight may fail (the resilient store then applies onStoreFailure: the documented degraded mode).
 */
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitBucket } from '../../src/core/ports.js';
import { ClusterLimitStore, groupsOf } from '../../src/stores/redis/cluster-limit-store.js';
import { limitClusterOptions } from '../../src/stores/redis-limit-store.js';
import { type PrivateCluster, startCluster } from './redis-cluster.js';

const HOUR = 3_600_000;
let cluster: PrivateCluster;
const clients: Cluster[] = [];
let stores: ClusterLimitStore[] = [];

beforeAll(async () => {
  cluster = await startCluster(1);
  for (let i = 0; i < 3; i++) {
    const c = new Cluster(cluster.nodes, limitClusterOptions());
    c.on('error', () => {});
    clients.push(c);
    await new Promise((r) => c.once('ready', r));
    stores.push(new ClusterLimitStore({ redis: c, denyCacheMaxMs: 0 }));
  }
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  stores = [];
  await cluster?.stop();
});

const gcra = (key: string, limit: number, per: string): LimitBucket => ({
  id: `${per}-${limit}`,
  key,
  kind: 'requests',
  algorithm: 'gcra',
  // Per hour: nothing refills while a run lasts, so "exactly" is exact.
  limit,
  burst: 0,
  windowMs: HOUR,
  shadow: false,
  per,
});

function shape(run: string, limits: { key: number; tenant: number; ip: number; global: number }) {
  return [
    gcra(`{t:acme-${run}}:rpk:gcra:k:key1`, limits.key, 'key'),
    gcra(`{t:acme-${run}}:rpt:gcra:t`, limits.tenant, 'tenant'),
    gcra(`{i:10.0.0.1-${run}}:rpi:gcra`, limits.ip, 'ip'),
    gcra(`{g}:rpg-${run}:gcra`, limits.global, 'global'),
  ];
}

/** 600 concurrent reserves spread over the three stores; counts admitted, denied and thrown. */
async function burst(buckets: LimitBucket[], run: string, during?: () => Promise<void>) {
  let admitted = 0;
  let denied = 0;
  let failed = 0;
  const calls = Array.from({ length: 600 }, async (_, i) => {
    try {
      const r = await stores[i % 3]!.reserve({
        buckets,
        costs: buckets.map(() => 1),
        requestId: `${run}-${i}`,
      });
      if (r.ok) admitted++;
      else denied++;
    } catch {
      failed++;
    }
  });
  if (during) await during();
  await Promise.all(calls);
  return { admitted, denied, failed };
}

describe('ClusterLimitStore on a real 3-master cluster', () => {
  it('the key, tenant, IP and global buckets really span several hash slots', async () => {
    const b = shape('probe', { key: 1, tenant: 1, ip: 1, global: 1 });
    expect(groupsOf(b)).toEqual([[0, 1], [3], [2]]);
    const slots = new Set<number>();
    for (const x of b) slots.add(Number(await clients[0]!.call('CLUSTER', 'KEYSLOT', x.key)));
    expect(slots.size).toBe(3);
  });

  it('600 concurrent requests on three instances admit exactly the key limit of 50, ten runs in a row', async () => {
    for (let r = 0; r < 10; r++) {
      const run = `k${r}-${randomBytes(3).toString('hex')}`;
      const res = await burst(shape(run, { key: 50, tenant: 500, ip: 400, global: 5000 }), run);
      expect(res).toEqual({ admitted: 50, denied: 550, failed: 0 });
    }
  }, 120_000);

  it('when a bucket in another slot is the tightest, exactly that many are admitted and the rest cost nothing', async () => {
    for (let r = 0; r < 3; r++) {
      const run = `i${r}-${randomBytes(3).toString('hex')}`;
      const b = shape(run, { key: 50, tenant: 500, ip: 30, global: 5000 });
      const res = await burst(b, run);
      expect(res).toEqual({ admitted: 30, denied: 570, failed: 0 });
      // Compensation refunded the key and tenant buckets for every request the IP limit refused.
      const [key, tenant, ip, global] = await stores[0]!.peek(b);
      expect(key!.remaining).toBe(20);
      expect(tenant!.remaining).toBe(470);
      expect(ip!.remaining).toBe(0);
      expect(global!.remaining).toBe(4970);
    }
  }, 60_000);

  it('a failover of the master serving the key slot mid-run: no over-admission, errors only as store failures', async () => {
    const run = `f-${randomBytes(3).toString('hex')}`;
    const b = shape(run, { key: 50, tenant: 500, ip: 400, global: 5000 });
    // 1. Thirty callers keep sending (over the three stores) until the failover is over, then 200 more.
    const res = { admitted: 0, denied: 0, failed: 0 };
    let over = false;
    let after = 0;
    let seq = 0;
    const worker = async (w: number) => {
      while (!over || after < 200) {
        if (over) after++;
        try {
          const r = await stores[w % 3]!.reserve({
            buckets: b,
            costs: [1, 1, 1, 1],
            requestId: `${run}-${seq++}`,
          });
          if (r.ok) res.admitted++;
          else res.denied++;
        } catch {
          res.failed++;
          await new Promise((r) => setTimeout(r, 10)); // a client backing off
        }
      }
    };
    const workers = Array.from({ length: 30 }, (_, w) => worker(w));
    // 2. Fail over once some requests have gone through.
    while (res.admitted + res.denied < 100) await new Promise((r) => setTimeout(r, 5));
    await cluster.failover(b[0]!.key);
    over = true;
    await Promise.all(workers);
    console.log(`failover run: ${JSON.stringify(res)}`);
    // 3. Never more than the limit, before, during or after.
    expect(res.admitted).toBeLessThanOrEqual(50);
    expect(res.denied).toBeGreaterThan(200);
    // After the failover the cluster serves the same state from the promoted replica.
    let afterFailover: Awaited<ReturnType<ClusterLimitStore['reserve']>> | undefined;
    for (let i = 0; i < 100 && !afterFailover; i++) {
      afterFailover = await stores[1]!
        .reserve({ buckets: b, costs: [1, 1, 1, 1], requestId: `${run}-after-${i}` })
        .catch(() => undefined);
      if (!afterFailover) await new Promise((r) => setTimeout(r, 50));
    }
    expect(afterFailover).toBeDefined();
    const [key] = await stores[2]!.peek(b);
    // Whatever was admitted before, during and after the failover is still counted.
    expect(50 - key!.remaining).toBe(res.admitted + (afterFailover?.ok ? 1 : 0));
  }, 120_000);
});
