/**
 * Files and Batches through a real-shaped OpenAI upstream (a stub on loopback): the upstream's key is
 * sent, the caller's never; the batch's size is read from the upstream's copy of the input file;
 * lists keep only the caller's tenant's ids and a foreign id never reaches the upstream.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../harness.js';
import { type ClientEnv, startClients } from './support.js';

const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];
const INPUT = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-x', messages: [] } })}\n`;
let stub: Server;
let env: ClientEnv;

async function read(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  stub = createServer(async (req, res) => {
    const body = await read(req);
    seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
    const json = (v: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    if (req.method === 'POST' && req.url === '/v1/files')
      return json({
        id: 'file-up1',
        object: 'file',
        bytes: 1,
        created_at: 1,
        filename: 'in.jsonl',
        purpose: 'batch',
        status: 'processed',
      });
    if (req.url === '/v1/files/file-up1/content')
      return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(INPUT);
    if (req.method === 'POST' && req.url === '/v1/batches')
      return json({
        id: 'batch_up1',
        object: 'batch',
        endpoint: '/v1/chat/completions',
        input_file_id: 'file-up1',
        completion_window: '24h',
        status: 'validating',
        output_file_id: 'file-out1',
        created_at: 1,
        request_counts: { total: 1, completed: 0, failed: 0 },
      });
    if (req.method === 'GET' && req.url?.startsWith('/v1/files'))
      return json({
        object: 'list',
        data: [{ id: 'file-up1' }, { id: 'file-out1' }, { id: 'file-foreign' }],
        has_more: false,
      });
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"stub: unknown"}}');
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  const port = (stub.address() as AddressInfo).port;
  env =
    await startClients(`upstreams: [{ name: oai, kind: openai, baseUrl: "http://127.0.0.1:${port}/v1", apiKey: sk-upstream-secret }]
models: [{ match: "*", upstream: oai }]
tiers: { default: {} }
`);
}, 120_000);
afterAll(async () => {
  await env?.s.stop();
  stub?.close();
});

describe('Files and Batches through an OpenAI upstream', () => {
  it('forwards with the upstream key, sizes the batch from the upstream file, keeps tenants apart', async () => {
    const c = new OpenAI({ baseURL: env.v1, apiKey: env.key, maxRetries: 0 });
    const f = await c.files.create({ file: await toFile(Buffer.from(INPUT), 'in.jsonl'), purpose: 'batch' });
    expect(f.id).toBe('file-up1');
    const b = await c.batches.create({
      input_file_id: f.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(b.id).toBe('batch_up1');
    // 1. the upstream saw its own key on every call, never the caller's
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /v1/files',
      'GET /v1/files/file-up1/content',
      'POST /v1/batches',
    ]);
    for (const s of seen) expect(s.auth).toBe('Bearer sk-upstream-secret');
    expect(seen[0]!.body).toContain('name="purpose"');
    // 2. the list keeps this tenant's files: the upload and the batch's output file
    expect((await c.files.list()).data.map((x) => x.id)).toEqual(['file-up1', 'file-out1']);
    // 3. another tenant sees none of them, and its lookups never reach the upstream
    const { key } = await createKey(env.s, [], 'other-co');
    const other = new OpenAI({ baseURL: env.v1, apiKey: key, maxRetries: 0 });
    const before = seen.length;
    await expect(other.batches.retrieve('batch_up1')).rejects.toMatchObject({ status: 404 });
    await expect(other.files.retrieve('file-up1')).rejects.toMatchObject({ status: 404 });
    expect(seen.length).toBe(before);
    expect((await other.files.list()).data).toEqual([]);
  });
});
