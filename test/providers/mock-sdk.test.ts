/**
 * The mock's answers are read by the official SDKs: a bare node:http server on loopback serves
 * MockUpstream output as-is, and the real `openai` and `@anthropic-ai/sdk` clients parse it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';

const PATHS: Record<string, Endpoint> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
  '/v1/images/generations': 'images',
  '/v1/responses': 'responses',
  '/v1/messages': 'messages',
};

let server: Server;
let origin = '';
const mock = new MockUpstream({ name: 'local', kind: 'mock', tokenDelay: 0, replyWords: 12 });

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      const endpoint = PATHS[req.url ?? ''];
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const out = await mock.call({
        endpoint,
        body,
        stream: body.stream === true,
        signal: ac.signal,
        requestId: 'sdk',
        headers: {},
      });
      res.writeHead(out.status, out.headers);
      if (out.body instanceof Uint8Array) res.end(out.body);
      else {
        for await (const c of out.body) res.write(c);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const openai = () => new OpenAI({ baseURL: `${origin}/v1`, apiKey: 'k', maxRetries: 0 });
const anthropic = () => new Anthropic({ baseURL: origin, apiKey: 'k', maxRetries: 0 });

describe('mock upstream read by the official SDKs', () => {
  it('openai: chat, plain and streaming with usage', async () => {
    const c = openai();
    const plain = await c.chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(plain.choices[0].message.content).toMatch(/^This is a mock reply from Sluice to: Hi/);
    const stream = await c.chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    for await (const ch of stream) {
      text += ch.choices[0]?.delta.content ?? '';
      if (ch.usage) usage = ch.usage;
    }
    expect(text).toBe(plain.choices[0].message.content);
    expect(usage).toMatchObject({ completion_tokens: 12 });
  });

  it('openai: completions, embeddings (base64 by default), images', async () => {
    const c = openai();
    const comp = await c.completions.create({ model: 'demo-model', prompt: 'Once' });
    expect(comp.choices[0].text).toContain('Once');
    const emb = await c.embeddings.create({ model: 'demo-embed', input: 'hello' });
    expect(emb.data[0].embedding).toHaveLength(1536);
    expect(typeof emb.data[0].embedding[0]).toBe('number');
    const img = await c.images.generate({ model: 'demo-image', prompt: 'a cat' });
    expect(img.data?.[0].b64_json).toBeTruthy();
  });

  it('openai: responses, plain and streaming', async () => {
    const c = openai();
    const r = await c.responses.create({ model: 'demo-model', input: 'Hello' });
    expect(r.output_text).toMatch(/^This is a mock reply/);
    const s = c.responses.stream({ model: 'demo-model', input: 'Hello' });
    const deltas: string[] = [];
    s.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await s.finalResponse();
    expect(deltas.join('')).toBe(r.output_text);
    expect(final.usage?.output_tokens).toBe(12);
  });

  it('anthropic: messages, plain and streaming', async () => {
    const c = anthropic();
    const m = await c.messages.create({
      model: 'claude-demo',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(m.content[0].type === 'text' && m.content[0].text).toMatch(/^This is a mock reply/);
    const s = c.messages.stream({
      model: 'claude-demo',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    const final = await s.finalMessage();
    expect(final.usage.output_tokens).toBe(5);
    expect(final.stop_reason).toBe('max_tokens');
  });
});
