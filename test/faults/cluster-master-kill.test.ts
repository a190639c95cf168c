/**
 * Issue 18 (c): `sluice serve` on a real 3-master Redis Cluster (no replicas) under load; the master
 * serving the key's slot is killed. No 5xx (each limit's onStoreFailure is `local`: served from the
 * local share), `/readyz` and `sluice_degraded{component="limits"}` show the degraded state; the master
 * comes back on its port and the instance returns to shared limits without a restart (its bucket is
 * in Redis again). Run `node scripts/build.mjs` first.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { type PrivateCluster, startCluster } from '../stores/redis-cluster.js';

let cluster: PrivateCluster;
let s: SluiceProcess;
let dir: string;

beforeAll(async () => {
  cluster = await startCluster(0);
  dir = tempDir('sluice-cluster-kill-');
  const urls = cluster.ports.map((p) => `"redis://127.0.0.1:${p}"`).join(', ');
  const config = writeConfig(
    dir,
    `log: { level: warn }
limits: { store: redis, urls: [${urls}], onStoreFailure: local }
upstreams: [{ name: local, kind: mock, replyWords: 3 }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: per-key, requests: 100000, window: 1m }
`,
  );
  s = await startSluice({ config, dataDir: dir });
}, 120_000);

afterAll(async () => {
  await s?.stop();
  await cluster?.stop();
});

const chat = async (key: string) => {
  const r = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });
  await r.arrayBuffer();
  return r.status;
};
const readiness = async () => ((await (await fetch(`${s.url}/readyz`)).json()) as { status: string }).status;
const degradedMetric = async () => {
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const text = await (
    await fetch(`${s.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  const m = /^sluice_degraded\{component="limits"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0; // a series never set means never degraded
};
/** Polls `cond` until it holds (bounded: the state changes on Redis events, not on a timer of ours). */
async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await cond().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('a Redis Cluster master killed under load', () => {
  // Regression: the cluster client stays 'ready' while one master is lost, so a lost master used to
  // look like a slow store (each request waited 2 s, then 503) and `/readyz` stayed "ready". Now a
  // connection-lost error enters degraded mode, and the recovery probe pings every master of the
  // slot map (src/stores/resilient-limit-store.ts, src/stores/redis/cluster-limit-store.ts).
  it('no 5xx, degraded in /readyz and metrics; master back: shared limits again without a restart', async () => {
    const { key } = await createKey({ dataDir: dir, configFile: join(dir, 'sluice.yaml') });
    expect(await chat(key)).toBe(200);
    expect(await readiness()).toBe('ready');
    expect(await degradedMetric()).toBe(0);
    const master = await cluster.masterOf('{t:acme}');

    // 1. Load from four callers; the master of the key's slot is killed once it runs.
    const statuses: number[] = [];
    let running = true;
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (running) statuses.push(await chat(key));
      }),
    );
    try {
      await until(async () => statuses.length >= 20, 10_000);
      await cluster.kill(master);

      // 2. The instance reports the degraded state while the load goes on.
      expect(await until(async () => (await readiness()) === 'degraded', 15_000)).toBe(true);
      // (the gauge follows the store's state on the next 500 ms check)
      expect(await until(async () => (await degradedMetric()) === 1, 5_000)).toBe(true);
      const during = statuses.length;
      await until(async () => statuses.length >= during + 50, 15_000);

      // 3. The master back on its port: ready again, no restart of Sluice.
      await cluster.restart(master);
      expect(await until(async () => (await readiness()) === 'ready', 20_000)).toBe(true);
      expect(await until(async () => (await degradedMetric()) === 0, 5_000)).toBe(true);
    } finally {
      running = false;
      await load;
    }
    const bad = statuses.filter((x) => x !== 200 && x !== 429);
    console.log(`cluster master kill: ${statuses.length} requests, non-200/429: ${JSON.stringify(bad)}`);
    expect(statuses.length).toBeGreaterThan(70);
    expect(bad).toEqual([]);

    // 4. Shared limits again: a request now writes its bucket to the restarted master.
    expect(await chat(key)).toBe(200);
    const c = new Redis({ port: master, host: '127.0.0.1', lazyConnect: true });
    try {
      await c.connect();
      // The restarted master's command counters start at zero, and the key's buckets (GCRA strings that
      // expire as soon as the allowance is full again, so not there to look at) live in its slot: a
      // script call counted there after recovery is this instance deciding on shared state again.
      const stats = await c.info('commandstats');
      expect(stats).toMatch(/cmdstat_(evalsha|eval|fcall):calls=[1-9]/);
    } finally {
      c.disconnect();
    }
  }, 120_000);
});
