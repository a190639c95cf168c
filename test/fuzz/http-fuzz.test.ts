/**
 * Generated hostile requests against a real `sluice serve` process (mock upstream): malformed and
 * near-valid bodies for every endpoint, odd headers and auth schemes, huge values, invalid UTF-8,
 * arbitrary methods, targets and protocol versions. For every request: never a 5xx, always a
 * well-formed error in the caller's wire format (OpenAI on /v1/*, Anthropic on /v1/messages), never
 * a hang; afterwards the process is up, /healthz answers, and it logged no unhandled error.
 *
 * Fixed seed (FUZZ_SEED, default 42), size FUZZ_RUNS (default 150 per property).
 */
import fc from 'fast-check';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { isWireError } from '../faults/support.js';
import { fuzzParams, fuzzTimeout } from './fuzz-config.js';
import { type RawResult, rawRequest } from './raw-http.js';

let s: SluiceProcess;
let key: string;
let port: number;
const agent = new Agent({ connections: 4 });

beforeAll(async () => {
  const dir = tempDir('sluice-fuzz-');
  const config = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock, replyWords: 6 }]
models: [{ match: "*", upstream: local }]
tiers:
  default: { maxTokens: 4096 }
tasks:
  summarize:
    model: demo-model
    system: "Summarize, {{style}}"
    params: { style: { type: string, enum: [short, long], default: short }, words: { type: integer, min: 1, max: 500 } }
    maxTokens: 50
trustedProxies: ["127.0.0.0/8"]
hardening: { maxBodyBytes: 262144, maxHeaderBytes: 16384, authFailures: { perIp: 1000000, window: 1m } }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  ({ key } = await createKey(s));
  port = Number(new URL(s.url).port);
});
afterAll(async () => {
  await agent.close();
  if (s) {
    expect(await s.stop()).toBe(0);
    // Nothing reached the catch-all error path, nothing crashed.
    expect(s.output()).not.toMatch(/unhandled error|Unhandled|TypeError|RangeError/);
  }
});

const formatOf = (target: string) => (target.startsWith('/v1/messages') ? 'anthropic' : 'openai');

async function healthy() {
  expect(s.proc.exitCode).toBeNull();
  const r = await undiciFetch(`${s.url}/healthz`, { dispatcher: agent });
  expect(r.status).toBe(200);
  await r.arrayBuffer();
}

/** The checks every answer must pass; returns a reason when it does not. */
function verdict(
  target: string,
  status: number,
  contentType: string,
  body: string,
  head = false,
): string | null {
  if (status >= 500) return `5xx (${status}): ${body.slice(0, 300)}`;
  if (head) return null;
  if (status >= 400) {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return `error body is not JSON: ${body.slice(0, 200)}`;
    }
    return isWireError(formatOf(target), json)
      ? null
      : `error body not in ${formatOf(target)} shape: ${body.slice(0, 300)}`;
  }
  if (contentType.includes('text/event-stream')) {
    return body.endsWith('\n\n') ? null : `stream did not end on an event boundary: ${body.slice(-200)}`;
  }
  if (contentType.includes('application/json')) {
    try {
      JSON.parse(body);
      return null;
    } catch {
      return `2xx body is not JSON: ${body.slice(0, 200)}`;
    }
  }
  return null;
}

function rawVerdict(target: string, r: RawResult, head = false): string | null {
  if (r.kind !== 'response') return `no HTTP response (${r.kind}): ${'raw' in r ? r.raw.slice(0, 200) : ''}`;
  return verdict(
    target,
    r.res.status,
    r.res.headers['content-type'] ?? '',
    r.res.body.toString('utf8'),
    head,
  );
}

