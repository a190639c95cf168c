import { crc32, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Endpoint, UpstreamRequest } from '../../src/core/ports.js';
import {
  embeddingArrayJson,
  MOCK_PNG_BASE64,
  MockUpstream,
  mockEmbedding,
  mockReplyWords,
} from '../../src/providers/mock.js';
import { parseSse } from '../../src/providers/sse.js';
import { readAll } from './stub-server.js';

const NOW = 1_700_000_000_000;

function mock(over: { tokenDelay?: number; replyWords?: number } = {}) {
  return new MockUpstream(
    { name: 'local', kind: 'mock', tokenDelay: over.tokenDelay ?? 0, replyWords: over.replyWords ?? 12 },
    { now: () => NOW },
  );
}

function req(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  stream = false,
  signal?: AbortSignal,
): UpstreamRequest {
  return {
    endpoint,
    body,
    stream,
    signal: signal ?? new AbortController().signal,
    requestId: 'r1',
    headers: {},
  };
}

async function json(endpoint: Endpoint, body: Record<string, unknown>, m = mock()) {
  const res = await m.call(req(endpoint, body));
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/json');
  return { body: JSON.parse(await readAll(res.body)), usage: await res.usage };
}

async function stream(endpoint: Endpoint, body: Record<string, unknown>, m = mock()) {
  const res = await m.call(req(endpoint, { ...body, stream: true }, true));
  expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
  const text = await readAll(res.body);
  return { events: parseSse(text), usage: await res.usage, text };
}

const chatBody = {
  model: 'demo-model',
  messages: [{ role: 'user', content: 'Tell me about rivers and lakes please' }],
};

