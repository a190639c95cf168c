/**
 * Admission through a real `sluice serve`: a shared upstream's declared capacity divided among
 * flooding tenants by tier weight, one tenant alone using all of it, an upstream that answers 429
 * turned into Sluice's own 429 with a retry time, and a tier queue that delays instead of refusing.
 * Run `node scripts/build.mjs` first.
 */
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;
let stub: Server;
let stubUrl = '';
let upstreamHits: number[] = [];

/** An OpenAI-compatible upstream that refuses everything with its own 429. */
async function startRefusingUpstream(): Promise<void> {
  stub = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      upstreamHits.push(Date.now());
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(
        JSON.stringify({
          error: { message: 'Upstream rate limit', type: 'requests', code: 'rate_limit_exceeded' },
        }),
      );
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}/v1`;
}

beforeAll(async () => {
  await startRefusingUpstream();
  const dir = tempDir();
  s = await startSluice({
    dataDir: dir,
    config: writeConfig(
      dir,
      `log: { level: warn }
upstreams:
  - { name: pool, kind: mock, replyWords: 3, capacity: { requestsPerMinute: 1200 } }
  - { name: solo, kind: mock, replyWords: 3, capacity: { requestsPerMinute: 1200 } }
  - { name: busy, kind: openai, baseUrl: "${stubUrl}", apiKey: test }
  - { name: local, kind: mock, replyWords: 3 }
models:
  - { match: "pool-*", upstream: pool }
  - { match: "solo-*", upstream: solo }
  - { match: "busy-*", upstream: busy }
  - { match: "*", upstream: local }
tiers:
  default: {}
  light: { weight: 1 }
  heavy: { weight: 3 }
  patient:
    queue: { maxWait: 2s }
    limits: [{ id: rps, requests: 2, window: 1s }]
  impatient:
    limits: [{ id: rps, requests: 2, window: 1s }]
  slow-queue:
    queue: { maxWait: 5s }
    limits: [{ id: slow, requests: 1, window: 2s }]
`,
    ),
  });
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await new Promise((r) => stub?.close(r));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Requests waiting in a tier queue now (`sluice_admission_waiting` on /metrics). */
async function waiting(): Promise<number> {
  const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
  const text = await (
    await fetch(`${s.adminUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  return Number(/^sluice_admission_waiting (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
}

const chat = (key: string, model: string) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });

interface Answer {
  at: number;
  status: number;
  code?: string;
  message?: string;
  retryAfter: string | null;
  retryAfterMs: string | null;
}

/** `workers` clients looping until `until`, each honouring Sluice's retry-after-ms (at most `maxSleep`). */
async function flood(key: string, model: string, workers: number, until: number, maxSleep = 250) {
  const answers: Answer[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < until) {
        const r = await chat(key, model);
        const a: Answer = {
          at: Date.now(),
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          retryAfterMs: r.headers.get('retry-after-ms'),
        };
        const body = (await r.json()) as { error?: { code?: string; message?: string } };
        a.code = body.error?.code;
        a.message = body.error?.message;
        answers.push(a);
        if (r.status === 429) {
          const wait = Number(a.retryAfterMs ?? 20);
          await sleep(Math.min(maxSleep, Number.isFinite(wait) ? wait : 20));
        }
      }
    }),
  );
  return answers;
}

describe('fair share of a shared upstream (capacity 1200 per minute)', () => {
  it('two tenants of weights 1 and 3, both flooding, are admitted about 1:3 within the capacity', async () => {
    const light = await createKey(s, [], 'tenant-light', 'light');
    const heavy = await createKey(s, [], 'tenant-heavy', 'heavy');
    const t0 = Date.now();
    const until = t0 + 6000;
    const [a, b] = await Promise.all([
      flood(light.key, 'pool-model', 6, until),
      flood(heavy.key, 'pool-model', 6, until),
    ]);
    // Counted after a 2 s warm-up, so the starting allowances do not blur the ratio.
    const from = t0 + 2000;
    const okA = a.filter((x) => x.status === 200 && x.at >= from).length;
    const okB = b.filter((x) => x.status === 200 && x.at >= from).length;
    const seconds = (until - from) / 1000;
    console.log(
      `fair share: light (w1) ${okA}, heavy (w3) ${okB} admitted in ${seconds}s; ratio ${(okB / okA).toFixed(2)}; capacity ${20 * seconds}`,
    );
    expect(okB / okA).toBeGreaterThan(2);
    expect(okB / okA).toBeLessThan(4.5);
    // Within the capacity (20 per second, one second of allowance, a request in flight per worker).
    expect(okA + okB).toBeLessThanOrEqual(20 * seconds + 20 + 12);
    expect(okA + okB).toBeGreaterThanOrEqual(0.75 * 20 * seconds);
    // Every refusal is Sluice's, names the capacity bucket that bound, and says when to come back.
    const refused = [...a, ...b].filter((x) => x.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.code).toBe('SLUICE_RATE_LIMITED');
      expect(r.message).toMatch(/(fair-share|upstream):pool/);
      expect(Number(r.retryAfterMs)).toBeGreaterThan(0);
    }
    expect([...a, ...b].filter((x) => x.status >= 500)).toEqual([]);
  });

  it('one tenant alone gets (nearly) all of the capacity', async () => {
    const light = await createKey(s, [], 'tenant-alone', 'light');
    const t0 = Date.now();
    const answers = await flood(light.key, 'solo-model', 6, t0 + 4000);
    const ok = answers.filter((x) => x.status === 200).length;
    console.log(`alone: weight 1 tenant admitted ${ok} in 4s; capacity 80 (+20 allowance)`);
    expect(ok).toBeGreaterThanOrEqual(0.8 * 80);
    expect(ok).toBeLessThanOrEqual(80 + 20 + 6);
  });
});

