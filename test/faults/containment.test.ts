/**
 * Hostile clients are contained without hurting a normal caller (measured, not asserted on time):
 *   1. slow loris: hundreds of connections from one address sending headers a byte at a time;
 *   2. a flood of wrong keys from one address;
 *   3. wrong secrets for one real key id from many addresses (the owner keeps working).
 * The normal caller's latency before and during each is printed as `[containment] ...`.
 */
import { connect, type Socket } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { paceLoad, readRecords, waitFor } from './support.js';

const PER_IP = 20;
let s: SluiceProcess;
let key: string;
let port: number;
const normal = new Agent({ connections: 1, localAddress: '127.0.0.1' });

beforeAll(async () => {
  const dir = tempDir('sluice-contain-');
  const config = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
hardening:
  headersTimeout: 2s
  maxConnections: 1000
  authFailures: { perIp: ${PER_IP}, window: 30s }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  ({ key } = await createKey(s));
  port = Number(new URL(s.url).port);
  await normalCaller(1000); // warm-up, so "before" figures are not JIT warm-up
});
afterAll(async () => {
  await s?.stop();
  await normal.close();
});

const chatBody = JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] });

/** The normal caller: sequential calls for `ms`; every status and latency. */
async function normalCaller(ms: number): Promise<{ statuses: number[]; lat: number[] }> {
  const statuses: number[] = [];
  const lat: number[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const t0 = performance.now();
    const r = await undiciFetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: normal,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: chatBody,
    });
    await r.arrayBuffer();
    lat.push(performance.now() - t0);
    statuses.push(r.status);
  }
  return { statuses, lat };
}

const pct = (xs: number[], p: number) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]!.toFixed(2) : 'n/a';
};
const summary = (xs: number[]) => `p50=${pct(xs, 50)}ms p99=${pct(xs, 99)}ms n=${xs.length}`;

const randomAlnum = (n: number) => {
  const a = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let o = '';
  for (let i = 0; i < n; i++) o += a[Math.floor(Math.random() * a.length)];
  return o;
};

