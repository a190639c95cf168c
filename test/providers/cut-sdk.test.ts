/**
 * A stream cut by transformEvents ends well-formed for the official SDKs: a loopback server serves
 * the mock's stream through a transform that cuts at the word "reply", and the real `openai` and
 * `@anthropic-ai/sdk` clients parse it to the end without throwing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamFormat } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';
import { type EventTransform, eventBytes, transformEvents } from '../../src/providers/stream-transform.js';

const PATHS: Record<string, StreamFormat> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/responses': 'responses',
  '/v1/messages': 'messages',
};

let server: Server;
let origin = '';
let cuts: string[] = [];
const mock = new MockUpstream({ name: 'local', kind: 'mock', tokenDelay: 0, replyWords: 12 });
const cutAtReply: EventTransform = {
  text: (ev) => (ev.text.includes('reply') ? { action: 'cut', reason: 'deny: reply' } : { action: 'keep' }),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      const format = PATHS[req.url ?? '']!;
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const out = await mock.call({
        endpoint: format,
        body,
        stream: true,
        signal: ac.signal,
        requestId: 'cut',
        headers: {},
      });
      res.writeHead(out.status, out.headers);
      const events = transformEvents(format, out.events!, cutAtReply, { onCut: (r) => cuts.push(r) });
      for await (const c of eventBytes(events)) res.write(c);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const openai = () => new OpenAI({ apiKey: 'k', baseURL: `${origin}/v1`, maxRetries: 0 });
const BEFORE_CUT = 'This is a mock';

describe('a cut stream is parsed by the official SDKs without throwing', () => {
  it('openai chat: finish_reason content_filter, the text before the cut', async () => {
    cuts = [];
    const stream = openai().chat.completions.stream({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]!.finish_reason).toBe('content_filter');
    expect(final.choices[0]!.message.content).toBe(BEFORE_CUT);
    expect(cuts).toEqual(['deny: reply']);
  });

  it('openai completions: the last chunk finishes with content_filter', async () => {
    const stream = await openai().completions.create({ model: 'demo-model', prompt: 'hi', stream: true });
    const finishes: (string | null)[] = [];
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      finishes.push(c.choices[0]?.finish_reason ?? null);
    }
    expect(finishes.at(-1)).toBe('content_filter');
    expect(text).toBe(BEFORE_CUT);
  });

  it('openai responses: ends with response.incomplete (reason content_filter)', async () => {
    const stream = openai().responses.stream({ model: 'demo-model', input: 'hi' });
    const types: string[] = [];
    let reason: string | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.incomplete') reason = ev.response.incomplete_details?.reason;
    }
    expect(types.at(-1)).toBe('response.incomplete');
    expect(reason).toBe('content_filter');
    expect(types).not.toContain('response.completed');
  });

  it('anthropic messages: the message ends with stop_reason refusal', async () => {
    const client = new Anthropic({ apiKey: 'k', baseURL: origin, maxRetries: 0 });
    const msg = await client.messages
      .stream({ model: 'claude-demo', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    expect(msg.stop_reason).toBe('refusal');
    expect(msg.content).toEqual([expect.objectContaining({ type: 'text', text: BEFORE_CUT })]);
  });
});
