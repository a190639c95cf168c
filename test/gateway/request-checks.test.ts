import fc from 'fast-check';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import type { Refusal } from '../../src/core/errors.js';
import { checkBody, checkShape, hardenJsonParser, MAX_COUNT } from '../../src/gateway/request-checks.js';

const limits = { maxDepth: 5, maxArray: 10, maxString: 20 };
const chat = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
const refusal = (r: unknown) => r as Refusal;

describe('checkShape', () => {
  it('bounds depth, array length, string length and key length', () => {
    expect(checkShape({ a: [[['x']]] }, limits)).toBe(true);
    expect(checkShape([[[[[[1]]]]]], limits)).toBe(false);
    expect(checkShape({ a: Array(11).fill(0) }, limits)).toBe(false);
    expect(checkShape({ a: 'x'.repeat(21) }, limits)).toBe(false);
    expect(checkShape({ ['k'.repeat(21)]: 1 }, limits)).toBe(false);
  });

  it('survives a nesting far deeper than the stack (iterative walk)', () => {
    let v: unknown = 1;
    for (let i = 0; i < 200_000; i++) v = [v];
    expect(checkShape(v, { ...limits, maxDepth: 64 })).toBe(false);
  });

  it('agrees with a recursive reference on any JSON value', () => {
    const ref = (v: unknown, d: number): boolean => {
      if (typeof v === 'string') return v.length <= limits.maxString;
      if (v === null || typeof v !== 'object') return true;
      if (d > limits.maxDepth) return false;
      if (Array.isArray(v)) return v.length <= limits.maxArray && v.every((x) => ref(x, d + 1));
      return Object.entries(v).every(([k, x]) => k.length <= limits.maxString && ref(x, d + 1));
    };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => checkShape(v, limits) === ref(v, 1)),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('checkBody', () => {
  it('accepts a valid body and passes unknown fields through untouched', () => {
    const body = { ...chat, stream: true, logit_bias: { 1: 2 }, x_vendor: [1] };
    expect(checkBody('chat', body)).toEqual({ model: 'm', stream: true });
    expect(body).toEqual({ ...chat, stream: true, logit_bias: { 1: 2 }, x_vendor: [1] });
  });

  it.each([
    ['a non-object body', 'chat', [chat], undefined],
    ['a missing model', 'chat', { messages: chat.messages }, 'model'],
    ['a model of 257 characters', 'chat', { ...chat, model: 'x'.repeat(257) }, 'model'],
    ['a non-boolean stream', 'chat', { ...chat, stream: 'true' }, 'stream'],
    ['a fractional max_tokens', 'chat', { ...chat, max_tokens: 1.5 }, 'max_tokens'],
    ['an absurd max_tokens', 'chat', { ...chat, max_tokens: 1e300 }, 'max_tokens'],
    ['n above 2^31-1', 'chat', { ...chat, n: MAX_COUNT + 1 }, 'n'],
    ['a string stream_options', 'chat', { ...chat, stream_options: 'x' }, 'stream_options'],
    ['a message without a role', 'chat', { model: 'm', messages: [{ content: 'x' }] }, 'messages'],
    [
      'an Anthropic message that is not an object',
      'messages',
      { model: 'm', max_tokens: 5, messages: ['hi'] },
      'messages',
    ],
    ['an Anthropic body without max_tokens', 'messages', chat, 'max_tokens'],
    ['a completions body without a prompt', 'completions', { model: 'm' }, 'prompt'],
    ['an embeddings input of the wrong type', 'embeddings', { model: 'm', input: 3 }, 'input'],
    ['an empty image prompt', 'images', { model: 'm', prompt: '' }, 'prompt'],
    ['a responses body without input', 'responses', { model: 'm' }, 'input'],
  ] as const)('refuses %s, naming the field', (_name, endpoint, body, param) => {
    const r = refusal(checkBody(endpoint, body));
    expect(r.code).toBe('SLUICE_BAD_REQUEST');
    expect(r.param).toBe(param);
  });

  it('never throws, whatever the body', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('chat', 'messages', 'completions', 'embeddings', 'images', 'responses' as const),
        fc.anything(),
        (endpoint, body) => {
          const r = checkBody(endpoint, body);
          return 'code' in r ? r.code === 'SLUICE_BAD_REQUEST' : typeof r.model === 'string';
        },
      ),
      { seed: 42, numRuns: 1000 },
    );
  });
});

describe('the JSON parser', () => {
  const hardening = ConfigSchema.parse({
    upstreams: [{ name: 'm', kind: 'mock' }],
    models: [{ match: '*', upstream: 'm' }],
    tiers: { default: {} },
    hardening: { maxJsonDepth: 8, maxArrayLength: 100, maxStringLength: 1000 },
  }).hardening;
  const app = Fastify();
  hardenJsonParser(app, hardening);
  app.setErrorHandler((err: Error & { code?: string }, _req, reply) =>
    reply.code(400).send({ code: err.code }),
  );
  app.post('/', async (req) => ({ ok: true, body: req.body }));
  const post = (payload: string | Buffer, type = 'application/json') =>
    app.inject({ method: 'POST', url: '/', headers: { 'content-type': type }, payload });

  it.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'SLUICE_BAD_UTF8'],
    ['an encoded surrogate', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), 'SLUICE_BAD_UTF8'],
    ['truncated JSON', '{"a":', 'SLUICE_BAD_JSON'],
    ['an empty body', '', 'SLUICE_BAD_JSON'],
    ['nesting past the cap', `${'['.repeat(9)}${']'.repeat(9)}`, 'SLUICE_JSON_TOO_DEEP'],
    ['an array past the cap', JSON.stringify(Array(101).fill(0)), 'SLUICE_JSON_TOO_DEEP'],
  ])('refuses %s', async (_name, payload, code) => {
    const r = await post(payload);
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe(code);
  });

  it('parses valid JSON, escaped lone surrogates included', async () => {
    const r = await post('{"a":"\\ud800","b":"a constructor has a prototype"}');
    expect(r.statusCode).toBe(200);
    const body = r.json().body;
    expect(body.a).toBe('\ud800');
  });

  // Issue 10: a body with prototype keys used to be forwarded; now it is refused (and nothing is polluted).
  it('refuses __proto__, constructor and prototype keys at any depth', async () => {
    for (const raw of [
      '{"__proto__":{"x":1}}',
      '{"a":[{"constructor":{"prototype":{"x":1}}}]}',
      '{"\\u005f_proto__":1}',
    ]) {
      const r = await post(raw);
      expect(r.statusCode).toBe(400);
      expect(r.json().code).toBe('SLUICE_BAD_REQUEST');
    }
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('refuses other media types', async () => {
    const r = await post('x', 'text/plain');
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('FST_ERR_CTP_INVALID_MEDIA_TYPE');
  });
});
