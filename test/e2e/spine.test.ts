/**
 * The spine end to end: `sluice serve` as a real process on its embedded default, driven by the real
 * `openai` and `@anthropic-ai/sdk` clients.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice } from './harness.js';

let s: SluiceProcess;
let key: string;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  s = await startSluice();
  ({ key } = await createKey(s));
  openai = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: key, baseURL: s.url, maxRetries: 0 });
});
afterAll(async () => {
  await s?.stop();
});

describe('spine: the official SDKs against the embedded default', () => {
  it('chat completion with realistic usage', async () => {
    const r = await openai.chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Say hello to the gateway' }],
    });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.content).toMatch(/\w+/);
    expect(r.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it('chat streaming arrives as chunks, with no usage chunk unless asked', async () => {
    const stream = await openai.chat.completions.create({
      model: 'demo-model',
      stream: true,
      messages: [{ role: 'user', content: 'stream please' }],
    });
    let text = '';
    let chunks = 0;
    let usageChunks = 0;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usageChunks++;
      text += c.choices[0]?.delta?.content ?? '';
    }
    expect(chunks).toBeGreaterThan(3);
    expect(usageChunks).toBe(0);
    expect(text.length).toBeGreaterThan(5);
  });

  it('chat streaming with include_usage keeps the usage chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: 'demo-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream with usage' }],
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('embeddings, images, completions, responses', async () => {
    const e = await openai.embeddings.create({ model: 'demo-embed', input: ['one', 'two'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]!.embedding.length).toBeGreaterThan(0);
    const img = await openai.images.generate({ model: 'demo-image', prompt: 'a sluice gate', n: 1 });
    expect(img.data?.[0]?.b64_json ?? img.data?.[0]?.url).toBeTruthy();
    const c = await openai.completions.create({ model: 'demo-model', prompt: 'Once upon a time' });
    expect(c.choices[0]!.text.length).toBeGreaterThan(0);
    const r = await openai.responses.create({ model: 'demo-model', input: 'What is a gateway?' });
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage!.input_tokens).toBeGreaterThan(0);
  });

  it('Anthropic messages, plain and streaming', async () => {
    const m = await anthropic.messages.create({
      model: 'claude-demo',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello Claude' }],
    });
    expect(m.type).toBe('message');
    expect(m.usage.input_tokens).toBeGreaterThan(0);
    expect(m.content[0]!.type).toBe('text');
    const stream = anthropic.messages.stream({
      model: 'claude-demo',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Stream, Claude' }],
    });
    let deltas = 0;
    stream.on('text', () => deltas++);
    const final = await stream.finalMessage();
    expect(deltas).toBeGreaterThan(2);
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  it('models list shows the demo models', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['demo-model', 'demo-embed', 'demo-image', 'claude-demo']));
  });

  it('errors come in each wire format', async () => {
    const bad = new OpenAI({
      apiKey: 'sk-sluice-000000000000-00000000000000000000000000000000',
      baseURL: `${s.url}/v1`,
      maxRetries: 0,
    });
    await expect(
      bad.chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 401,
      code: 'SLUICE_INVALID_KEY',
    });
    const badA = new Anthropic({ apiKey: 'nope', baseURL: s.url, maxRetries: 0 });
    await expect(
      badA.messages.create({
        model: 'claude-demo',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toMatchObject({
      status: 401,
      error: { type: 'error', error: { type: 'authentication_error' } },
    });
  });

  it('health and readiness', async () => {
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    const r = await fetch(`${s.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'ready' });
  });
});