describe('upstream feedback', () => {
  it("an upstream that answers 429 soon gets Sluice's own 429 with a retry time instead of more upstream errors", async () => {
    const k = await createKey(s, [], 'tenant-busy', 'default');
    upstreamHits = [];
    const t0 = Date.now();
    const answers = await flood(k.key, 'busy-model', 4, t0 + 3000, 100);
    // The upstream's own 429 reaches the caller mapped into the catalogue (never its body).
    const fromUpstream = answers.filter((x) => x.code === 'SLUICE_UPSTREAM_RATE_LIMITED');
    const own = answers.filter((x) => x.code === 'SLUICE_RATE_LIMITED');
    const firstOwn = own.length ? Math.min(...own.map((x) => x.at)) - t0 : -1;
    const lateHits = upstreamHits.filter((t) => t >= t0 + 2000).length;
    const lateAnswers = answers.filter((x) => x.at >= t0 + 2000).length;
    console.log(
      `feedback: ${answers.length} answers, ${fromUpstream.length} upstream 429s, ${own.length} Sluice 429s (first after ${firstOwn} ms); upstream hit ${lateHits} times in the last second while clients asked ${lateAnswers} times`,
    );
    expect(answers.every((x) => x.status === 429)).toBe(true);
    expect(fromUpstream.length).toBeGreaterThan(0);
    expect(own.length).toBeGreaterThan(fromUpstream.length);
    expect(firstOwn).toBeGreaterThanOrEqual(0);
    expect(firstOwn).toBeLessThan(1000);
    for (const r of own) {
      expect(r.message).toMatch(/(fair-share|upstream):busy/);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(r.retryAfterMs)).toBeGreaterThan(0);
    }
    // The upstream is left nearly alone: a trickle probes it, the rest is answered by Sluice.
    expect(lateHits).toBeLessThanOrEqual(3);
    expect(lateAnswers).toBeGreaterThan(10 * Math.max(1, lateHits));
  });
});

describe('waiting instead of refusing', () => {
  it('a tier with queue.maxWait gets delayed 200s where the same burst on a tier without a queue gets 429s', async () => {
    const patient = await createKey(s, [], 'tenant-q', 'patient');
    const impatient = await createKey(s, [], 'tenant-q', 'impatient');
    const burst = async (key: string) =>
      Promise.all(
        Array.from({ length: 5 }, async () => {
          const t = Date.now();
          const r = await chat(key, 'demo-model');
          await r.arrayBuffer();
          return { status: r.status, ms: Date.now() - t };
        }),
      );
    const [p, i] = await Promise.all([burst(patient.key), burst(impatient.key)]);
    console.log(
      `queue: patient ${p.map((x) => `${x.status}@${x.ms}ms`).join(' ')}; impatient ${i.map((x) => x.status).join(' ')}`,
    );
    expect(p.map((x) => x.status)).toEqual([200, 200, 200, 200, 200]);
    const slowest = Math.max(...p.map((x) => x.ms));
    // 2 per second: the fifth fits 1.5 s after the first two.
    expect(slowest).toBeGreaterThanOrEqual(1400);
    expect(slowest).toBeLessThan(2000 + 500);
    expect(i.map((x) => x.status).sort()).toEqual([200, 200, 429, 429, 429]);
  });

  it('a client that goes away while waiting leaves the queue: the one behind it is served in its place', async () => {
    const k = await createKey(s, [], 'tenant-leave', 'slow-queue');
    // 1. One request takes the allowance (one per 2 s); two more queue behind it, in order.
    expect((await chat(k.key, 'demo-model')).status).toBe(200);
    const t0 = Date.now();
    // A plain socket of its own (undici's fetch, once aborted, leaves a spare connection open that
    // would hold up the server's graceful close).
    let leaverSocketClosed = false;
    const leaver = httpRequest(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
    });
    const left = new Promise<string>((resolve) => {
      leaver.on('response', (res) => resolve(`answered ${res.statusCode}`));
      leaver.on('error', () => resolve('aborted'));
      leaver.on('close', () => {
        leaverSocketClosed = true;
        resolve('aborted');
      });
    });
    leaver.end(JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }));
    await waitFor(async () => (await waiting()) >= 1, { what: 'the leaver to queue' });
    const stayed = chat(k.key, 'demo-model').then(async (r) => {
      await r.arrayBuffer();
      return { status: r.status, ms: Date.now() - t0 };
    });
    // 2. The first in line leaves; the second gets the slot that refills at 2 s, not the one at 4 s.
    await waitFor(async () => (await waiting()) >= 2, { what: 'the second request to queue behind' });
    leaver.destroy();
    expect(await left).toBe('aborted');
    expect(leaverSocketClosed).toBe(true);
    const r = await stayed;
    console.log(`queue leave: the request behind was served after ${r.ms} ms`);
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(3000);
  });
});
