/**
 * Store faults under load, real processes throughout:
 *   - Redis (the limit store) killed and restarted: the data plane never answers 5xx, /readyz says
 *     degraded while it is down and ready again after, limits resume on Redis without a restart.
 *   - The SQLite database write-locked by another process: the data plane keeps answering, the
 *     management plane answers 503 SLUICE_STORE_UNAVAILABLE, and no usage row or audit event is
 *     lost once the lock is released.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { freePort, type PrivateRedis, privateRedis } from '../stores/limit-redis-server.js';
import { countBy, paceLoad, readRecords, waitFor } from './support.js';

const procs: SluiceProcess[] = [];
let redis: PrivateRedis | undefined;
afterAll(async () => {
  for (const p of procs) await p.stop();
  await redis?.kill();
});

interface Outcome {
  id: string;
  status: number | 'error';
  ms: number;
  at: number;
}

/** Callers in a loop until `stop.now`; every outcome kept (status, latency, when). */
function load(url: string, key: string, workers: number, stop: { now: boolean }, prefix: string) {
  const agent = new Agent({ connections: workers });
  const out: Outcome[] = [];
  const worker = async (w: number) => {
    for (let i = 0; !stop.now; i++) {
      const id = `${prefix}-${w}-${i}`;
      const t0 = performance.now();
      try {
        const r = await undiciFetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
          body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
        });
        await r.arrayBuffer();
        out.push({ id, status: r.status, ms: performance.now() - t0, at: Date.now() });
      } catch {
        out.push({ id, status: 'error', ms: performance.now() - t0, at: Date.now() });
      }
      await paceLoad(10); // a steady stream of calls, not a wait for anything
    }
  };
  return Promise.all(Array.from({ length: workers }, (_, w) => worker(w))).then(async () => {
    await agent.destroy();
    return out;
  });
}

async function readyz(url: string): Promise<{ code: number; status: string; degraded: string[] }> {
  const r = await fetch(`${url}/readyz`);
  const b = await r.json();
  return { code: r.status, status: b.status, degraded: b.degraded };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!) : 0;
};

describe('store faults', () => {
  it('Redis killed and restarted under load: no 5xx, readyz degraded then ready, limits back on Redis', async () => {
    const port = await freePort();
    redis = privateRedis(port);
    await redis.start();
    const dir = tempDir('sluice-redis-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
limits: { store: redis, url: "redis://127.0.0.1:${port}", timeout: 50ms }
tiers: { default: { limits: [{ id: rpm, requests: 1000000, window: 1m }] } }
`,
    );
    const s = await startSluice({ config, dataDir: dir });
    procs.push(s);
    const { key } = await createKey(s);
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});

    const stop = { now: false };
    const running = load(s.url, key, 4, stop, 'redis');
    // 1. Healthy: limits live in Redis (poll until the load's buckets are there).
    expect((await readyz(s.url)).status).toBe('ready');
    await probe.connect();
    expect(await waitFor(async () => (await probe.dbsize()) > 0, 10_000)).toBe(true);
    probe.disconnect();

    // 2. Redis dies: the data plane keeps answering, readyz says degraded.
    await redis.kill();
    const down = await waitFor(async () => {
      const r = await readyz(s.url);
      return r.status === 'degraded' ? r : undefined;
    });
    expect(down).toMatchObject({ code: 200, status: 'degraded', degraded: ['limits'] });
    await paceLoad(1000); // traffic keeps flowing while Redis is down

    // 3. Redis comes back (empty): readyz is ready again and limit state is written there again.
    await redis.start();
    const up = await waitFor(
      async () => ((await readyz(s.url)).status === 'ready' ? true : undefined),
      15_000,
    );
    expect(up).toBe(true);
    const probe2 = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    probe2.on('error', () => {});
    const resumed = await waitFor(async () => (await probe2.dbsize()) > 0, 10_000);
    probe2.disconnect();
    expect(resumed).toBe(true);
    await paceLoad(300); // some traffic after the recovery too
    stop.now = true;
    const outcomes = await running;

    // 4. Every request got an answer, none of them a 5xx.
    const statuses = countBy(outcomes.map((o) => ({ request_id: String(o.status) })));
    expect(Object.fromEntries(statuses)).toEqual({ '200': outcomes.length });
    expect(s.proc.exitCode).toBeNull();
    // 5. One audit event and one usage row per request, through the outage too.
    const rec = await waitFor(() => {
      const r = readRecords(dir);
      const a = countBy(r.audit);
      const u = countBy(r.usage);
      return outcomes.every((o) => a.get(o.id) === 1 && u.get(o.id) === 1) ? r : undefined;
    });
    expect(rec).toBeDefined();
  }, 60_000);

  it('SQLite write-locked by another process: data plane answers, management plane 503, nothing lost', async () => {
    const dir = tempDir('sluice-dblock-');
    const config = writeConfig(
      dir,
      `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
`,
    );
    const s = await startSluice({ config, dataDir: dir });
    procs.push(s);
    const { key } = await createKey(s);
    const adminToken = (await import('node:fs')).readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const stop = { now: false };
    const running = load(s.url, key, 2, stop, 'lock');
    await paceLoad(500); // traffic before the lock: the latency baseline

    // 1. Another process takes the write lock and holds it.
    const locker = new Database(join(dir, 'sluice.db'));
    locker.pragma('busy_timeout = 5000');
    const lockedAt = Date.now();
    locker.exec('BEGIN IMMEDIATE');
    const adminWrite = fetch(`${s.adminUrl}/admin/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'during-lock' }),
    });
    const r = await adminWrite;
    const body = await r.json();
    // 2. The management plane says the store is unavailable, in the catalogue's shape.
    expect(r.status).toBe(503);
    expect(body.error.code).toBe('SLUICE_STORE_UNAVAILABLE');
    locker.exec('COMMIT');
    locker.close();
    const releasedAt = Date.now();
    await paceLoad(500); // traffic after the lock is released
    stop.now = true;
    const outcomes = await running;

    // 3. The data plane answered every request, none with a 5xx.
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    const during = outcomes.filter((o) => o.at >= lockedAt && o.at <= releasedAt + 100).map((o) => o.ms);
    const before = outcomes.filter((o) => o.at < lockedAt).map((o) => o.ms);
    console.log(
      `[db-lock] data-plane latency ms before p50=${pct(before, 50)} p99=${pct(before, 99)} (n=${before.length}); ` +
        `while locked (${releasedAt - lockedAt} ms) p50=${pct(during, 50)} max=${pct(during, 100)} (n=${during.length})`,
    );
    // 4. Nothing lost: every request's audit event and usage row land once the lock is gone.
    const rec = await waitFor(() => {
      const x = readRecords(dir);
      const a = countBy(x.audit);
      const u = countBy(x.usage);
      return outcomes.every((o) => a.get(o.id) === 1 && u.get(o.id) === 1) ? x : undefined;
    }, 15_000);
    expect(rec).toBeDefined();
  });
});
