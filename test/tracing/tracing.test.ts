/**
 * Traces at a real OTLP/HTTP receiver on loopback (a small server in the test that decodes the
 * JSON payload): one trace per request with a span per stage and the upstream call, GenAI
 * attributes, the caller's traceparent honoured and a traceparent sent upstream; refusals carry
 * the decision and the limit that bound; with tracing off nothing is created.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamRequest } from '../../src/core/ports.js';
import type { RequestContext } from '../../src/gateway/pipeline/context.js';
import { parseTraceparent, Tracer } from '../../src/observability/tracing.js';
import { auth, harness } from '../gateway/pipeline/support.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status: { code: number };
}

let receiver: Server;
let endpoint: string;
const payloads: { headers: Record<string, unknown>; body: any }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      payloads.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
});
afterAll(async () => {
  await new Promise<void>((r) => receiver.close(() => r()));
});

const spansOf = (from: number) =>
  payloads
    .slice(from)
    .flatMap((p) =>
      p.body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)),
    ) as OtlpSpan[];
const attrs = (s: OtlpSpan) =>
  Object.fromEntries(s.attributes.map((a) => [a.key, Object.values(a.value)[0]]));

function traced(yaml?: string) {
  const tracer = new Tracer(
    {
      enabled: true,
      endpoint,
      headers: { 'x-honeycomb-team': 'secret-team-key' },
      sampleRatio: 1,
      batchSize: 10_000,
      flushEvery: 60_000,
      serviceName: 'sluice-test',
    },
    pino({ level: 'silent' }),
  );
  const h = harness({ yaml, deps: { tracer } });
  const sent: UpstreamRequest[] = [];
  const up = h.deps.upstreams.get('mock')!;
  const call = up.call.bind(up);
  up.call = (r) => {
    sent.push(r);
    return call(r);
  };
  return { h, tracer, sent };
}

describe('tracing', () => {
  it('one trace per request: stage spans, the upstream span, GenAI and sluice attributes, traceparent both ways', async () => {
    const { h, tracer, sent } = traced();
    const from = payloads.length;
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { ...auth, traceparent: `00-${callerTrace}-${callerSpan}-01` },
      payload: {
        model: 'mock-chat',
        temperature: 0,
        max_tokens: 50,
        messages: [{ role: 'user', content: 'hi' }],
      },
    });
    expect(res.statusCode).toBe(200);
    await h.settled(res.headers['x-request-id'] as string);
    await tracer.flush();
    expect(payloads.length - from).toBe(1);
    expect(payloads[from]!.headers['x-honeycomb-team']).toBe('secret-team-key');
    expect(payloads[from]!.body.resourceSpans[0].resource.attributes).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'sluice-test' },
    });
    const spans = spansOf(from);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([callerTrace]));
    const root = spans.find((s) => s.kind === 2)!;
    expect(root.parentSpanId).toBe(callerSpan);
    const names = spans.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name);
    for (const stage of [
      'authenticate',
      'parse',
      'contextChecks',
      'authorize',
      'cache',
      'limit',
      'forward',
      'settle',
      'record',
    ])
      expect(names).toContain(stage);
    const upstream = spans.find((s) => s.kind === 3)!;
    expect(upstream.parentSpanId).toBe(root.spanId);
    expect(BigInt(upstream.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(upstream.startTimeUnixNano));
    // The upstream was told our upstream span as its parent, in the caller's trace.
    expect(sent[0]!.headers.traceparent).toBe(`00-${callerTrace}-${upstream.spanId}-01`);
    const a = attrs(root);
    expect(a).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': 'sluice.mock',
      'gen_ai.request.model': 'mock-chat',
      'gen_ai.response.model': 'mock-chat',
      'gen_ai.request.temperature': '0',
      'gen_ai.request.max_tokens': '50',
      'sluice.tenant': 'acme',
      'sluice.key_id': 'key000000001',
      'sluice.decision': 'allowed',
      'http.response.status_code': '200',
    });
    expect(Number(a['gen_ai.usage.input_tokens'])).toBe(h.usage[0]!.inputTokens);
    expect(Number(a['gen_ai.usage.output_tokens'])).toBe(h.usage[0]!.outputTokens);
    expect(Number(a['gen_ai.usage.output_tokens'])).toBeGreaterThan(0);
    expect(JSON.stringify(payloads[from]!.body)).not.toContain('sk-sluice-');
  });

  it('a request without traceparent starts its own trace; a throttled one says which limit bound', async () => {
    const { h, tracer } = traced();
    const from = payloads.length;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: auth,
        payload: { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }] },
      });
      await h.settled(res.headers['x-request-id'] as string);
      ids.push(res.headers['x-request-id'] as string);
    }
    await tracer.flush();
    const roots = spansOf(from).filter((s) => s.kind === 2);
    expect(roots).toHaveLength(4);
    expect(new Set(roots.map((r) => r.traceId)).size).toBe(4);
    for (const r of roots) expect(r.parentSpanId).toBeUndefined();
    const last = attrs(roots.find((r) => attrs(r)['sluice.request_id'] === ids[3])!);
    expect(last).toMatchObject({
      'sluice.decision': 'throttled',
      'sluice.reason': 'SLUICE_RATE_LIMITED',
      'sluice.limit': 'rpm',
      'http.response.status_code': '429',
    });
  });

  it('an unsampled caller traceparent is honoured: nothing is exported, the header still goes upstream', async () => {
    const { h, tracer, sent } = traced();
    const from = payloads.length;
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { ...auth, traceparent: tp },
      payload: { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }] },
    });
    await h.settled(res.headers['x-request-id'] as string);
    await tracer.flush();
    expect(payloads.length).toBe(from);
    expect(sent[0]!.headers.traceparent).toBe(tp);
  });

  it('parses W3C traceparent strictly', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('00-XYZ-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent(undefined)).toBeNull();
  });

  it('with tracing off no trace is created on the request path (and with it on, one is)', async () => {
    const seen: unknown[] = [];
    const probe = (ctx: RequestContext) => void seen.push(ctx.trace);
    const headers = { ...auth, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    const payload = { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }] };
    const off = harness({ deps: { stages: (l) => void l.model.push(probe) } });
    const a = await off.app.inject({ method: 'POST', url: '/v1/chat/completions', headers, payload });
    await off.settled(a.headers['x-request-id'] as string);
    const { tracer } = traced();
    const on2 = harness({ deps: { tracer, stages: (l) => void l.model.push(probe) } });
    const b = await on2.app.inject({ method: 'POST', url: '/v1/chat/completions', headers, payload });
    await on2.settled(b.headers['x-request-id'] as string);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeNull();
    expect(seen[1]).not.toBeNull();
  });
});
