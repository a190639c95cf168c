import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSchema } from '../../src/config/schema.js';
import type { Endpoint, UpstreamRequest } from '../../src/core/ports.js';
import { UpstreamError } from '../../src/core/ports.js';
import { OpenAIUpstream, type OpenAIUpstreamConfig } from '../../src/providers/openai.js';
import { parseSse } from '../../src/providers/sse.js';
import { closedPort, gate, readAll, type Stub, startStub } from './stub-server.js';

let stub: Stub;
const upstreams: OpenAIUpstream[] = [];

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

function upstream(over: Record<string, unknown> = {}, origin = stub.origin): OpenAIUpstream {
  const cfg = UpstreamSchema.parse({
    name: 'oai',
    kind: 'openai',
    baseUrl: `${origin}/v1`,
    apiKey: 'sk-upstream-secret',
    ...over,
  }) as OpenAIUpstreamConfig;
  const u = new OpenAIUpstream(cfg);
  upstreams.push(u);
  return u;
}

function req(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  extra: Partial<UpstreamRequest> = {},
): UpstreamRequest {
  return {
    endpoint,
    body,
    stream: body.stream === true,
    signal: new AbortController().signal,
    requestId: 'req_1',
    headers: {},
    ...extra,
  };
}

const sseHead = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } })}\n\n`;

describe('openai provider: JSON answers', () => {
  const cases: { endpoint: Endpoint; path: string; answer: unknown; usage: unknown }[] = [
    {
      endpoint: 'chat',
      path: '/v1/chat/completions',
      answer: { object: 'chat.completion', choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } },
      usage: { inputTokens: 9, outputTokens: 4, images: 0 },
    },
    {
      endpoint: 'completions',
      path: '/v1/completions',
      answer: { object: 'text_completion', choices: [], usage: { prompt_tokens: 3, completion_tokens: 16 } },
      usage: { inputTokens: 3, outputTokens: 16, images: 0 },
    },
    {
      endpoint: 'embeddings',
      path: '/v1/embeddings',
      answer: { object: 'list', data: [], usage: { prompt_tokens: 8, total_tokens: 8 } },
      usage: { inputTokens: 8, outputTokens: 0, images: 0 },
    },
    {
      endpoint: 'images',
      path: '/v1/images/generations',
      answer: {
        created: 1,
        data: [{ b64_json: 'x' }, { b64_json: 'y' }],
        usage: { input_tokens: 5, output_tokens: 272 },
      },
      usage: { inputTokens: 5, outputTokens: 272, images: 2 },
    },
    {
      endpoint: 'responses',
      path: '/v1/responses',
      answer: {
        object: 'response',
        output: [],
        usage: { input_tokens: 12, output_tokens: 30, total_tokens: 42 },
      },
      usage: { inputTokens: 12, outputTokens: 30, images: 0 },
    },
  ];
  for (const c of cases) {
    it(`${c.endpoint}: posts to ${c.path} and reads usage from the JSON`, async () => {
      stub.handler = (_r, res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(c.answer));
      const res = await upstream().call(req(c.endpoint, { model: 'm', prompt: 'p' }));
      expect(stub.requests[0]).toMatchObject({ method: 'POST', url: c.path });
      expect(res.status).toBe(200);
      expect(JSON.parse(await readAll(res.body))).toEqual(c.answer);
      expect(await res.usage).toEqual(c.usage);
    });
  }

  it('an upstream error status is a normal response with zero usage', async () => {
    stub.handler = (_r, res) =>
      res
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' })
        .end('{"error":{"message":"slow"}}');
    const res = await upstream().call(req('chat', { model: 'm', messages: [], stream: true }));
    expect(res.status).toBe(429);
    expect(res.body).toBeInstanceOf(Uint8Array);
    expect(res.rateHeaders['retry-after']).toBe('3');
    expect(await res.usage).toEqual({ inputTokens: 0, outputTokens: 0, images: 0 });
  });
});

describe('openai provider: credentials and headers', () => {
  it("sends Sluice's key, never the caller's credentials, and filters what comes back", async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': 'session=abc',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        authorization: 'Bearer leaked',
        'www-authenticate': 'Bearer',
        'openai-organization': 'org-secret',
        'x-ratelimit-remaining-requests': '99',
        'x-request-id': 'upstream-req',
        'openai-processing-ms': '12',
      });
      res.end('{}');
    };
    const u = upstream({ headers: { 'openai-project': 'proj_1' } });
    const res = await u.call(
      req(
        'chat',
        { model: 'm', messages: [] },
        {
          headers: {
            Authorization: 'Bearer sk-sluice-caller',
            'x-api-key': 'caller-key',
            cookie: 'a=b',
            'openai-beta': 'assistants=v2',
          },
        },
      ),
    );
    const seen = stub.requests[0].headers;
    expect(seen.authorization).toBe('Bearer sk-upstream-secret');
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen['openai-beta']).toBe('assistants=v2');
    expect(seen['openai-project']).toBe('proj_1');
    expect(seen['x-request-id']).toBe('req_1');
    expect(Object.keys(res.headers).sort()).toEqual(['content-type', 'openai-processing-ms', 'x-request-id']);
    expect(res.rateHeaders).toEqual({ 'x-ratelimit-remaining-requests': '99' });
    expect(JSON.stringify(res.headers)).not.toContain('leaked');
  });
});

describe('openai provider: streams', () => {
  it('passes events through as they arrive (first chunk before the upstream finishes)', async () => {
    const release = gate();
    stub.handler = async (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('Hello'));
      await release.promise;
      res.end(`${chunk(' world')}${usageChunk}data: [DONE]\n\n`);
    };
    const res = await upstream().call(req('chat', { model: 'm', messages: [], stream: true }));
    const it = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(Buffer.from(first.value!).toString()).toBe(chunk('Hello'));
    release.open();
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value).toString();
    expect(rest).toBe(`${chunk(' world')}data: [DONE]\n\n`);
  });

  it('asks for include_usage and strips the usage chunk when the caller did not', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.end(`${chunk('Hi')}${usageChunk}data: [DONE]\n\n`);
    };
    const res = await upstream().call(
      req('chat', { model: 'm', messages: [], stream: true, stream_options: { other: 1 } }),
    );
    expect(stub.requests[0].body.stream_options).toEqual({ other: 1, include_usage: true });
    const text = await readAll(res.body);
    expect(text).toBe(`${chunk('Hi')}data: [DONE]\n\n`);
    expect(await res.usage).toEqual({ inputTokens: 11, outputTokens: 7, images: 0 });
  });

  it('keeps the usage chunk when the caller asked for it', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.end(`${chunk('Hi')}${usageChunk}data: [DONE]\n\n`);
    };
    const body = { model: 'm', prompt: 'x', stream: true, stream_options: { include_usage: true } };
    const res = await upstream().call(req('completions', body));
    expect(await readAll(res.body)).toBe(`${chunk('Hi')}${usageChunk}data: [DONE]\n\n`);
    expect((await res.usage).outputTokens).toBe(7);
  });

  it('reads responses-API usage from response.completed', async () => {
    const ev = (type: string, extra: object) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...extra })}\n\n`;
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(ev('response.created', { response: { usage: null } }));
      res.write(ev('response.output_text.delta', { delta: 'Hello' }));
      res.end(ev('response.completed', { response: { usage: { input_tokens: 21, output_tokens: 2 } } }));
    };
    const res = await upstream().call(req('responses', { model: 'm', input: 'hi', stream: true }));
    expect(stub.requests[0].body.stream_options).toBeUndefined();
    expect(parseSse(await readAll(res.body)).map((e) => e.event)).toEqual([
      'response.created',
      'response.output_text.delta',
      'response.completed',
    ]);
    expect(await res.usage).toEqual({ inputTokens: 21, outputTokens: 2, images: 0 });
  });

  it('client abort cancels the upstream request (the stub sees its connection close)', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('Hello there'));
      // never ends
    };
    const ac = new AbortController();
    const res = await upstream().call(
      req('chat', { model: 'm', messages: [], stream: true }, { signal: ac.signal }),
    );
    const it = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await stub.requests[0].closed;
    expect((await it.next()).done).toBe(true);
    // Upstream never reported usage: output estimated from the 11 characters seen.
    expect(await res.usage).toMatchObject({ outputTokens: 3 });
  });

  it('a consumer that stops reading also closes the upstream request', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('Hello'));
    };
    const res = await upstream().call(req('chat', { model: 'm', messages: [], stream: true }));
    for await (const _ of res.body as AsyncIterable<Uint8Array>) break;
    await stub.requests[0].closed;
    expect((await res.usage).outputTokens).toBe(2);
  });

  it('giving up before reading anything still closes the upstream request and resolves usage', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('Hello'));
    };
    const res = await upstream().call(req('chat', { model: 'm', messages: [], stream: true }));
    const it = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    await it.return?.();
    await stub.requests[0].closed;
    expect(await res.usage).toMatchObject({ outputTokens: 0 });
  });

  it('a mid-stream reset ends with a well-formed error event and partial usage', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('abcdefghij'));
      // Half an event, then the connection dies: the half must not reach the caller.
      res.write('data: {"id":"c1","choi', () => setImmediate(() => res.socket?.destroy()));
    };
    const body = { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(40) }], stream: true };
    const res = await upstream().call(req('chat', body));
    const text = await readAll(res.body);
    const events = parseSse(text);
    expect(text.startsWith(chunk('abcdefghij'))).toBe(true);
    expect(text.slice(chunk('abcdefghij').length)).toMatch(/^data: \{"error":\{[^\n]*\}\}\n\n$/);
    expect(events).toHaveLength(2);
    expect(JSON.parse(events[1].data)).toEqual({
      error: {
        message: expect.stringContaining('interrupted'),
        type: 'api_error',
        code: 'SLUICE_UPSTREAM_ERROR',
        param: null,
      },
    });
    // input: 40 chars / 4 + 4 + 3 framing; output: 10 chars / 4 rounded up
    expect(await res.usage).toEqual({ inputTokens: 17, outputTokens: 3, images: 0 });
  });

  it('a stalled stream hits the body timeout and ends with a timeout error event', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write(chunk('Hi'));
    };
    const u = upstream({ timeouts: { body: '100ms' } });
    const res = await u.call(req('chat', { model: 'm', messages: [], stream: true }));
    const events = parseSse(await readAll(res.body));
    expect(JSON.parse(events.at(-1)!.data).error.code).toBe('SLUICE_UPSTREAM_TIMEOUT');
  });

  it('a responses stream that breaks ends with an `event: error`', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(200, sseHead);
      res.write('event: response.created\ndata: {"type":"response.created"}\n\n', () =>
        setImmediate(() => res.socket?.destroy()),
      );
    };
    const res = await upstream().call(req('responses', { model: 'm', input: 'x', stream: true }));
    const last = parseSse(await readAll(res.body)).at(-1)!;
    expect(last.event).toBe('error');
    expect(JSON.parse(last.data)).toMatchObject({ type: 'error', code: 'SLUICE_UPSTREAM_ERROR' });
  });
});

