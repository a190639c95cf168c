/**
 * Logs correlated with traces (issue 14): with tracing on, every log line the data plane writes
 * about a request carries that request's `traceId` next to its `reqId` — a shadow-limit note, an
 * upstream failure, a failed settle, a limit store failure. With tracing off the
 * same lines carry `reqId` only. The logger is a real pino writing JSON lines to a capture stream.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Tracer } from '../../src/observability/tracing.js';
import { auth, harness } from '../gateway/pipeline/support.js';

const YAML = `
upstreams: [{ name: mock, kind: mock }]
models: [{ match: "*", upstream: mock }]
tiers:
  default:
    scopes: ["*"]
    models: ["*"]
    limits:
      - { id: rpm, per: key, requests: 3, window: 1m }
      - { id: shadow-rpm, per: key, requests: 1, window: 1m, mode: shadow }
`;

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'trace' }, stream) };
}

function setup(tracing: boolean) {
  const { lines, logger } = capture();
  const tracer = tracing
    ? new Tracer(
        {
          enabled: true,
          endpoint: 'http://127.0.0.1:9/v1/traces',
          headers: {},
          sampleRatio: 1,
          batchSize: 100_000,
          flushEvery: 3_600_000,
          serviceName: 'sluice-test',
        },
        pino({ level: 'silent' }),
      )
    : undefined;
  const h = harness({ yaml: YAML, deps: { logger, ...(tracer ? { tracer } : {}) } });
  return { h, lines };
}

const traceOf = (n: number) => n.toString(16).padStart(32, 'a');

/** Sends requests that each make the data plane log a different line, each with its own traceparent. */
async function exercise(h: ReturnType<typeof harness>): Promise<Map<string, string>> {
  const sent = new Map<string, string>(); // reqId -> trace id of its traceparent
  let n = 1;
  const call = async (body: Record<string, unknown> = {}) => {
    const trace = traceOf(n++);
    const r = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { ...auth, traceparent: `00-${trace}-00f067aa0ba902b7-01` },
      payload: { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }], ...body },
    });
    const id = r.headers['x-request-id'] as string;
    sent.set(id, trace);
    await h.settled(id);
    return r;
  };
  // 1. allowed, then a shadow limit that would have refused (info line)
  expect((await call()).statusCode).toBe(200);
  expect((await call()).statusCode).toBe(200);
  // 2. a failed settle (warn line)
  const settle = h.deps.limits.settle.bind(h.deps.limits);
  h.deps.limits.settle = async () => {
    throw new Error('settle store down');
  };
  expect((await call()).statusCode).toBe(200);
  h.deps.limits.settle = settle;
  // 3. a refusal: the rpm limit binds (audited, no log line)
  expect((await call()).statusCode).toBe(429);
  h.clock.t += 120_000;
  // 4. the upstream call fails (warn line)
  const up = h.deps.upstreams.get('mock')!;
  const upstreamCall = up.call.bind(up);
  up.call = async () => {
    throw new Error('connect ECONNREFUSED');
  };
  expect((await call()).statusCode).toBeGreaterThanOrEqual(500);
  up.call = upstreamCall;
  // 5. the limit store fails (error line)
  const reserve = h.deps.limits.reserve.bind(h.deps.limits);
  h.deps.limits.reserve = async () => {
    throw new Error('limit store down');
  };
  expect((await call()).statusCode).toBe(503);
  h.deps.limits.reserve = reserve;
  return sent;
}

describe('log lines carry the trace id', () => {
  it('with tracing on, every request log line has the trace id of its request', async () => {
    const { h, lines } = setup(true);
    const sent = await exercise(h);
    const about = lines.filter((l) => typeof l.reqId === 'string');
    const messages = new Set(about.map((l) => l.msg));
    for (const m of [
      'shadow limit would have refused',
      'settle failed',
      'upstream call failed',
      'limit store failed',
    ])
      expect(messages).toContain(m);
    for (const l of about)
      expect({ msg: l.msg, traceId: l.traceId }).toEqual({
        msg: l.msg,
        traceId: sent.get(l.reqId as string),
      });
    // Every line the gateway wrote was about a request.
    expect(about.length).toBe(lines.length);
  });

  it('with tracing off, the same lines carry reqId and no traceId', async () => {
    const { h, lines } = setup(false);
    await exercise(h);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const l of lines) {
      expect(typeof l.reqId).toBe('string');
      expect(l.traceId).toBeUndefined();
    }
  });
});
