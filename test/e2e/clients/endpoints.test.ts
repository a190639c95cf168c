/**
 * The endpoints added for clients (issue 15), against `sluice serve` with real-shaped upstreams on
 * loopback: count_tokens and moderations are forwarded with the upstream's credentials (never the
 * caller's), models/{id} shows only what the key may use, and each endpoint has its own action and
 * limits.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../harness.js';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: any;
}
const seen: Seen[] = [];
let stub: Server;
let stubUrl = '';
let s: SluiceProcess;
let key = '';

beforeAll(async () => {
  // 1. A stub that answers count_tokens and moderations like the vendors do, and records every call.
  stub = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : null });
      res.writeHead(200, {
        'content-type': 'application/json',
        'request-id': 'req_stub',
        'set-cookie': 'x=1',
      });
      if (req.url === '/v1/messages/count_tokens') res.end(JSON.stringify({ input_tokens: 4242 }));
      else
        res.end(
          JSON.stringify({
            id: 'modr-stub',
            model: 'omni-moderation-latest',
            results: [{ flagged: true, categories: { violence: true }, category_scores: { violence: 0.9 } }],
          }),
        );
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  // 2. Sluice with an OpenAI-compatible and an Anthropic upstream on the stub, the mock for the rest.
  const dir = tempDir('sluice-endpoints-');
  const config = writeConfig(
    dir,
    `
upstreams:
  - { name: oa, kind: openai, baseUrl: "${stubUrl}/v1", apiKey: up-openai-secret }
  - { name: an, kind: anthropic, baseUrl: "${stubUrl}", apiKey: up-anthropic-secret }
  - { name: local, kind: mock }
models:
  - { match: "omni-*", upstream: oa }
  - { match: "claude-real*", upstream: an, rewrite: claude-upstream-name }
  - { match: "*", upstream: local }
tiers:
  default:
    limits:
      - { id: count-rpm, requests: 3, window: 1m, actions: [messages.count_tokens] }
`,
  );
  s = await startSluice({ dataDir: dir, config });
  key = (await createKey(s)).key;
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await new Promise<void>((r) => stub.close(() => r()));
});

describe('count_tokens', () => {
  it('is forwarded to an Anthropic upstream with its credentials and model name, and counted locally otherwise', async () => {
    const c = new Anthropic({ baseURL: s.url, apiKey: key, maxRetries: 0 });
    const up = await c.messages.countTokens({
      model: 'claude-real-1',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(up.input_tokens).toBe(4242);
    const call = seen.find((x) => x.url === '/v1/messages/count_tokens')!;
    expect(call.headers['x-api-key']).toBe('up-anthropic-secret');
    expect(call.headers.authorization).toBeUndefined();
    expect(JSON.stringify(call.headers)).not.toContain(key);
    expect(call.body.model).toBe('claude-upstream-name');
    const local = await c.messages.countTokens({
      model: 'claude-demo',
      messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
    });
    expect(local.input_tokens).toBeGreaterThan(8);
    expect(local.input_tokens).toBeLessThan(20);
  });

  it('has its own action in limits: the fourth call in a minute is refused in Anthropic format', async () => {
    const { key: k } = await createKey(s);
    const c = new Anthropic({ baseURL: s.url, apiKey: k, maxRetries: 0 });
    const body = { model: 'claude-demo', messages: [{ role: 'user' as const, content: 'hi' }] };
    for (let i = 0; i < 3; i++) await c.messages.countTokens(body);
    const err = await c.messages.countTokens(body).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.error.error.type).toBe('rate_limit_error');
    // Messages themselves are not counted against count-rpm.
    await c.messages.create({ ...body, max_tokens: 10 });
  }, 90_000);

  it('is allowed to a key scoped to messages.create, refused to one scoped to chat only', async () => {
    const [msgs, chat] = await Promise.all([
      createKey(s, ['--scopes', 'messages.create']),
      createKey(s, ['--scopes', 'chat.create']),
    ]);
    const body = { model: 'claude-demo', messages: [{ role: 'user' as const, content: 'hi' }] };
    const ok = await new Anthropic({ baseURL: s.url, apiKey: msgs.key, maxRetries: 0 }).messages.countTokens(
      body,
    );
    expect(ok.input_tokens).toBeGreaterThan(0);
    const err = await new Anthropic({ baseURL: s.url, apiKey: chat.key, maxRetries: 0 }).messages
      .countTokens(body)
      .catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
  }, 90_000);
});

describe('moderations and models/{id}', () => {
  it('moderations: forwarded to the OpenAI-compatible upstream when the model routes there', async () => {
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 0 });
    const r = await c.moderations.create({ model: 'omni-moderation-latest', input: 'x' });
    expect(r.results[0]!.flagged).toBe(true);
    const call = seen.find((x) => x.url === '/v1/moderations')!;
    expect(call.headers.authorization).toBe('Bearer up-openai-secret');
    const local = await c.moderations.create({ model: 'mod-local', input: 'x' });
    expect(local.results[0]!.flagged).toBe(false);
    const bad = await fetch(`${s.url}/v1/moderations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: 42 }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('input');
  });

  it('models/{id}: only a model the key may use; 404 in OpenAI shape otherwise', async () => {
    const narrow = await createKey(s, ['--models', 'demo-*']);
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: narrow.key, maxRetries: 0 });
    expect((await c.models.retrieve('demo-model')).id).toBe('demo-model');
    const err = await c.models.retrieve('claude-real-1').catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.error).toMatchObject({ code: 'SLUICE_UNKNOWN_MODEL' });
    const anon = await fetch(`${s.url}/v1/models/demo-model`);
    expect(anon.status).toBe(401);
  }, 90_000);
});
