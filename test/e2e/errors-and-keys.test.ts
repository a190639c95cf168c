/**
 * Error codes through the real HTTP path, key lifecycle (revoked, expired, rotated), client
 * disconnect mid-stream, and secrets hygiene (no key secret or upstream credential in output).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';
import { type StubUpstream, startStubUpstream } from './stub-upstream.js';

const UPSTREAM_SECRET = 'sk-upstream-THIS-MUST-NEVER-LEAK-123';
let s: SluiceProcess;
let stub: StubUpstream;
let key: string;
let keyId: string;
const secrets: string[] = [UPSTREAM_SECRET];

beforeAll(async () => {
  // The CLI reads the same config, so it needs the variable too.
  process.env.STUB_KEY = UPSTREAM_SECRET;
  stub = await startStubUpstream({ chunkDelayMs: 40, chunks: 50 });
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: stub, kind: openai, baseUrl: "${stub.url}", apiKey: "\${STUB_KEY}" }
  - { name: local, kind: mock, tokenDelay: 5ms, replyWords: 40 }
models:
  - { match: "stub-*", upstream: stub }
  - { match: "*", upstream: local }
tiers:
  default: { scopes: ["*"], models: ["*"] }
  small: { scopes: ["chat.create"], models: ["demo-*"], maxTokens: 100 }
hardening: { maxBodyBytes: 65536 }
`,
  );
  s = await startSluice({ config, dataDir: dir, env: { STUB_KEY: UPSTREAM_SECRET } });
  ({ key, id: keyId } = await createKey(s));
  secrets.push(key.split('-').pop()!);
});
afterAll(async () => {
  await s?.stop();
  await stub?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('error catalogue through the real HTTP path', () => {
  const chat = { model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] };
  it.each([
    [
      'no key',
      () =>
        fetch(`${s.url}/v1/chat/completions`, {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
        }),
      401,
      'SLUICE_MISSING_KEY',
    ],
    [
      'malformed key',
      () => post('/v1/chat/completions', chat, { authorization: 'Bearer nonsense' }),
      401,
      'SLUICE_INVALID_KEY',
    ],
    ['bad JSON', () => post('/v1/chat/completions', '{"model":'), 400, 'SLUICE_BAD_JSON'],
    ['missing model', () => post('/v1/chat/completions', { messages: [] }), 400, 'SLUICE_BAD_REQUEST'],
    [
      'bad max_tokens',
      () => post('/v1/chat/completions', { ...chat, max_tokens: -1 }),
      400,
      'SLUICE_BAD_REQUEST',
    ],
    [
      'body over the cap',
      () => post('/v1/chat/completions', { ...chat, pad: 'x'.repeat(70_000) }),
      413,
      'SLUICE_BODY_TOO_LARGE',
    ],
    ['unknown path', () => post('/v1/nope', chat), 404, 'SLUICE_NOT_FOUND'],
    [
      'deep JSON',
      () => post('/v1/chat/completions', `${'['.repeat(100)}${']'.repeat(100)}`),
      400,
      'SLUICE_JSON_TOO_DEEP',
    ],
    [
      'bad UTF-8',
      () =>
        fetch(`${s.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        }),
      400,
      'SLUICE_BAD_UTF8',
    ],
    [
      'wrong media type',
      () => post('/v1/chat/completions', 'x', { 'content-type': 'text/plain' }),
      415,
      'SLUICE_UNSUPPORTED_MEDIA_TYPE',
    ],
  ])('%s', async (_name, call, status, code) => {
    const r = await call();
    expect(r.status).toBe(status);
    const body = await r.json();
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error).toMatchObject({ message: expect.any(String), type: expect.any(String), code });
  });

  it('Anthropic-shaped errors on /v1/messages', async () => {
    const r = await post('/v1/messages', '{oops', { authorization: '', 'x-api-key': key });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: expect.stringContaining('SLUICE_BAD_JSON') },
    });
  });

  it('upstream failure is 502 and names no upstream secret', async () => {
    const dead = await startSluice({
      config: writeConfig(
        tempDir(),
        `upstreams:\n  - { name: gone, kind: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: "${UPSTREAM_SECRET}" }\nmodels: [{ match: "*", upstream: gone }]\ntiers: { default: {} }\n`,
      ),
    });
    try {
      const k = await createKey(dead);
      const r = await fetch(`${dead.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(chat),
      });
      expect(r.status).toBe(502);
      const text = await r.text();
      expect(JSON.parse(text).error.code).toBe('SLUICE_UPSTREAM_ERROR');
      expect(text).not.toContain(UPSTREAM_SECRET);
      expect(dead.output()).not.toContain(UPSTREAM_SECRET);
    } finally {
      await dead.stop();
    }
  });
});

describe('key lifecycle', () => {
  it('a revoked key is refused with 401 SLUICE_KEY_REVOKED (within the cache second)', async () => {
    const k = await createKey(s);
    const client = new OpenAI({ apiKey: k.key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    await client.chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] });
    const r = await cli(['keys', 'revoke', k.id, '--data-dir', s.dataDir, '--config', s.configFile!]);
    expect(r.code).toBe(0);
    // The gateway caches a key record for a second: poll until the revocation is seen.
    const refused = await waitFor(
      () =>
        client.chat.completions
          .create({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] })
          .then(
            () => undefined,
            (err: unknown) => ({ err }),
          ),
      { what: 'the revoked key to be refused' },
    );
    expect(refused.err).toMatchObject({
      status: 401,
      code: 'SLUICE_KEY_REVOKED',
    });
  });

  it('an expired key is refused with SLUICE_KEY_EXPIRED', async () => {
    // The shortest expiry a duration can say; poll for the refusal rather than sleep past it.
    const k = await createKey(s, ['--expires', '1ms']);
    const r = await waitFor(
      async () => {
        const res = await post(
          '/v1/chat/completions',
          { model: 'demo-model', messages: [{ role: 'user', content: 'x' }] },
          { authorization: `Bearer ${k.key}` },
        );
        if (res.status === 401) return res;
        await res.arrayBuffer();
        return undefined;
      },
      { what: 'the expired key to be refused' },
    );
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('SLUICE_KEY_EXPIRED');
  });

  it('rotation: both secrets work during the grace period, the old one fails after it', async () => {
    const k = await createKey(s);
    const r = await cli([
      'keys',
      'rotate',
      k.id,
      '--grace',
      '2s',
      '--json',
      '--data-dir',
      s.dataDir,
      '--config',
      s.configFile!,
    ]);
    const rotated = JSON.parse(r.stdout).key as string;
    secrets.push(rotated.split('-').pop()!, k.key.split('-').pop()!);
    const call = (kk: string) =>
      post(
        '/v1/chat/completions',
        { model: 'demo-model', messages: [{ role: 'user', content: 'x' }] },
        { authorization: `Bearer ${kk}` },
      );
    // Cached copies of the old record expire within a second: poll until the new secret is accepted.
    await waitFor(
      async () => {
        const res = await call(rotated);
        await res.arrayBuffer();
        return res.status === 200;
      },
      { what: 'the rotated secret to be accepted' },
    );
    expect((await call(k.key)).status).toBe(200);
    // Then the grace period (2 s) ends: poll until the old secret is refused.
    const old = await waitFor(
      async () => {
        const res = await call(k.key);
        if (res.status === 401) return res;
        await res.arrayBuffer();
        return undefined;
      },
      { what: 'the old secret to be refused after its grace period' },
    );
    expect(old.status).toBe(401);
    expect((await old.json()).error.code).toBe('SLUICE_KEY_EXPIRED');
    expect((await call(rotated)).status).toBe(200);
  });

  it('keys list and show never print a secret or hash', async () => {
    const list = await cli(['keys', 'list', '--json', '--data-dir', s.dataDir, '--config', s.configFile!]);
    const show = await cli(['keys', 'show', keyId, '--data-dir', s.dataDir, '--config', s.configFile!]);
    for (const out of [list.stdout, show.stdout]) {
      expect(out).toContain(keyId);
      for (const sec of secrets) expect(out).not.toContain(sec);
      expect(out).not.toMatch(/[0-9a-f]{64}/);
    }
  });
});

describe('forwarding', () => {
  it('streams arrive incrementally, not buffered', async () => {
    const r = await post('/v1/chat/completions', {
      model: 'stub-1',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    const reader = r.body!.getReader();
    const t0 = Date.now();
    const first = await reader.read();
    const tFirst = Date.now() - t0;
    let rest = 0;
    for (;;) {
      const c = await reader.read();
      if (c.done) break;
      rest++;
    }
    const total = Date.now() - t0;
    expect(first.value!.length).toBeGreaterThan(0);
    // 50 chunks 40 ms apart: the first must come long before the end (buffering would make them equal).
    expect(rest).toBeGreaterThan(5);
    expect(tFirst).toBeLessThan(total / 2);
  });

  it('Sluice adds include_usage upstream and strips the usage chunk the caller did not ask for', async () => {
    const before = stub.received.length;
    const r = await post('/v1/chat/completions', {
      model: 'stub-1',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    const text = await r.text();
    expect(stub.received[before]!.body.stream_options).toEqual({ include_usage: true });
    expect(text).not.toContain('"usage":{');
    expect(text).toContain('[DONE]');
  });

  it('a client that disconnects mid-stream aborts the upstream request', async () => {
    const abortedBefore = stub.aborted;
    const ac = new AbortController();
    const r = await post(
      '/v1/chat/completions',
      { model: 'stub-1', stream: true, messages: [{ role: 'user', content: 'x' }] },
      {},
    );
    const reader = r.body!.getReader();
    await reader.read();
    await reader.cancel();
    ac.abort();
    for (let i = 0; i < 50 && stub.aborted === abortedBefore; i++)
      await new Promise((res) => setTimeout(res, 50));
    expect(stub.aborted).toBe(abortedBefore + 1);
  });

  it('upstream credentials are Sluice’s, never the caller’s, and never come back', async () => {
    const before = stub.received.length;
    const r = await post(
      '/v1/chat/completions',
      { model: 'stub-1', messages: [{ role: 'user', content: 'x' }] },
      { 'x-api-key': 'caller-extra' },
    );
    expect(r.status).toBe(200);
    const got = stub.received[before]!.headers;
    expect(got.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
    expect(JSON.stringify(got)).not.toContain(key);
    expect(JSON.stringify(got)).not.toContain('caller-extra');
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(JSON.stringify([...r.headers])).not.toContain(UPSTREAM_SECRET);
  });

  it('tier bounds on max_tokens and scope/model refusals', async () => {
    const k = await createKey(s, [], 'acme', 'small');
    const call = (body: unknown, path = '/v1/chat/completions') =>
      post(path, body, { authorization: `Bearer ${k.key}` });
    const over = await call({
      model: 'demo-model',
      max_tokens: 500,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(over.status).toBe(400);
    expect((await over.json()).error.code).toBe('SLUICE_PARAM_OUT_OF_RANGE');
    const model = await call({ model: 'stub-1', messages: [{ role: 'user', content: 'x' }] });
    expect(model.status).toBe(403);
    expect((await model.json()).error).toMatchObject({
      code: 'SLUICE_MODEL_DENIED',
      message: expect.stringContaining('stub-1'),
    });
    const scope = await call({ model: 'demo-embed', input: 'x' }, '/v1/embeddings');
    expect(scope.status).toBe(403);
    expect((await scope.json()).error).toMatchObject({
      code: 'SLUICE_SCOPE_DENIED',
      message: expect.stringContaining('embeddings.create'),
    });
  });
});

describe('secrets hygiene', () => {
  it('nothing the process wrote contains a key secret or the upstream credential', () => {
    const out = s.output();
    expect(out.length).toBeGreaterThan(0);
    for (const sec of secrets) expect(out).not.toContain(sec);
  });
});
