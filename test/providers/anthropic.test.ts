import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSchema } from '../../src/config/schema.js';
import type { UpstreamRequest } from '../../src/core/ports.js';
import { AnthropicUpstream, type AnthropicUpstreamConfig } from '../../src/providers/anthropic.js';
import { parseSse } from '../../src/providers/sse.js';
import { readAll, type Stub, startStub } from './stub-server.js';

let stub: Stub;
const upstreams: AnthropicUpstream[] = [];

beforeAll(async () => {
  stub = await startStub();
});
afterAll(async () => {
  await stub.close();
});
afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close().catch(() => {})));
  stub.requests.length = 0;
});

function upstream(baseUrl = stub.origin): AnthropicUpstream {
  const cfg = UpstreamSchema.parse({
    name: 'claude',
    kind: 'anthropic',
    baseUrl,
    apiKey: 'sk-ant-upstream-secret',
  }) as AnthropicUpstreamConfig;
  const u = new AnthropicUpstream(cfg);
  upstreams.push(u);
  return u;
}

function req(body: Record<string, unknown>, extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    endpoint: 'messages',
    body,
    stream: body.stream === true,
    signal: new AbortController().signal,
    requestId: 'req_a',
    headers: {},
    ...extra,
  };
}

const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const sseHead = { 'content-type': 'text/event-stream; charset=utf-8' };
const body = { model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'x'.repeat(40) }] };

describe('anthropic provider', () => {
  it('posts to /v1/messages with its own key and the configured version; usage includes cache tokens', async () => {
    stub.handler = (_r, res) =>
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'r-up' }).end(
        JSON.stringify({
          type: 'message',
          content: [],
          usage: {
            input_tokens: 10,
            cache_creation_input_tokens: 5,
            cache_read_input_tokens: 20,
            output_tokens: 7,
          },
        }),
      );
    const res = await upstream().call(
      req(body, {
        headers: { authorization: 'Bearer caller', 'x-api-key': 'sk-sluice-caller', 'anthropic-beta': 'b1' },
      }),
    );
    const seen = stub.requests[0];
    expect(seen.url).toBe('/v1/messages');
    expect(seen.headers['x-api-key']).toBe('sk-ant-upstream-secret');
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers['anthropic-beta']).toBe('b1');
    expect(res.headers['request-id']).toBe('r-up');
    expect(await res.usage).toEqual({ inputTokens: 35, outputTokens: 7, images: 0 });
  });

  it("uses the caller's anthropic-version and accepts a base URL that ends in /v1", async () => {
    stub.handler = (_r, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    await upstream(`${stub.origin}/v1`).call(req(body, { headers: { 'anthropic-version': '2024-01-01' } }));
    expect(stub.requests[0].url).toBe('/v1/messages');
    expect(stub.requests[0].headers['anthropic-version']).toBe('2024-01-01');
  });

  it('only serves the messages endpoint', async () => {
    const u = upstream();
    expect(u.supports('messages')).toBe(true);
    expect(u.supports('chat')).toBe(false);
    await expect(u.call({ ...req(body), endpoint: 'chat' })).rejects.toMatchObject({ kind: 'protocol' });
  });

  it('stream usage: input from message_start, output from message_delta; bytes pass unchanged', async () => {
    const stream =
      ev('message_start', {
        message: { id: 'm', usage: { input_tokens: 25, cache_read_input_tokens: 5, output_tokens: 1 } },
      }) +
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
      ev('ping', {}) +
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello' } }) +
      ev('content_block_stop', { index: 0 }) +
      ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }) +
      ev('message_stop', {});
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      // Split mid-event to exercise incremental parsing.
      res.write(stream.slice(0, 50));
      res.end(stream.slice(50));
    };
    const res = await upstream().call(req({ ...body, stream: true }));
    expect(stub.requests[0].body.stream).toBe(true);
    expect(await readAll(res.body)).toBe(stream);
    expect(await res.usage).toEqual({ inputTokens: 30, outputTokens: 9, images: 0 });
  });

  it('a mid-stream failure ends with an Anthropic error event and partial usage', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(
        ev('message_start', { message: { usage: { input_tokens: 25, output_tokens: 1 } } }) +
          ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'abcdefghijklmnop' } }),
        () => setImmediate(() => res.socket?.destroy()),
      );
    };
    const res = await upstream().call(req({ ...body, stream: true }));
    const events = parseSse(await readAll(res.body));
    const last = events.at(-1)!;
    expect(last.event).toBe('error');
    expect(JSON.parse(last.data)).toEqual({
      type: 'error',
      error: { type: 'api_error', message: expect.stringContaining('interrupted') },
    });
    expect(await res.usage).toEqual({ inputTokens: 25, outputTokens: 4, images: 0 });
  });
});
