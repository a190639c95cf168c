/**
 * The Batches and Files APIs of both vendors with the real SDKs (issue 15): `files.create`,
 * `batches.create/retrieve` and the output file on the openai client; `messages.batches.create`,
 * `retrieve` and `results` on the Anthropic client, against `sluice serve` on the embedded default
 * (the mock answers). Ids are the creating tenant's only; a batch's declared size is charged to the
 * limits of its action.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../harness.js';
import { type ClientEnv, startClients } from './support.js';

let env: ClientEnv;
let limited: ClientEnv;
beforeAll(async () => {
  env = await startClients();
  limited = await startClients(`upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: batch-requests, requests: 5, window: 1h, actions: ["batches.create", "messages.batches.create"] }
`);
}, 120_000);
afterAll(async () => {
  await Promise.all([env?.s.stop(), limited?.s.stop()]);
});

const jsonl = (n: number, model = 'demo-model') =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `req-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 100 },
    }),
  ).join('\n');
const msgRequests = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    custom_id: `m-${i}`,
    params: {
      model: 'claude-demo',
      max_tokens: 100,
      messages: [{ role: 'user' as const, content: `q ${i}` }],
    },
  }));

describe('openai Files and Batches', () => {
  it('files.create, batches.create, batches.retrieve and the output file', async () => {
    const c = new OpenAI({ baseURL: env.v1, apiKey: env.key, maxRetries: 0 });
    const f = await c.files.create({
      file: await toFile(Buffer.from(jsonl(3)), 'in.jsonl'),
      purpose: 'batch',
    });
    expect(f).toMatchObject({
      object: 'file',
      purpose: 'batch',
      filename: 'in.jsonl',
      bytes: jsonl(3).length,
    });
    const b = await c.batches.create({
      input_file_id: f.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(b).toMatchObject({
      object: 'batch',
      input_file_id: f.id,
      request_counts: { total: 3, completed: 3, failed: 0 },
    });
    const again = await c.batches.retrieve(b.id);
    expect(again.status).toBe('completed');
    const out = await (await c.files.content(again.output_file_id!)).text();
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(['req-0', 'req-1', 'req-2']);
    expect(lines[0].response.status_code).toBe(200);
    expect((await c.files.retrieve(f.id)).id).toBe(f.id);
    // an ended batch is answered as it is on cancel; a deleted file is gone
    expect((await c.batches.cancel(b.id)).status).toBe('completed');
    expect((await c.batches.list()).data.map((x) => x.id)).toContain(b.id);
    expect(await c.files.delete(f.id)).toMatchObject({ id: f.id, deleted: true });
    await expect(c.files.retrieve(f.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("another tenant's key gets 404 for the ids, and a batch naming a missing file is a 404 in OpenAI's shape", async () => {
    const c = new OpenAI({ baseURL: env.v1, apiKey: env.key, maxRetries: 0 });
    const f = await c.files.create({
      file: await toFile(Buffer.from(jsonl(1)), 'x.jsonl'),
      purpose: 'batch',
    });
    const b = await c.batches.create({
      input_file_id: f.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const { key } = await createKey(env.s, [], 'other-co');
    const other = new OpenAI({ baseURL: env.v1, apiKey: key, maxRetries: 0 });
    await expect(other.files.retrieve(f.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.batches.retrieve(b.id)).rejects.toMatchObject({ status: 404 });
    expect((await other.files.list()).data).toEqual([]);
    const missing = await other.batches
      .create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing.message).toContain(`no input file "${f.id}"`);
  });
});

describe('Anthropic Message Batches', () => {
  it('messages.batches.create, retrieve and results', async () => {
    const c = new Anthropic({ baseURL: env.origin, apiKey: env.key, maxRetries: 0 });
    const b = await c.messages.batches.create({ requests: msgRequests(2) });
    expect(b).toMatchObject({ type: 'message_batch', processing_status: 'ended' });
    expect(b.request_counts.succeeded).toBe(2);
    expect((await c.messages.batches.retrieve(b.id)).id).toBe(b.id);
    const ids: string[] = [];
    for await (const r of await c.messages.batches.results(b.id)) {
      expect(r.result.type).toBe('succeeded');
      ids.push(r.custom_id);
    }
    expect(ids).toEqual(['m-0', 'm-1']);
    expect((await c.messages.batches.cancel(b.id)).id).toBe(b.id);
    expect((await c.messages.batches.list()).data.map((x) => x.id)).toContain(b.id);
    expect(await c.messages.batches.delete(b.id)).toMatchObject({ id: b.id, type: 'message_batch_deleted' });
    await expect(c.messages.batches.retrieve(b.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("a bad batch is a 400 in Anthropic's shape naming the request", async () => {
    const c = new Anthropic({ baseURL: env.origin, apiKey: env.key, maxRetries: 0 });
    const e = await c.messages.batches
      .create({ requests: [{ custom_id: 'a', params: { max_tokens: 10, messages: [] } as never }] })
      .catch((x) => x);
    expect(e).toBeInstanceOf(Anthropic.BadRequestError);
    expect(e.message).toContain('requests[0].params names no model');
  });
});

describe('limits on the declared size', () => {
  it('a batch costs as many requests as it holds: 3 pass, 3 more do not fit 5 an hour, 6 never fit', async () => {
    const a = new Anthropic({ baseURL: limited.origin, apiKey: limited.key, maxRetries: 0 });
    await a.messages.batches.create({ requests: msgRequests(3) });
    const e = await a.messages.batches.create({ requests: msgRequests(3) }).catch((x) => x);
    expect(e).toBeInstanceOf(Anthropic.RateLimitError);
    const o = new OpenAI({ baseURL: limited.v1, apiKey: limited.key, maxRetries: 0 });
    const f = await o.files.create({
      file: await toFile(Buffer.from(jsonl(6)), 'big.jsonl'),
      purpose: 'batch',
    });
    const never = await o.batches
      .create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((x) => x);
    expect(never).toBeInstanceOf(OpenAI.RateLimitError);
    expect(never.error?.type ?? never.type).toBe('insufficient_quota');
    // 2 still fit (3 of 5 used)
    const f2 = await o.files.create({
      file: await toFile(Buffer.from(jsonl(2)), 'ok.jsonl'),
      purpose: 'batch',
    });
    const ok = await o.batches.create({
      input_file_id: f2.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(ok.request_counts?.total).toBe(2);
  });
});
