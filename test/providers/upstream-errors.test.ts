import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSchema } from '../../src/config/schema.js';
import type { Endpoint, UpstreamRequest, UpstreamResponse } from '../../src/core/ports.js';
import { AnthropicUpstream, type AnthropicUpstreamConfig } from '../../src/providers/anthropic.js';
import { CircuitBreaker } from '../../src/providers/circuit-breaker.js';
import { GuardedUpstream } from '../../src/providers/index.js';
import { OpenAIUpstream, type OpenAIUpstreamConfig } from '../../src/providers/openai.js';
import { mapUpstreamError, REDACTED, redactCredentials } from '../../src/providers/upstream-errors.js';
import { readAll, type Stub, startStub } from './stub-server.js';

const KEY = 'sk-upstream-9f8e7d6c5b4a39281706';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const bytes = (s: unknown) => Buffer.from(typeof s === 'string' ? s : JSON.stringify(s));

describe('redactCredentials', () => {
  it('redacts the configured key, sk- keys, bearer tokens, JWTs and AWS keys', () => {
    const text = `key ${KEY} other sk-proj-abcdefghij1234 hdr Bearer abc.def-ghi_123 jwt ${JWT} aws AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`;
    const out = redactCredentials(text, ['my-custom-upstream-token-77']);
    for (const s of [
      KEY,
      'sk-proj-abcdefghij1234',
      'abc.def-ghi_123',
      JWT,
      'AKIAIOSFODNN7EXAMPLE',
      'wJalrXUtnFEMI',
    ]) {
      expect(out).not.toContain(s);
    }
    expect(out).toContain(REDACTED);
    expect(redactCredentials('say my-custom-upstream-token-77 now', ['my-custom-upstream-token-77'])).toBe(
      `say ${REDACTED} now`,
    );
  });

  it('leaves ordinary upstream messages alone', () => {
    const m = "Invalid value for 'temperature': must be between 0 and 2 (model gpt-4o-mini).";
    expect(redactCredentials(m, [KEY])).toBe(m);
  });
});

describe('mapUpstreamError', () => {
  const base = { rateHeaders: {}, upstream: 'u', secrets: [KEY] };

  it('5xx -> 502 SLUICE_UPSTREAM_ERROR, no upstream text in public fields; log excerpt redacted', () => {
    const r = mapUpstreamError({ ...base, status: 500, body: bytes({ error: { message: `boom ${KEY}` } }) });
    expect(r.code).toBe('SLUICE_UPSTREAM_ERROR');
    expect(r.detail).toBeUndefined();
    expect(r.message).toBeUndefined();
    expect(r.internal).toContain('boom');
    expect(r.internal).not.toContain(KEY);
  });

  it('401/403 -> 502, never the upstream body, not even in the log excerpt', () => {
    for (const status of [401, 403]) {
      const r = mapUpstreamError({
        ...base,
        status,
        body: bytes({ error: { message: `Incorrect API key ${KEY}` } }),
      });
      expect(r.code).toBe('SLUICE_UPSTREAM_ERROR');
      expect(JSON.stringify(r)).not.toContain('Incorrect');
    }
  });

  it('429 keeps the retry time (retry-after-ms wins, rounded up to seconds)', () => {
    const a = mapUpstreamError({
      ...base,
      status: 429,
      rateHeaders: { 'retry-after': '7' },
      body: bytes('{}'),
    });
    expect(a.code).toBe('SLUICE_UPSTREAM_RATE_LIMITED');
    expect(a.headers).toEqual({ 'retry-after': '7' });
    const b = mapUpstreamError({
      ...base,
      status: 429,
      rateHeaders: { 'retry-after-ms': '1500' },
      body: bytes(''),
    });
    expect(b.headers).toEqual({ 'retry-after-ms': '1500', 'retry-after': '2' });
    const c = mapUpstreamError({
      ...base,
      status: 429,
      rateHeaders: { 'retry-after': `x ${KEY}` },
      body: bytes(''),
    });
    expect(c.headers).toEqual({});
  });

  it("4xx -> 400 with the upstream's message only when it cannot carry a credential", () => {
    const clean = mapUpstreamError({
      ...base,
      status: 404,
      body: bytes({ error: { message: 'The model `x` does not exist' } }),
    });
    expect(clean).toMatchObject({ code: 'SLUICE_UPSTREAM_REJECTED', detail: 'The model `x` does not exist' });
    for (const msg of [`bad header ${KEY}`, 'Authorization: Bearer abcdefghijk', `token ${JWT}`]) {
      const r = mapUpstreamError({ ...base, status: 422, body: bytes({ error: { message: msg } }) });
      expect(r.code).toBe('SLUICE_UPSTREAM_REJECTED');
      expect(r.detail).toBeUndefined();
      expect(r.internal).not.toContain(KEY);
    }
  });
});