describe('openai provider: transport failures', () => {
  it('no response headers in time -> UpstreamError(timeout), not before send', async () => {
    stub.handler = () => {};
    const u = upstream({ timeouts: { headers: '100ms' } });
    const err = await u.call(req('chat', { model: 'm', messages: [] })).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ kind: 'timeout', beforeSend: false });
  });

  it('connection refused -> UpstreamError(connect) with beforeSend', async () => {
    const u = upstream({}, `http://127.0.0.1:${await closedPort()}`);
    const err = await u.call(req('chat', { model: 'm', messages: [] })).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ kind: 'connect', beforeSend: true });
    expect(err.message).not.toContain('sk-upstream-secret');
  });

  it('reset before the response -> UpstreamError(reset)', async () => {
    stub.handler = (_r, res) => res.socket?.destroy();
    const err = await upstream()
      .call(req('chat', { model: 'm', messages: [] }))
      .catch((e) => e);
    expect(err).toMatchObject({ kind: 'reset', beforeSend: false });
  });

  it('an already aborted request rejects without being a transport error', async () => {
    stub.handler = (_r, res) => res.writeHead(200).end('{}');
    const ac = new AbortController();
    ac.abort();
    const err = await upstream()
      .call(req('chat', { model: 'm', messages: [] }, { signal: ac.signal }))
      .catch((e) => e);
    expect(err).not.toBeInstanceOf(UpstreamError);
  });
});