// --- generators ----------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 4 });
const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1.5, 1e308, -1e308, 2 ** 53 + 2, '1', '', 'true', [], {}),
  fc.array(anyJson, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 3 }),
);
/** Mostly the right type, sometimes anything. */
const field = <T>(ok: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 3, arbitrary: ok }, { weight: 1, arbitrary: weird });
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }), // lone surrogates included
  fc.constantFrom('\u0000', '\u202e', '\ufeff', 'data: [DONE]\n\n', '"}]}', '\\ud800'),
);
const model = fc.constantFrom(
  'demo-model',
  'demo-claude',
  'demo-embed',
  'demo-image',
  'gpt-4o',
  '*',
  ' ',
  'x'.repeat(300),
);
const openaiMessage = fc.record(
  {
    role: field(fc.constantFrom('user', 'system', 'assistant', 'tool', 'developer')),
    content: field(
      fc.oneof(
        text,
        fc.array(fc.record({ type: field(fc.constantFrom('text', 'image_url')), text: field(text) }), {
          maxLength: 3,
        }),
      ),
    ),
    name: field(text),
  },
  { requiredKeys: [] },
);
const common = {
  model: field(model),
  max_tokens: field(fc.integer({ min: 1, max: 10_000 })),
  stream: field(fc.boolean()),
  user: field(text),
};
const bodies: Record<string, fc.Arbitrary<unknown>> = {
  '/v1/chat/completions': fc.record(
    {
      ...common,
      messages: field(fc.array(openaiMessage, { maxLength: 4 })),
      n: field(fc.integer({ min: 1, max: 12 })),
      stream_options: field(fc.record({ include_usage: field(fc.boolean()) })),
      max_completion_tokens: field(fc.integer({ min: 1, max: 10_000 })),
      temperature: field(fc.double()),
      tools: field(fc.array(anyJson, { maxLength: 2 })),
    },
    { requiredKeys: [] },
  ),
  '/v1/messages': fc.record(
    {
      ...common,
      messages: field(fc.array(openaiMessage, { maxLength: 4 })),
      system: field(
        fc.oneof(
          text,
          fc.array(fc.record({ type: fc.constant('text'), text: field(text) }), { maxLength: 2 }),
        ),
      ),
      metadata: field(fc.record({ user_id: field(text) })),
    },
    { requiredKeys: [] },
  ),
  '/v1/completions': fc.record(
    { ...common, prompt: field(fc.oneof(text, fc.array(text, { maxLength: 3 }))) },
    { requiredKeys: [] },
  ),
  '/v1/embeddings': fc.record(
    { model: field(model), input: field(fc.oneof(text, fc.array(text, { maxLength: 3 }))) },
    { requiredKeys: [] },
  ),
  '/v1/images/generations': fc.record(
    {
      model: field(model),
      prompt: field(text),
      n: field(fc.integer({ min: 1, max: 12 })),
      size: field(fc.constantFrom('256x256', '1024x1024', 'huge')),
    },
    { requiredKeys: [] },
  ),
  '/v1/responses': fc.record(
    {
      model: field(model),
      input: field(fc.oneof(text, fc.array(anyJson, { maxLength: 2 }))),
      max_output_tokens: field(fc.integer({ min: 1, max: 10_000 })),
      stream: field(fc.boolean()),
    },
    { requiredKeys: [] },
  ),
  '/v1/tasks/summarize': fc.record(
    {
      input: field(text),
      params: field(
        fc.record(
          { style: field(fc.constantFrom('short', 'long')), words: field(fc.integer()) },
          { requiredKeys: [] },
        ),
      ),
      stream: field(fc.boolean()),
    },
    { requiredKeys: [] },
  ),
  '/sluice/v1/token': fc.record(
    {
      scopes: field(fc.array(text, { maxLength: 3 })),
      scope: field(text),
      audience: field(text),
      expires_in: field(fc.integer()),
      otp: field(text),
    },
    { requiredKeys: [] },
  ),
};
const targets = Object.keys(bodies);

/** Extra unknown fields: passed through untouched, never a reason to fail. */
const withExtras = (v: unknown) =>
  fc
    .dictionary(fc.string({ maxLength: 10 }), anyJson, { maxKeys: 3 })
    .map((extra) => (v && typeof v === 'object' && !Array.isArray(v) ? { ...extra, ...(v as object) } : v));