describe('mock upstream', () => {
  it('advertises the demo models and serves every endpoint', () => {
    const m = mock();
    expect(m.advertisedModels().map((x) => x.id)).toEqual([
      'demo-model',
      'demo-embed',
      'demo-image',
      'claude-demo',
    ]);
    expect(m.advertisedModels()[0].endpoints).toEqual(['chat', 'completions', 'responses']);
    for (const e of ['chat', 'completions', 'embeddings', 'images', 'responses', 'messages'] as Endpoint[]) {
      expect(m.supports(e)).toBe(true);
    }
  });

  it('reply text quotes the prompt, is deterministic and has exactly replyWords words', () => {
    const a = mockReplyWords('Tell me about rivers and lakes please now', 20);
    expect(a.join(' ')).toMatch(
      /^This is a mock reply from Sluice to: Tell me about rivers and lakes\.\.\. /,
    );
    expect(a).toHaveLength(20);
    expect(mockReplyWords('Tell me about rivers and lakes please now', 20)).toEqual(a);
    expect(mockReplyWords('something else entirely', 20)).not.toEqual(a);
    expect(mockReplyWords('', 3)).toEqual(['This', 'is', 'a']);
  });

  it('chat.completion shape and usage (input estimated, output = words)', async () => {
    const { body, usage } = await json('chat', chatBody);
    expect(body).toMatchObject({
      id: 'chatcmpl-r1',
      object: 'chat.completion',
      created: NOW / 1000,
      model: 'demo-model',
    });
    const content = body.choices[0].message.content as string;
    expect(content.split(' ')).toHaveLength(12);
    expect(body.choices[0]).toMatchObject({
      index: 0,
      finish_reason: 'stop',
      message: { role: 'assistant' },
    });
    // 37 chars -> 10 tokens, + 4 per message + 3 framing
    expect(body.usage).toMatchObject({ prompt_tokens: 17, completion_tokens: 12, total_tokens: 29 });
    expect(usage).toEqual({ inputTokens: 17, outputTokens: 12, images: 0 });
  });

  it('honours max_tokens as a cap and n as the number of choices', async () => {
    const { body, usage } = await json('chat', { ...chatBody, max_tokens: 5, n: 2 });
    expect(body.choices).toHaveLength(2);
    expect(body.choices[1]).toMatchObject({ index: 1, finish_reason: 'length' });
    expect((body.choices[0].message.content as string).split(' ')).toHaveLength(5);
    expect(usage.outputTokens).toBe(10);
  });

  it('text_completion shape', async () => {
    const { body, usage } = await json('completions', { model: 'demo-model', prompt: 'Once upon a time' });
    expect(body).toMatchObject({ object: 'text_completion', choices: [{ index: 0, finish_reason: 'stop' }] });
    expect(body.choices[0].text).toMatch(/^This is a mock reply from Sluice to: Once upon a time/);
    expect(usage).toEqual({ inputTokens: 4, outputTokens: 12, images: 0 });
  });

  it('embeddings: deterministic unit vectors, float or base64', async () => {
    const body = { model: 'demo-embed', input: ['alpha', 'beta'] };
    const a = await json('embeddings', body);
    expect(a.body).toMatchObject({
      object: 'list',
      model: 'demo-embed',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
    expect(a.body.data).toHaveLength(2);
    // The shape and key order JSON.stringify gave before the body was written by hand.
    expect(Object.keys(a.body)).toEqual(['object', 'data', 'model', 'usage']);
    expect(Object.keys(a.body.data[1])).toEqual(['object', 'index', 'embedding']);
    expect(a.body.data.map((d: { index: number }) => d.index)).toEqual([0, 1]);
    const v = a.body.data[0].embedding as number[];
    const exact = mockEmbedding('alpha', 1536);
    for (let i = 0; i < v.length; i++) expect(Math.abs(v[i]! - exact[i]!)).toBeLessThan(6e-10);
    expect(v).toHaveLength(1536);
    expect(Math.sqrt(v.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 6);
    expect(a.body.data[1].embedding).not.toEqual(v);
    const again = await json('embeddings', body);
    expect(again.body.data[0].embedding).toEqual(v);
    const b64 = await json('embeddings', { ...body, encoding_format: 'base64', dimensions: 16 });
    const buf = Buffer.from(b64.body.data[0].embedding as string, 'base64');
    const floats = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    expect(floats).toHaveLength(16);
    expect([...floats]).toEqual([...new Float32Array(mockEmbedding('alpha', 16))]);
    expect(a.usage).toEqual({ inputTokens: 3, outputTokens: 0, images: 0 });
  });

  it("embeddings with vectors: 'constant' (sluice simulate): one unit vector per size, same shape and usage", async () => {
    const constant = new MockUpstream(
      { name: 'local', kind: 'mock', tokenDelay: 0, replyWords: 12 },
      { now: () => NOW, vectors: 'constant' },
    );
    const body = { model: 'demo-embed', input: ['alpha', 'beta'] };
    const seeded = await json('embeddings', body);
    const a = await json('embeddings', body, constant);
    expect(Object.keys(a.body)).toEqual(Object.keys(seeded.body));
    expect(a.body.usage).toEqual(seeded.body.usage);
    expect(a.usage).toEqual(seeded.usage);
    const [v0, v1] = a.body.data.map((d: { embedding: number[] }) => d.embedding);
    expect(v0).toHaveLength(1536);
    expect(v1).toEqual(v0);
    expect(v0).not.toEqual(seeded.body.data[0].embedding);
    expect(Math.sqrt(v0.reduce((s: number, x: number) => s + x * x, 0))).toBeCloseTo(1, 6);
    // Another input and size: the same vector for the same size, another for another size.
    const b = await json('embeddings', { model: 'demo-embed', input: 'gamma' }, constant);
    expect(b.body.data[0].embedding).toEqual(v0);
    const small = await json('embeddings', { ...body, dimensions: 16 }, constant);
    expect(small.body.data[0].embedding).toHaveLength(16);
    const b64 = await json('embeddings', { ...body, encoding_format: 'base64', dimensions: 16 }, constant);
    expect(b64.body.data[1].embedding).toBe(b64.body.data[0].embedding);
    const buf = Buffer.from(b64.body.data[1].embedding as string, 'base64');
    const floats = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    expect(floats).toHaveLength(16);
    const fromJson = small.body.data[0].embedding as number[];
    for (let i = 0; i < 16; i++) expect(Math.abs(floats[i]! - fromJson[i]!)).toBeLessThan(1e-7);
  });

  it('images: a valid PNG in b64_json, or a data: url', async () => {
    const { body, usage } = await json('images', { model: 'demo-image', prompt: 'a cat', n: 2 });
    expect(body.data).toHaveLength(2);
    expect(usage.images).toBe(2);
    const png = Buffer.from(body.data[0].b64_json as string, 'base64');
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    // Every chunk's CRC is right and the pixel data inflates.
    for (let o = 8; o < png.length; ) {
      const len = png.readUInt32BE(o);
      expect(crc32(png.subarray(o + 4, o + 8 + len))).toBe(png.readUInt32BE(o + 8 + len));
      if (png.subarray(o + 4, o + 8).toString() === 'IDAT')
        expect(inflateSync(png.subarray(o + 8, o + 8 + len)).length).toBe(5);
      o += 12 + len;
    }
    const url = await json('images', { prompt: 'a cat', response_format: 'url' });
    expect(url.body.data[0].url).toBe(`data:image/png;base64,${MOCK_PNG_BASE64}`);
  });

  it('responses API object', async () => {
    const { body, usage } = await json('responses', {
      model: 'demo-model',
      input: 'Hello there',
      max_output_tokens: 50,
    });
    expect(body).toMatchObject({
      id: 'resp_r1',
      object: 'response',
      status: 'completed',
      model: 'demo-model',
    });
    expect(body.output[0]).toMatchObject({
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_text' }],
    });
    expect(body.usage).toMatchObject({ input_tokens: 3, output_tokens: 12, total_tokens: 15 });
    expect(usage).toEqual({ inputTokens: 3, outputTokens: 12, images: 0 });
  });

  it('Anthropic message', async () => {
    const { body, usage } = await json('messages', {
      model: 'claude-demo',
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi Claude' }] }],
    });
    expect(body).toMatchObject({ id: 'msg_r1', type: 'message', role: 'assistant', stop_reason: 'end_turn' });
    expect(body.content[0].text).toMatch(/^This is a mock reply from Sluice to: Hi Claude/);
    expect(body.usage).toMatchObject({ input_tokens: 12, output_tokens: 12 });
    expect(usage).toEqual({ inputTokens: 12, outputTokens: 12, images: 0 });
  });

  it('chat stream: role chunk, one chunk per word, finish chunk, [DONE]; usage chunk only when asked', async () => {
    const plain = await stream('chat', chatBody);
    const data = plain.events.map((e) => e.data);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks[0].choices[0].delta).toMatchObject({ role: 'assistant', content: '' });
    expect(
      chunks
        .slice(1, -1)
        .map((c) => c.choices[0].delta.content)
        .join(''),
    ).toBe(mockReplyWords('Tell me about rivers and lakes please', 12).join(' '));
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && !('usage' in c))).toBe(true);
    expect(plain.usage).toEqual({ inputTokens: 17, outputTokens: 12, images: 0 });

    const withUsage = await stream('chat', { ...chatBody, stream_options: { include_usage: true } });
    const last = JSON.parse(withUsage.events.at(-2)!.data);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 17, completion_tokens: 12 });
  });

  it('completions stream ends with a finish chunk and [DONE]', async () => {
    const s = await stream('completions', { prompt: 'abc', stream_options: { include_usage: true } });
    const chunks = s.events.slice(0, -1).map((e) => JSON.parse(e.data));
    expect(s.events.at(-1)!.data).toBe('[DONE]');
    expect(chunks[0]).toMatchObject({ object: 'text_completion', choices: [{ text: 'This', index: 0 }] });
    expect(chunks.at(-2).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 12 } });
  });

  it('responses stream events in order, with sequence numbers and usage in response.completed', async () => {
    const s = await stream('responses', { input: 'Hi' }, mock({ replyWords: 3 }));
    expect(s.events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const parsed = s.events.map((e) => JSON.parse(e.data));
    expect(parsed.map((p) => p.sequence_number)).toEqual(parsed.map((_, i) => i));
    expect(parsed.every((p, i) => p.type === s.events[i].event)).toBe(true);
    expect(parsed.at(-1).response.usage).toMatchObject({ output_tokens: 3 });
    expect(parsed[7].text).toBe('This is a');
  });

  it('Anthropic stream events in order with usage in message_start and message_delta', async () => {
    const s = await stream('messages', { max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }] });
    expect(s.events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const start = JSON.parse(s.events[0].data);
    expect(start.message.usage.input_tokens).toBe(s.usage.inputTokens);
    const delta = JSON.parse(s.events[6].data);
    expect(delta).toMatchObject({ delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 2 } });
    expect(s.text).toMatch(/^event: message_start\ndata: /);
    expect(s.usage.outputTokens).toBe(2);
  });

  it('abort stops a paced stream at once and usage counts only what was produced', async () => {
    // tokenDelay of 60 s: the test can only finish because the abort cuts the wait short.
    const m = mock({ tokenDelay: 60_000 });
    const ac = new AbortController();
    const res = await m.call(req('chat', { ...chatBody, stream: true }, true, ac.signal));
    const it = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(Buffer.from(first.value!).toString()).toContain('"role":"assistant"');
    const next = it.next();
    ac.abort();
    expect((await next).done).toBe(true);
    expect(await res.usage).toEqual({ inputTokens: 17, outputTokens: 0, images: 0 });
  });

  it('a consumer that stops reading ends a paced stream (before or after the first chunk)', async () => {
    const m = mock({ tokenDelay: 60_000 });
    const a = await m.call(req('responses', { input: 'x', stream: true }, true));
    await (a.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().return?.();
    expect((await a.usage).outputTokens).toBe(0);
    const b = await m.call(req('responses', { input: 'x', stream: true }, true));
    for await (const c of b.body as AsyncIterable<Uint8Array>) {
      expect(Buffer.from(c).toString()).toContain('response.created');
      break;
    }
    expect((await b.usage).outputTokens).toBe(0);
  });

  it('usage resolves on abort even if nobody reads the stream', async () => {
    const ac = new AbortController();
    const res = await mock({ tokenDelay: 60_000 }).call(req('messages', { messages: [] }, true, ac.signal));
    ac.abort();
    expect((await res.usage).outputTokens).toBe(0);
  });
});

describe('embeddingArrayJson', () => {
  it('prints each component to nine decimals, as valid JSON, for any vector in [-1, 1]', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { maxLength: 64 }), (v) => {
        const text = embeddingArrayJson(v).toString('utf8');
        const back = JSON.parse(text) as number[];
        expect(back).toHaveLength(v.length);
        for (let i = 0; i < v.length; i++) {
          expect(Math.abs(back[i]! - v[i]!)).toBeLessThanOrEqual(5e-10 + 1e-15);
          expect(Object.is(back[i], -0)).toBe(false);
        }
        // The same text JSON.stringify gives the values rounded to nine decimals.
        expect(JSON.parse(text)).toEqual(
          v.map((x) => (Math.round(Math.abs(x) * 1e9) / 1e9) * Math.sign(x) || 0),
        );
      }),
      { numRuns: 500 },
    );
    expect(embeddingArrayJson([1, -1, 0, -0, 1e-12, -1e-12, 0.5]).toString()).toBe(
      '[1,-1,0.000000000,0.000000000,0.000000000,0.000000000,0.500000000]',
    );
  });
});
