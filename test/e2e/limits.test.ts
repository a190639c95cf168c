/**
 * Limits through the real HTTP path: headers in every family, the SDK backing off on them, the
 * self-service view, reservations settled from the stream's usage, budgets that can never succeed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;

beforeAll(async () => {
  const dir = tempDir();
  s = await startSluice({
    dataDir: dir,
    config: writeConfig(
      dir,
      `upstreams:
  - { name: local, kind: mock, replyWords: 10 }
  - { name: slow, kind: mock, replyWords: 10, tokenDelay: 100ms }
models:
  - { match: "slow-*", upstream: slow }
  - { match: "*", upstream: local }
prices:
  "demo-*": { input: 1000000, output: 1000000 }
tiers:
  default: {}
  tight:
    limits:
      - { id: rps, requests: 3, window: 2s }
      - { id: tpm, tokens: 100000, window: 1m }
  tokens:
    limits:
      - { id: tpm, tokens: 1000, window: 1m }
  budget:
    limits:
      - { id: daily-usd, per: tenant, usd: 0.0001, window: 1d }
  conc:
    limits:
      - { id: inflight, concurrent: 1 }
  narrow:
    limits:
      - { id: rpm, requests: 100, window: 1m }
      - { id: img, images: 10, window: 1h, actions: [images.generate] }
      - { id: gpt4, tokens: 10000, window: 1m, models: ["gpt-4*"] }
  shadowy:
    limits:
      - { id: rps-shadow, requests: 1, window: 1m, mode: shadow }
`,
    ),
  });
});
afterAll(async () => {
  await s?.stop();
});

const body = { model: 'demo-model', messages: [{ role: 'user' as const, content: 'hello there' }] };

describe('limits over HTTP', () => {
  it('every response carries OpenAI and IETF rate-limit headers; a 429 names the limit and the wait', async () => {
    const { key } = await createKey(s, [], 'acme', 'tight');
    const call = () =>
      fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ok = await call();
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(ok.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(ok.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$/);
    expect(ok.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(ok.headers.get('ratelimit-policy')).toContain('"rps";q=3;w=2');
    expect(ok.headers.get('ratelimit-policy')).toContain('sluice-unit="tokens"');
    expect(ok.headers.get('ratelimit')).toMatch(/"rps";r=2;t=\d+/);
    await call();
    await call();
    const denied = await call();
    expect(denied.status).toBe(429);
    expect(Number(denied.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(denied.headers.get('retry-after-ms'))).toBeGreaterThan(0);
    const err = (await denied.json()).error;
    expect(err.code).toBe('SLUICE_RATE_LIMITED');
    expect(err.message).toMatch(
      /^Rate limit reached for rps \(per key\): limit 3, used 3, requested 1; try again in [\d.]+m?s$/,
    );
  });

  it('the OpenAI SDK with default retries gets through a burst by honouring the headers; with maxRetries 0 it gets a RateLimitError', async () => {
    const { key } = await createKey(s, [], 'acme', 'tight');
    const patient = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 5 });
    const results = await Promise.all(Array.from({ length: 5 }, () => patient.chat.completions.create(body)));
    expect(results).toHaveLength(5);
    const strict = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    const errs = await Promise.allSettled(
      Array.from({ length: 4 }, () => strict.chat.completions.create(body)),
    );
    const rejected = errs.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(rejected.length).toBeGreaterThan(0);
    const e = rejected[0]!.reason;
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(e.headers.get('retry-after-ms')).toBeTruthy();
  });

  it('a streamed request reserves max_tokens and is settled down to the actual output', async () => {
    const { key } = await createKey(s, [], 'acme', 'tokens');
    const me = async () =>
      (await (
        await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as { limits: { id: string; remaining: number; used: number }[] };
    const before = (await me()).limits.find((l) => l.id === 'tpm')!;
    expect(before.remaining).toBe(1000);
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      max_tokens: 800,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage;
    // Settlement follows the end of the stream: poll until the 800-token reservation is gone.
    const after = await waitFor(
      async () => {
        const l = (await me()).limits.find((x) => x.id === 'tpm')!;
        return l.used < 800 ? l : undefined;
      },
      { what: 'the reservation to be settled' },
    );
    // 800 output tokens were reserved; only what was produced stays charged (the bucket refills a little meanwhile).
    expect(usage!.total_tokens).toBeLessThan(100);
    expect(after.used).toBeLessThanOrEqual(usage!.total_tokens);
    expect(after.used).toBeGreaterThan(usage!.total_tokens - 10);
  });

  it('a request larger than the limit can never succeed: insufficient_quota with x-should-retry false', async () => {
    const { key } = await createKey(s, [], 'acme', 'tokens');
    // Its input alone is over the 1000-token limit (a large max_tokens alone no longer is: issue 15).
    const big = { ...body, messages: [{ role: 'user' as const, content: 'word '.repeat(1000) }] };
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...big, max_tokens: 5000 }),
    });
    expect(r.status).toBe(429);
    expect(r.headers.get('x-should-retry')).toBe('false');
    const err = (await r.json()).error;
    expect(err).toMatchObject({ type: 'insufficient_quota', code: 'SLUICE_QUOTA_EXCEEDED' });
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 3 });
    const t0 = Date.now();
    await expect(client.chat.completions.create({ ...big, max_tokens: 5000 })).rejects.toBeInstanceOf(
      OpenAI.RateLimitError,
    );
    expect(Date.now() - t0).toBeLessThan(1500); // no retries were attempted
  });

  it('a large max_tokens alone is admitted: output is reserved from an estimate and settled (issue 15)', async () => {
    const { key } = await createKey(s, [], 'acme', 'tokens');
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    const r = await client.chat.completions.create({ ...body, max_tokens: 5000 });
    expect(r.usage!.completion_tokens).toBe(10);
  });

  it('a money budget per tenant runs out and answers insufficient_quota', async () => {
    const { key } = await createKey(s, [], 'budget-co', 'budget');
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    let err: unknown;
    for (let i = 0; i < 20 && !err; i++)
      await client.chat.completions.create({ ...body, max_tokens: 10 }).catch((e) => (err = e));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as { code: string }).code).toBe('SLUICE_QUOTA_EXCEEDED');
  });

  it('concurrency: a second request while one streams is refused, then admitted after', async () => {
    const { key } = await createKey(s, [], 'acme', 'conc');
    const slow = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      // 10 words 100 ms apart: the first request is still in flight when the second arrives.
      body: JSON.stringify({ ...body, model: 'slow-model', stream: true }),
    });
    const reader = slow.body!.getReader();
    await reader.read();
    const second = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(second.status).toBe(429);
    expect((await second.json()).error.code).toBe('SLUICE_CONCURRENCY_LIMITED');
    while (!(await reader.read()).done) {}
    // The slot is released once the first request is settled: poll its use down to 0.
    await waitFor(
      async () => {
        const me = (await (
          await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
        ).json()) as { limits: { id: string; used: number }[] };
        return me.limits.find((l) => l.id === 'inflight')?.used === 0;
      },
      { what: 'the concurrency slot to be released' },
    );
    const third = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(third.status).toBe(200);
  });

  it('a shadow limit never denies, and its would-be refusals are audited with the request', async () => {
    const { key, id } = await createKey(s, [], 'acme', 'shadowy');
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(200);
      // Shadow limits are not shown to the caller.
      expect(r.headers.get('x-ratelimit-limit-requests')).toBeNull();
    }
    const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
    const exp = await (
      await fetch(`${s.adminUrl}/admin/v1/audit/export`, { headers: { authorization: `Bearer ${token}` } })
    ).text();
    const mine = exp
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.keyId === id && e.decision === 'allowed');
    expect(mine).toHaveLength(3);
    expect(
      mine.filter((e) => JSON.stringify(e.details?.shadow ?? []).includes('limit:rps-shadow')),
    ).toHaveLength(2);
  });

  it('/sluice/v1/me also lists limits narrowed to an action or a model', async () => {
    const { key } = await createKey(s, [], 'acme', 'narrow');
    const r = await (
      await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
    ).json();
    expect(r.limits.map((l: { id: string }) => l.id).sort()).toEqual(['gpt4', 'img', 'rpm']);
    expect(r.limits.find((l: { id: string }) => l.id === 'img')).toMatchObject({
      kind: 'images',
      limit: 10,
      remaining: 10,
    });
  });

  it('/sluice/v1/me lists every limit with usage, remaining and reset', async () => {
    const { key } = await createKey(s, [], 'acme', 'tight');
    const r = await (
      await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
    ).json();
    expect(r.key).toMatchObject({ tenant: 'acme', tier: 'tight' });
    expect(r.limits.map((l: { id: string }) => l.id).sort()).toEqual(['rps', 'tpm']);
    expect(r.limits.find((l: { id: string }) => l.id === 'rps')).toMatchObject({
      limit: 3,
      remaining: 3,
      used: 0,
      per: 'key',
      kind: 'requests',
    });
  });
});