describe('containment', () => {
  it('a slow-loris host gets 408s (and no more than its share of connections); the normal caller is served', async () => {
    const before = await normalCaller(1000);
    // 1. 300 connections from 127.0.0.2, each dribbling a header byte every 100 ms.
    const request = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${'x'.repeat(200)}\r\n\r\n`;
    const loris: { sock: Socket; got: string; closed: boolean; connected: boolean }[] = [];
    for (let i = 0; i < 300; i++) {
      const c = {
        sock: connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }),
        got: '',
        closed: false,
        connected: false,
      };
      c.sock.on('connect', () => (c.connected = true));
      c.sock.on('data', (d) => (c.got += d));
      c.sock.on('error', () => {});
      c.sock.on('close', () => (c.closed = true));
      loris.push(c);
    }
    let byte = 0;
    const drip = setInterval(() => {
      for (const c of loris) if (!c.closed && c.connected) c.sock.write(request[byte % request.length]!);
      byte++;
    }, 100);
    // Every loris connection is open (or already dropped at accept) before the normal caller runs.
    await waitFor(() => loris.every((c) => c.connected || c.closed), 5000);
    const during = await normalCaller(2000);
    // 2. Every loris connection is over within the header timeout (2 s) plus the check period.
    const over = await waitFor(() => loris.every((c) => c.closed), 6000);
    clearInterval(drip);
    expect(over).toBe(true);
    const timedOut = loris.filter((c) => c.got.startsWith('HTTP/1.1 408 '));
    const dropped = loris.filter((c) => c.got === '');
    // 10% of maxConnections (100) per address: the rest were dropped at accept.
    expect(timedOut.length).toBe(100);
    expect(dropped.length).toBe(200);
    const body = JSON.parse(timedOut[0]!.got.split('\r\n\r\n')[1]!);
    expect(body.error.code).toBe('SLUICE_REQUEST_TIMEOUT');
    // 3. The normal caller was served throughout.
    expect(before.statuses.every((x) => x === 200)).toBe(true);
    expect(during.statuses.every((x) => x === 200)).toBe(true);
    console.log(
      `[containment] slow loris (300 conns): normal caller before ${summary(before.lat)}; during ${summary(during.lat)}`,
    );
  });

  it('a flood of wrong keys from one address gets 429 after its budget; the normal caller is served', async () => {
    const before = await normalCaller(1000);
    const flood = new Agent({ connections: 8, localAddress: '127.0.0.3' });
    const statuses: Record<number, number> = {};
    let retryAfter: string | null = null;
    let code429 = '';
    const stop = { now: false };
    const flooder = async () => {
      while (!stop.now) {
        const r = await undiciFetch(`${s.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: flood,
          headers: {
            authorization: `Bearer sk-sluice-${randomAlnum(12)}-${randomAlnum(32)}`,
            'content-type': 'application/json',
          },
          body: chatBody,
        });
        const b = (await r.json()) as { error: { code: string } };
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 429) {
          retryAfter = r.headers.get('retry-after');
          code429 = b.error.code;
        }
      }
    };
    const flooders = Promise.all(Array.from({ length: 8 }, flooder));
    const during = await normalCaller(2000);
    stop.now = true;
    await flooders;
    await flood.close();
    expect(statuses[401]).toBe(PER_IP);
    expect(statuses[429]).toBeGreaterThan(100);
    expect(Object.keys(statuses).sort()).toEqual(['401', '429']);
    expect(code429).toBe('SLUICE_TOO_MANY_AUTH_FAILURES');
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(during.statuses.every((x) => x === 200)).toBe(true);
    console.log(
      `[containment] wrong-key flood (8 conns, ${statuses[429]! + statuses[401]!} requests in 2 s): normal caller before ${summary(before.lat)}; during ${summary(during.lat)}`,
    );
    // Audited in aggregate: one event per failed attempt within the budget, none per refusal.
    const auth = await waitFor(() => {
      const rows = readRecords(s.dataDir).audit.filter((e) => e.client_ip === '127.0.0.3');
      return rows.length >= PER_IP ? rows : undefined;
    });
    expect(auth).toHaveLength(PER_IP);
  });

  it('wrong secrets for a real key id from many addresses: the key id is limited, its owner is not', async () => {
    const keyId = key.split('-')[2]!;
    const owner = normalCaller(3000);
    await paceLoad(300); // the owner's calls are flowing before the attack starts
    const statuses: number[] = [];
    // 60 attempts from 60 addresses: no single address reaches its own budget.
    for (let i = 0; i < 60; i++) {
      const a = new Agent({ localAddress: `127.0.1.${i + 1}` });
      const r = await undiciFetch(`${s.url}/v1/models`, {
        dispatcher: a,
        headers: { authorization: `Bearer sk-sluice-${keyId}-${randomAlnum(32)}` },
      });
      await r.arrayBuffer();
      statuses.push(r.status);
      await a.close();
    }
    const o = await owner;
    expect(statuses.slice(0, PER_IP).every((x) => x === 401)).toBe(true);
    expect(statuses.slice(PER_IP).every((x) => x === 429)).toBe(true);
    expect(o.statuses.every((x) => x === 200)).toBe(true);
  });

  it('the refusals are summarised in one audit event per address and per key id at shutdown', async () => {
    expect(await s.stop()).toBe(0);
    const agg = readRecords(s.dataDir).audit.filter((e) => e.details?.includes('"aggregate":true'));
    const byIp = agg.filter((e) => e.client_ip === '127.0.0.3');
    expect(byIp).toHaveLength(1);
    expect(JSON.parse(byIp[0]!.details!)).toMatchObject({ per: 'ip', failures: PER_IP });
    const byKey = agg.filter((e) => e.key_id === key.split('-')[2]);
    expect(byKey).toHaveLength(1);
    expect(JSON.parse(byKey[0]!.details!)).toMatchObject({ per: 'key', failures: PER_IP, refused: 40 });
  });
});
