/**
 * The response cache through the real `sluice serve` with the openai SDK, against a loopback stub
 * upstream that counts its calls: a second identical deterministic request is a hit, a streamed hit
 * parses as a valid stream in the SDK, two tenants never share an entry.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { type StubUpstream, startStubUpstream } from '../e2e/stub-upstream.js';

let s: SluiceProcess;
let stub: StubUpstream;
let acme: OpenAI;
let beta: OpenAI;

beforeAll(async () => {
  stub = await startStubUpstream({ chunkDelayMs: 1, chunks: 5 });
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: oai, kind: openai, baseUrl: "${stub.url}", apiKey: "sk-upstream-cache-e2e" }
models:
  - { match: "*", upstream: oai }
tiers:
  default: { scopes: ["*"], models: ["*"] }
cache:
  enabled: true
  ttl: 1m
`,
  );
  s = await startSluice({ config, dataDir: dir });
  const a = await createKey(s, [], 'acme');
  const b = await createKey(s, [], 'beta');
  acme = new OpenAI({ apiKey: a.key, baseURL: `${s.url}/v1`, maxRetries: 0 });
  beta = new OpenAI({ apiKey: b.key, baseURL: `${s.url}/v1`, maxRetries: 0 });
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await stub?.close();
});

const ask = (content: string) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [{ role: 'user' as const, content }],
});

describe('response cache end to end (openai SDK)', () => {
  it('a second identical deterministic request is a hit; the stub counts one call', async () => {
    const before = stub.received.length;
    const first = await acme.chat.completions.create(ask('one')).withResponse();
    expect(first.response.headers.get('x-sluice-cache')).toBe('miss');
    const second = await acme.chat.completions.create(ask('one')).withResponse();
    expect(second.response.headers.get('x-sluice-cache')).toBe('hit');
    expect(second.response.headers.get('age')).toMatch(/^\d+$/);
    expect(second.data.choices[0]!.message.content).toBe('stub reply');
    expect(second.data).toEqual(first.data);
    expect(stub.received.length - before).toBe(1);
  });

  it('a streamed hit parses as a valid stream in the SDK', async () => {
    const before = stub.received.length;
    const read = async () => {
      const { data, response } = await acme.chat.completions
        .create({ ...ask('stream me'), stream: true, stream_options: { include_usage: true } })
        .withResponse();
      let text = '';
      let usage: unknown = null;
      for await (const chunk of data) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      return { text, usage, cache: response.headers.get('x-sluice-cache') };
    };
    const a = await read();
    const b = await read();
    expect(a.cache).toBe('miss');
    expect(b.cache).toBe('hit');
    expect(a.text).toBe('w0 w1 w2 w3 w4 ');
    expect(b.text).toBe(a.text);
    expect(b.usage).toEqual(a.usage);
    expect(stub.received.length - before).toBe(1);
  });

  it('two tenants never share an entry', async () => {
    const before = stub.received.length;
    await acme.chat.completions.create(ask('shared?'));
    const other = await beta.chat.completions.create(ask('shared?')).withResponse();
    expect(other.response.headers.get('x-sluice-cache')).toBe('miss');
    expect(stub.received.length - before).toBe(2);
  });

  it('a request without temperature goes upstream every time', async () => {
    const before = stub.received.length;
    const free = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'free' }] };
    const r = await acme.chat.completions.create(free).withResponse();
    await acme.chat.completions.create(free);
    expect(r.response.headers.get('x-sluice-cache')).toBe('bypass');
    expect(stub.received.length - before).toBe(2);
  });
});
