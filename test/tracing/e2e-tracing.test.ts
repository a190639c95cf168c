/**
 * Tracing through the real `sluice serve` configured by its policy file: the openai SDK sends a
 * traceparent, the stub upstream receives one in the same trace, and the loopback OTLP/HTTP
 * receiver gets the trace (root, stage spans, upstream span with GenAI attributes). The exporter's
 * header value never shows in the process output.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { type StubUpstream, startStubUpstream } from '../e2e/stub-upstream.js';

let s: SluiceProcess;
let stub: StubUpstream;
let receiver: Server;
let client: OpenAI;
const TOKEN = 'otlp-secret-token-0123456789';
let gotPayload: (body: any) => void;
const payload = new Promise<any>((r) => {
  gotPayload = r;
});

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.headers.authorization === `Bearer ${TOKEN}`)
        gotPayload(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  stub = await startStubUpstream({ chunkDelayMs: 1, chunks: 3 });
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: oai, kind: openai, baseUrl: "${stub.url}", apiKey: "sk-upstream-trace-e2e" }
models:
  - { match: "*", upstream: oai }
tiers:
  default: { scopes: ["*"], models: ["*"] }
tracing:
  enabled: true
  endpoint: "${otlp}"
  headers: { authorization: "Bearer ${TOKEN}" }
  flushEvery: 50ms
`,
  );
  s = await startSluice({ config, dataDir: dir });
  const k = await createKey(s);
  client = new OpenAI({ apiKey: k.key, baseURL: `${s.url}/v1`, maxRetries: 0 });
}, 60_000);
afterAll(async () => {
  await s?.stop();
  await stub?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

describe('tracing end to end', () => {
  it('exports one trace with stage spans and GenAI attributes; the upstream joins the trace', async () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      { headers: { traceparent: `00-${trace}-b7ad6b7169203331-01` } },
    );
    const body = await payload;
    const spans = body.resourceSpans[0].scopeSpans[0].spans as any[];
    expect(new Set(spans.map((x) => x.traceId))).toEqual(new Set([trace]));
    const root = spans.find((x) => x.kind === 2);
    expect(root.parentSpanId).toBe('b7ad6b7169203331');
    const names = spans.map((x) => x.name);
    for (const stage of ['authenticate', 'authorize', 'limit', 'forward', 'record'])
      expect(names).toContain(stage);
    const up = spans.find((x) => x.kind === 3);
    const a = Object.fromEntries(root.attributes.map((x: any) => [x.key, Object.values(x.value)[0]]));
    expect(a).toMatchObject({
      'gen_ai.system': 'openai',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': '7',
      'gen_ai.usage.output_tokens': '2',
      'sluice.tenant': 'acme',
      'sluice.decision': 'allowed',
    });
    const sent = stub.received.at(-1)!.headers.traceparent;
    expect(sent).toBe(`00-${trace}-${up.spanId}-01`);
    expect(s.output()).not.toContain(TOKEN);
  });
});