const enc = (x: unknown) => Buffer.from(JSON.stringify(x) ?? 'null', 'utf8');
/** Body bytes: JSON of the generated value, or a damaged / huge / deep / non-UTF-8 variant. */
const bodyBytes = (target: string): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 6, arbitrary: bodies[target]!.chain(withExtras).map(enc) },
    { weight: 1, arbitrary: anyJson.map(enc) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(bodies[target]!.map(enc), fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([b, i, byte]) => {
          const c = Buffer.from(b);
          if (c.length > 0) c[i % c.length] = byte; // one byte replaced: broken JSON or broken UTF-8
          return c;
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(bodies[target]!.map(enc), fc.nat())
        .map(([b, i]) => b.subarray(0, i % (b.length + 1))),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 1, max: 20_000 })
        .map((d) => Buffer.from(`${'['.repeat(d)}${']'.repeat(d)}`)),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(100_000, 300_000)
        .map((n) => enc({ model: 'demo-model', messages: [{ role: 'user', content: 'é'.repeat(n / 2) }] })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from('\ufeff{"model":"demo-model","messages":[{"role":"user","content":"x"}]}'),
        Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), // overlong '/'
        Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // encoded surrogate
        Buffer.from('{"model":"demo-model","messages":[{"role":"user","content":"\\ud800\\udc00\\udfff"}]}'),
        Buffer.from(
          `{"model":"demo-model","messages":[${'{"role":"user","content":"x"},'.repeat(2000)}{"role":"user"}]}`,
        ),
        Buffer.from(
          '{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"model":"demo-model","messages":[{"role":"user","content":"x"}]}',
        ),
      ),
    },
  );

