/**
 * Issue 12 item 4 over HTTP against `sluice serve`: `screening.external` sends what a model would
 * read to an OpenAI-moderation-compatible endpoint (or a Llama-Guard-style chat model) on an
 * `openai`-kind upstream — here a stub classifier on loopback — with a timeout, a verdict cache and
 * fail-open or fail-closed per tier. Real `openai` and `@anthropic-ai/sdk` clients, default settings
 * unless a retry would only slow the test down. Needs `node scripts/build.mjs`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;
let stub: Server;
let dir: string;
const held: ServerResponse[] = [];
const calls: { path: string; auth: string | undefined; body: Record<string, unknown> }[] = [];
const keyOf: Record<string, string> = {};
let adminToken = '';

function classify(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) {
  const texts = JSON.stringify(body);
  if (texts.includes('SLOW')) {
    held.push(res); // never answered: the gateway's timeout decides
    return;
  }
  if (texts.includes('BROKEN')) {
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}');
    return;
  }
  const bad = texts.includes('HARMFUL');
  res.writeHead(200, { 'content-type': 'application/json' });
  if (req.url === '/v1/moderations') {
    const input = body.input as string[];
    res.end(
      JSON.stringify({
        id: 'modr-1',
        model: body.model,
        results: input.map((t) => ({
          flagged: t.includes('HARMFUL'),
          categories: { violence: t.includes('HARMFUL'), hate: false },
          category_scores: { violence: t.includes('HARMFUL') ? 0.98 : 0.01, hate: 0.0 },
        })),
      }),
    );
  } else
    res.end(
      JSON.stringify({
        id: 'chatcmpl-guard',
        object: 'chat.completion',
        model: body.model,
        choices: [
          {
            index: 0,
            finish_reason: 'stop',
            message: { role: 'assistant', content: bad ? 'unsafe\nS1,S9' : 'safe' },
          },
        ],
      }),
    );
}

beforeAll(async () => {
  stub = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      calls.push({ path: req.url ?? '', auth: req.headers.authorization, body });
      classify(req, res, body);
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  const port = (stub.address() as AddressInfo).port;
  dir = tempDir('sluice-external-e2e-');
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: local, kind: mock }
  - { name: guard, kind: openai, baseUrl: "http://127.0.0.1:${port}/v1", apiKey: "guard-secret-123" }
models: [{ match: "*", upstream: local }]
screening:
  external: { upstream: guard, kind: moderation, model: omni-moderation-latest, action: block, timeoutMs: 300 }
tiers:
  default: {}
  strict: { screening: { external: { onError: block } } }
  watch: { screening: { external: { action: flag } } }
  guard: { screening: { external: { kind: chat, model: llama-guard-3-8b } } }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  for (const tier of ['default', 'strict', 'watch', 'guard']) {
    const r = await fetch(`${s.adminUrl}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: `t-${tier}`, tier }),
    });
    expect(r.status).toBe(201);
    keyOf[tier] = ((await r.json()) as { key: string }).key;
  }
}, 120_000);
afterAll(async () => {
  for (const r of held) r.destroy();
  await s?.stop();
  await new Promise((r) => stub?.close(r));
});

const openai = (tier: string, opts: { maxRetries?: number } = {}) =>
  new OpenAI({ baseURL: `${s.url}/v1`, apiKey: keyOf[tier]!, ...opts });
const chat = (tier: string, content: string, opts: { maxRetries?: number } = {}) =>
  openai(tier, opts).chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content }] });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
  );

describe('external classifier over HTTP', () => {
  it('blocks what the moderation endpoint flags, passes the rest, and caches verdicts', async () => {
    const ok = await chat('default', 'What is the capital of France?');
    expect(ok.choices[0]?.message.content).toBeTruthy();
    const before = calls.length;
    const e = await failure(chat('default', 'something HARMFUL here'));
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(JSON.stringify(e!.error)).toContain('SLUICE_CONTENT_BLOCKED');
    expect(e!.message).toContain('external content classifier');
    // The classifier got what the model would read, with the upstream's own credentials, never the caller's key.
    const call = calls.at(-1)!;
    expect(call.path).toBe('/v1/moderations');
    expect(call.auth).toBe('Bearer guard-secret-123');
    expect(call.body).toEqual({ model: 'omni-moderation-latest', input: ['something HARMFUL here'] });
    expect(calls.length).toBe(before + 1);
    // The same text again: refused from the cache, no second call.
    const again = await failure(chat('default', 'something HARMFUL here'));
    expect(again?.status).toBe(400);
    expect(calls.length).toBe(before + 1);
    // The secret of the classifier's upstream is in no answer.
    expect(JSON.stringify(again!.error)).not.toContain('guard-secret');
  });

  it('refuses in the Anthropic wire format on /v1/messages', async () => {
    const client = new Anthropic({ baseURL: s.url, apiKey: keyOf.default! });
    const e = await client.messages
      .create({
        model: 'demo-model',
        max_tokens: 32,
        messages: [{ role: 'user', content: 'a HARMFUL message' }],
      })
      .then(
        () => null,
        (err: unknown) => err as InstanceType<typeof Anthropic.APIError>,
      );
    expect(e).toBeInstanceOf(Anthropic.BadRequestError);
    expect(JSON.stringify(e!.error)).toContain('SLUICE_CONTENT_BLOCKED');
  });

  it('fails open by default and closed where the tier says so, on a timeout and on an upstream error', async () => {
    // Default tier: the classifier never answers; after its 300 ms the request goes on.
    const open = await chat('default', 'a SLOW question');
    expect(open.choices.length).toBe(1);
    const broken = await chat('default', 'a BROKEN question');
    expect(broken.choices.length).toBe(1);
    // Strict tier: 503 SLUICE_SCREENING_UNAVAILABLE (retryable; retries off to keep the test short).
    for (const text of ['another SLOW question', 'another BROKEN question']) {
      const e = await failure(chat('strict', text, { maxRetries: 0 }));
      expect(e).toBeInstanceOf(OpenAI.InternalServerError);
      expect(e!.status).toBe(503);
      expect(JSON.stringify(e!.error)).toContain('SLUICE_SCREENING_UNAVAILABLE');
    }
    // And a clean text on the strict tier still passes.
    expect((await chat('strict', 'all good')).choices.length).toBe(1);
  });

  it('flags instead of blocking where the tier says so: forwarded, with the header', async () => {
    const { data, response } = await openai('watch')
      .chat.completions.create({
        model: 'demo-model',
        messages: [{ role: 'user', content: 'watch this HARMFUL one' }],
      })
      .withResponse();
    expect(data.choices.length).toBe(1);
    expect(response.headers.get('x-sluice-screening')).toContain('external=violence');
    const metrics = await (
      await fetch(`${s.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).text();
    expect(metrics).toMatch(
      /sluice_screening_total\{direction="input",detector="external",action="flag"\} 1/,
    );
  });

  it('asks a Llama-Guard-style chat model where the tier says so', async () => {
    const before = calls.length;
    const e = await failure(chat('guard', 'guard this HARMFUL one'));
    expect(e?.status).toBe(400);
    const call = calls.at(-1)!;
    expect(calls.length).toBe(before + 1);
    expect(call.path).toBe('/v1/chat/completions');
    expect(call.body).toMatchObject({
      model: 'llama-guard-3-8b',
      messages: [{ role: 'user', content: 'guard this HARMFUL one' }],
    });
    expect((await chat('guard', 'a safe one')).choices.length).toBe(1);
  });
});
