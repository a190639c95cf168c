/**
 * Issue 18: `sluice serve` with `limits: { store: redis, urls: [...] }` on a real 3-master Redis
 * Cluster (started here on free ports): a request carrying key, IP and global limits (three hash
 * slots) is decided across slots, exactly, and the instance reports itself ready (not degraded).
 * Run `node scripts/build.mjs` first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateCluster, startCluster } from '../stores/redis-cluster.js';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let cluster: PrivateCluster;
let s: SluiceProcess;

beforeAll(async () => {
  cluster = await startCluster(0);
  const dir = tempDir('sluice-rcluster-');
  const urls = cluster.ports.map((p) => `"redis://127.0.0.1:${p}"`).join(', ');
  const config = writeConfig(
    dir,
    `log: { level: warn }
limits: { store: redis, urls: [${urls}], timeout: 500ms }
upstreams: [{ name: local, kind: mock, replyWords: 3 }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: per-key, requests: 5, window: 1h }
      - { id: per-ip, requests: 1000, window: 1h, per: ip }
      - { id: everyone, requests: 100000, window: 1h, per: global }
`,
  );
  s = await startSluice({ config, dataDir: dir });
}, 120_000);

afterAll(async () => {
  await s?.stop();
  await cluster?.stop();
});

const chat = (key: string) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });

describe('limits on a Redis Cluster', () => {
  it('key, IP and global limits in three slots: exactly the key limit is admitted, then 429', async () => {
    const { key } = await createKey(s);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await chat(key)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const ready = (await (await fetch(`${s.url}/readyz`)).json()) as { status: string; degraded?: string[] };
    expect(ready.degraded ?? []).toEqual([]);
    // The IP and global buckets were charged for the 5 admitted requests only (429s cost nothing).
    const me = (await (
      await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as {
      limits: { id: string; remaining: number }[];
    };
    const remaining = Object.fromEntries(me.limits.map((l) => [l.id, l.remaining]));
    expect(remaining).toMatchObject({ 'per-key': 0, 'per-ip': 995, everyone: 99_995 });
  });
});