describe('fuzz: the real HTTP path', () => {
  it(
    'generated bodies on every endpoint: never 5xx, always a well-formed answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc
            .constantFrom(...targets)
            .chain((t) =>
              fc.tuple(
                fc.constant(t),
                bodyBytes(t),
                fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON'),
              ),
            ),
          async ([target, body, contentType]) => {
            const anthropic = target === '/v1/messages';
            const r = await undiciFetch(`${s.url}${target}`, {
              method: 'POST',
              dispatcher: agent,
              headers: {
                ...(anthropic ? { 'x-api-key': key } : { authorization: `Bearer ${key}` }),
                'content-type': contentType,
              },
              body,
            });
            const text = await r.text();
            const why = verdict(target, r.status, r.headers.get('content-type') ?? '', text);
            if (why) throw new Error(`${target}: ${why}`);
          },
        ),
        fuzzParams(2),
      );
      await healthy();
    },
    fuzzTimeout(2),
  );

  it(
    'odd headers, auth schemes and huge values: never 5xx, always a well-formed answer',
    async () => {
      const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}$/);
      const printable = fc.string({ maxLength: 60 }).map((v) => v.replace(/[\r\n]/g, ' '));
      const headerValue = fc.oneof(
        printable,
        fc.uint8Array({ maxLength: 40 }).map((b) =>
          Buffer.from(b)
            .toString('latin1')
            .replace(/[\r\n]/g, ''),
        ),
        fc.integer({ min: 1, max: 30_000 }).map((n) => 'a'.repeat(n)),
        fc.constantFrom(
          'Bearer',
          'Bearer ',
          'bearer  KEY',
          'BEARER KEY',
          'Bearer KEY KEY',
          'Basic dXNlcjpwYXNz',
          'DPoP a.b.c',
          'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'Bearer a.b.c',
          'Bearer sk-sluice-',
          'Bearer sk-sluice-AAAAAAAAAAAA-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',
          'Bearer KEY\u0000',
          'Digest username="x"',
        ),
      );
      const headerName = fc.oneof(
        fc.constantFrom(
          'authorization',
          'x-api-key',
          'content-type',
          'x-forwarded-for',
          'x-request-id',
          'anthropic-version',
          'anthropic-beta',
          'dpop',
          'user-agent',
          'accept',
          'accept-encoding',
          'x-sluice-end-user',
          'expect',
          'upgrade',
          'connection',
          'te',
          'cookie',
        ),
        token,
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(
            '/v1/chat/completions',
            '/v1/messages',
            '/v1/models',
            '/sluice/v1/me',
            '/sluice/v1/token',
          ),
          fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
          fc.boolean(),
          async (target, headers, withKey) => {
            const lines = headers.map(([n, v]) => `${n}: ${v.replaceAll('KEY', key)}\r\n`).join('');
            const body = JSON.stringify({
              model: 'demo-model',
              max_tokens: 5,
              messages: [{ role: 'user', content: 'x' }],
            });
            const method = target === '/v1/models' || target === '/sluice/v1/me' ? 'GET' : 'POST';
            const auth = withKey
              ? target === '/v1/messages'
                ? `x-api-key: ${key}\r\n`
                : `authorization: Bearer ${key}\r\n`
              : '';
            const req =
              `${method} ${target} HTTP/1.1\r\nhost: sluice\r\n${auth}${lines}` +
              (method === 'POST'
                ? `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
                : '\r\n');
            const r = await rawRequest(port, Buffer.from(req, 'latin1'));
            const why = rawVerdict(target, r);
            if (why) throw new Error(`${target} ${JSON.stringify(headers).slice(0, 300)}: ${why}`);
          },
        ),
        fuzzParams(1),
      );
      await healthy();
    },
    fuzzTimeout(1),
  );

  it(
    'arbitrary methods, targets and protocol versions: never 5xx, always a well-formed answer',
    async () => {
      const known = [
        '/v1/chat/completions',
        '/v1/messages',
        '/v1/models',
        '/healthz',
        '/readyz',
        '/sluice/v1/me',
        '/v1/tasks/summarize',
        '/.well-known/jwks.json',
      ];
      const target = fc.oneof(
        fc.constantFrom(...known),
        fc
          .tuple(
            fc.constantFrom(...known),
            fc.constantFrom(
              '/',
              '//',
              '/..',
              '/%2e%2e',
              '?',
              '?a=%zz',
              '#x',
              '%00',
              '%',
              '/%C0%AF',
              ';x',
              '?x=' + 'y'.repeat(5000),
            ),
          )
          .map(([a, b]) => a + b),
        fc.constantFrom(
          '*',
          '/',
          '//v1/models',
          '/v1/../v1/models',
          'http://evil/v1/models',
          '/v1/messages/',
          '/v1/MESSAGES',
          '/v1/tasks/',
          '/v1/tasks/nope',
          '/' + 'a'.repeat(20_000),
        ),
        fc.stringMatching(/^\/[\x21-\x7e]{0,60}$/),
        fc.string({ unit: 'grapheme', maxLength: 20 }).map((x) => `/v1/${x}`),
      );
      const method = fc.oneof(
        fc.constantFrom(
          'GET',
          'POST',
          'PUT',
          'DELETE',
          'PATCH',
          'OPTIONS',
          'HEAD',
          'TRACE',
          'CONNECT',
          'PRI',
          'get',
          'PROPFIND',
          'M-SEARCH',
          'QUERY',
        ),
        fc.stringMatching(/^[A-Z]{1,12}$/),
      );
      const version = fc.constantFrom(
        'HTTP/1.1',
        'HTTP/1.1',
        'HTTP/1.1',
        'HTTP/1.0',
        'HTTP/2.0',
        'HTTP/0.9',
        'HTTP/1.1x',
        '',
      );
      await fc.assert(
        fc.asyncProperty(method, target, version, fc.boolean(), async (m, t, v, withBody) => {
          const body = withBody ? '{"model":"demo-model","messages":[{"role":"user","content":"x"}]}' : '';
          const head =
            `${m} ${t}${v ? ` ${v}` : ''}\r\nhost: sluice\r\nauthorization: Bearer ${key}\r\n` +
            (withBody ? `content-type: application/json\r\ncontent-length: ${body.length}\r\n` : '') +
            'connection: close\r\n\r\n';
          const r = await rawRequest(port, Buffer.from(head + body, 'utf8'), { headRequest: m === 'HEAD' });
          const why = rawVerdict(t, r, m === 'HEAD');
          if (why) throw new Error(`${m} ${t.slice(0, 100)} ${v}: ${why}`);
        }),
        fuzzParams(1),
      );
      await healthy();
    },
    fuzzTimeout(1),
  );
});