describe('upstream error answers through a loopback stub', () => {
  let stub: Stub;
  const open: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    stub = await startStub();
  });
  afterAll(async () => {
    await stub.close();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((u) => u.close()));
  });

  function openai(): OpenAIUpstream {
    const cfg = UpstreamSchema.parse({
      name: 'oai',
      kind: 'openai',
      baseUrl: `${stub.origin}/v1`,
      apiKey: KEY,
    });
    const u = new OpenAIUpstream(cfg as OpenAIUpstreamConfig);
    open.push(u);
    return u;
  }
  function anthropic(): AnthropicUpstream {
    const cfg = UpstreamSchema.parse({ name: 'ant', kind: 'anthropic', baseUrl: stub.origin, apiKey: KEY });
    const u = new AnthropicUpstream(cfg as AnthropicUpstreamConfig);
    open.push(u);
    return u;
  }
  const req = (endpoint: Endpoint, stream = false): UpstreamRequest => ({
    endpoint,
    body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 },
    stream,
    signal: new AbortController().signal,
    requestId: 'r1',
    headers: {},
  });
  /** Everything the gateway may put on the wire: status, headers and body. */
  async function callerView(res: UpstreamResponse): Promise<string> {
    return JSON.stringify({ status: res.status, headers: res.headers }) + (await readAll(res.body));
  }

  it('a 401 body echoing the upstream key never reaches the caller-facing value (stream and not, both providers)', async () => {
    stub.handler = (r, res) => {
      res.writeHead(401, { 'content-type': 'application/json', 'x-echo': r.headers.authorization ?? '' });
      res.end(
        JSON.stringify({
          error: { message: `Incorrect API key provided: ${KEY}`, type: 'invalid_request_error' },
        }),
      );
    };
    for (const [u, endpoint] of [
      [openai(), 'chat'],
      [anthropic(), 'messages'],
    ] as const) {
      for (const stream of [false, true]) {
        const res = await u.call(req(endpoint, stream));
        const seen = await callerView(res);
        expect(seen).not.toContain(KEY);
        expect(seen).not.toContain('sk-upstream');
        expect(seen).not.toContain('Incorrect');
        expect(res.status).toBe(502);
        expect(res.upstreamStatus).toBe(401);
        expect(res.refusal?.code).toBe('SLUICE_UPSTREAM_ERROR');
        expect(seen).toContain('SLUICE_UPSTREAM_ERROR');
      }
    }
  });

  it('a 500 body is not passed through: 502 in the caller format', async () => {
    stub.handler = (_r, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('Traceback (most recent call last): internal host db-7.corp');
    };
    const o = await openai().call(req('chat'));
    const body = JSON.parse(await readAll(o.body));
    expect(o.status).toBe(502);
    expect(body.error.code).toBe('SLUICE_UPSTREAM_ERROR');
    expect(JSON.stringify(body)).not.toContain('Traceback');
    const a = await anthropic().call(req('messages'));
    const ab = JSON.parse(await readAll(a.body));
    expect(a.status).toBe(502);
    expect(ab).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect(JSON.stringify(ab)).not.toContain('Traceback');
  });

  it("a 429 keeps the upstream's retry time in Sluice's shape", async () => {
    stub.handler = (_r, res) => {
      res.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': '12',
        'retry-after-ms': '11500',
      });
      res.end(JSON.stringify({ error: { message: 'Rate limit reached for org-secret', type: 'requests' } }));
    };
    const res = await openai().call(req('chat', true));
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('12');
    expect(res.headers['retry-after-ms']).toBe('11500');
    const body = JSON.parse(await readAll(res.body));
    expect(body.error.code).toBe('SLUICE_UPSTREAM_RATE_LIMITED');
    expect(JSON.stringify(body)).not.toContain('org-secret');
    // Upstream feedback (admission) still sees the upstream's own rate headers.
    expect(res.rateHeaders['retry-after']).toBe('12');
  });

  it("a 400 keeps a harmless upstream message; the caller's fault does not open the breaker, a 401 neither", async () => {
    stub.handler = (_r, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: { message: "Unsupported parameter: 'foo'", type: 'invalid_request_error' } }),
      );
    };
    const g = new GuardedUpstream(openai(), new CircuitBreaker({ now: () => 0 }, { failureThreshold: 1 }));
    const res = await g.call(req('chat'));
    expect(res.status).toBe(400);
    expect(res.headers['x-should-retry']).toBe('false');
    expect(JSON.parse(await readAll(res.body)).error).toMatchObject({
      code: 'SLUICE_UPSTREAM_REJECTED',
      message: "The upstream model service rejected the request: Unsupported parameter: 'foo'",
    });
    stub.handler = (_r, r) => r.writeHead(401, { 'content-type': 'application/json' }).end('{}');
    expect((await g.call(req('chat'))).status).toBe(502);
    expect(g.breakerState()).toBe('closed');
    stub.handler = (_r, r) => r.writeHead(503).end();
    await g.call(req('chat'));
    expect(g.breakerState()).toBe('open');
  });
});
