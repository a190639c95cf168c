/**
 * Unit tests per stage and for the runner: a context built by hand around a fake reply, the
 * runtime compiled from a real config, memory stores, a fake clock.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { refuse } from '../../../src/core/errors.js';
import type { UpstreamResponse } from '../../../src/core/ports.js';
import { newContext, type RequestContext } from '../../../src/gateway/pipeline/context.js';
import { codeForError } from '../../../src/gateway/pipeline/error-table.js';
import { runStages } from '../../../src/gateway/pipeline/runner.js';
import { authenticate } from '../../../src/gateway/pipeline/stages/authenticate.js';
import { authorize } from '../../../src/gateway/pipeline/stages/authorize.js';
import { contextChecks } from '../../../src/gateway/pipeline/stages/context-checks.js';
import { limit } from '../../../src/gateway/pipeline/stages/limit.js';
import { parse } from '../../../src/gateway/pipeline/stages/parse.js';
import { parseTask } from '../../../src/gateway/pipeline/stages/parse-task.js';
import { record } from '../../../src/gateway/pipeline/stages/record.js';
import { settle } from '../../../src/gateway/pipeline/stages/settle.js';
import { auth, type Harness, harness, KEY_ID } from './support.js';

interface Sent {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

function fakeContext(
  h: Harness,
  init: { body?: unknown; headers?: Record<string, string>; params?: object; action?: string } = {},
): { ctx: RequestContext; sent: Sent[] } {
  const sent: Sent[] = [];
  let status = 200;
  const headers: Record<string, string> = {};
  const raw = { on() {}, off() {}, writableFinished: false, destroyed: false };
  const reply = {
    raw,
    code(s: number) {
      status = s;
      return reply;
    },
    header(k: string, v: string) {
      headers[k] = v;
      return reply;
    },
    headers(o: Record<string, string>) {
      Object.assign(headers, o);
      return reply;
    },
    type() {
      return reply;
    },
    send(body: unknown) {
      sent.push({ status, body, headers: { ...headers } });
      return reply;
    },
  } as unknown as FastifyReply;
  const request = {
    id: `req-${Math.random().toString(36).slice(2)}`,
    headers: { ...auth, ...init.headers },
    body: init.body ?? null,
    params: init.params ?? {},
    method: 'POST',
    url: '/v1/chat/completions',
  } as unknown as FastifyRequest;
  const ctx = newContext(h.deps, request, reply, {
    endpoint: 'chat',
    action: init.action ?? 'chat.create',
    format: 'openai',
    rt: h.deps.runtime(),
    ip: '127.0.0.1',
    end: [],
  });
  return { ctx, sent };
}

const chat = { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 };

describe('runner', () => {
  it('times every stage it ran, stops at the first refusal, audits it once and answers it once', async () => {
    const h = harness();
    const { ctx, sent } = fakeContext(h);
    const ran: string[] = [];
    function first() {
      ran.push('first');
      return undefined;
    }
    function second() {
      ran.push('second');
      return refuse('SLUICE_POLICY_DENIED', undefined, { internal: 'rule 7' });
    }
    function third() {
      ran.push('third');
      return undefined;
    }
    await runStages(ctx, [first, second, third]);
    expect(ran).toEqual(['first', 'second']);
    expect(Object.keys(ctx.stageMs)).toEqual(['first', 'second']);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.status).toBe(403);
    expect(JSON.stringify(sent[0]!.body)).not.toContain('rule 7');
    expect(h.audit).toHaveLength(1);
    expect(h.audit[0]!.details).toEqual({ internal: 'rule 7' });
    await ctx.done;
  });

  it("times stages on deps.stageClock when given (sluice simulate's constant clock), once per stage", async () => {
    const readings = [10, 13, 20];
    let reads = 0;
    const h = harness({ deps: { stageClock: () => readings[reads++]! } });
    const { ctx } = fakeContext(h);
    reads = 0; // (the context read it once for t0)
    const s0 = () => undefined;
    const s1 = () => undefined;
    await runStages(ctx, [s0, s1]);
    expect(ctx.stageMs).toEqual({ s0: 3, s1: 7 });
    expect(reads).toBe(3);
  });

  it('a silent refusal (the caller left) is audited with its own reason and status, and nothing is sent', async () => {
    const h = harness();
    const { ctx, sent } = fakeContext(h);
    function gone() {
      return refuse('SLUICE_RATE_LIMITED', undefined, {
        decision: 'throttled',
        silent: { reason: 'client_closed', status: 499 },
      });
    }
    await runStages(ctx, [gone]);
    expect(sent).toHaveLength(0);
    expect(h.audit).toEqual([expect.objectContaining({ reason: 'client_closed', decision: 'throttled' })]);
  });
});

describe('error table', () => {
  it.each([
    [{ code: 'FST_ERR_CTP_BODY_TOO_LARGE' }, 'SLUICE_BODY_TOO_LARGE'],
    [{ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }, 'SLUICE_UNSUPPORTED_MEDIA_TYPE'],
    [{ code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }, 'SLUICE_BAD_JSON'],
    [{ code: 'SLUICE_JSON_TOO_DEEP' }, 'SLUICE_JSON_TOO_DEEP'],
    [new SyntaxError('x'), 'SLUICE_BAD_JSON'],
    [{ statusCode: 414 }, 'SLUICE_BAD_REQUEST'],
    [{ code: 'ECONNREFUSED' }, 'SLUICE_STORE_UNAVAILABLE'],
    [{ code: '57P01' }, 'SLUICE_STORE_UNAVAILABLE'],
    [new Error('boom'), 'SLUICE_INTERNAL'],
    [{ code: 'SLUICE_NOT_A_CODE' }, 'SLUICE_INTERNAL'],
  ])('%o -> %s', (err, code) => {
    expect(codeForError(err)).toBe(code);
  });
});

describe('stages', () => {
  it('authenticate: writes the principal, or refuses without one', async () => {
    const h = harness();
    const good = fakeContext(h).ctx;
    expect(await authenticate(good)).toBeUndefined();
    expect(good.principal?.keyId).toBe(KEY_ID);
    const none = fakeContext(h, { headers: { authorization: '' } }).ctx;
    expect((await authenticate(none))?.code).toBe('SLUICE_MISSING_KEY');
    expect(none.principal).toBeNull();
  });

  it('parse: writes model and stream, refuses a missing model', () => {
    const h = harness();
    const ok = fakeContext(h, { body: { ...chat, stream: true } }).ctx;
    expect(parse(ok)).toBeUndefined();
    expect([ok.model, ok.stream]).toEqual(['mock-chat', true]);
    const bad = fakeContext(h, { body: { messages: [] } }).ctx;
    expect(parse(bad)?.param).toBe('model');
  });

  it('parseTask: builds the chat call from the task, filling defaults', () => {
    const h = harness();
    const { ctx } = fakeContext(h, { body: { input: 'hello' }, params: { name: 'shout' } });
    expect(parseTask(ctx)).toBeUndefined();
    expect(ctx.model).toBe('mock-chat');
    expect(ctx.body?.messages).toEqual([
      { role: 'system', content: 'Answer in loud tone.' },
      { role: 'user', content: 'hello' },
    ]);
    const bad = fakeContext(h, {
      body: { input: 'x', params: { volume: 3 } },
      params: { name: 'shout' },
    }).ctx;
    expect(parseTask(bad)?.detail).toContain('unknown parameter');
  });

  async function throughAuthorize(h: Harness, body: Record<string, unknown>) {
    const { ctx } = fakeContext(h, { body });
    await authenticate(ctx);
    parse(ctx);
    contextChecks(ctx);
    return { ctx, r: authorize(ctx) };
  }

  it('context-checks and authorize: facts, route and upstream; tier caps refuse', async () => {
    const yaml = `
upstreams: [{ name: mock, kind: mock }]
models: [{ match: "mock-*", upstream: mock }]
tiers: { default: { scopes: ["*"], models: ["*"], maxTokens: 100 } }
`;
    const h = harness({ yaml });
    const ok = await throughAuthorize(h, chat);
    expect(ok.r).toBeUndefined();
    expect(ok.ctx.facts).toMatchObject({ action: 'chat.create', model: 'mock-chat', ip: '127.0.0.1' });
    expect(ok.ctx.upstream?.name).toBe('mock');
    expect((await throughAuthorize(h, { ...chat, model: 'other' })).r?.code).toBe('SLUICE_UNKNOWN_MODEL');
    expect((await throughAuthorize(h, { ...chat, max_tokens: 101 })).r?.param).toBe('max_tokens');
  });

  it('limit: reserves, then refuses once the window is spent; settle on a 5xx refunds the request', async () => {
    const h = harness();
    const go = async () => {
      const { ctx } = await throughAuthorize(h, chat);
      return { ctx, r: await limit(ctx) };
    };
    const first = await go();
    expect(first.r).toBeUndefined();
    expect(first.ctx.reservation).not.toBeNull();
    expect(first.ctx.states[0]?.remaining).toBe(2);
    // 1. A failed upstream call (5xx) gives the request back.
    first.ctx.response = { status: 502 } as UpstreamResponse;
    settle(first.ctx);
    await Promise.all(first.ctx.pending);
    for (let i = 0; i < 3; i++) expect((await go()).r).toBeUndefined();
    // 2. Three more used the limit of 3: the next is throttled with the bucket that bound.
    const denied = await go();
    expect(denied.r).toMatchObject({
      code: 'SLUICE_RATE_LIMITED',
      decision: 'throttled',
      audit: { limit: 'rpm' },
    });
    // 3. A minute later (fake clock) the window has room again.
    h.clock.t += 60_000;
    expect((await go()).r).toBeUndefined();
  });

  it('record: one usage row and one allowed audit event, with the metric stage names', async () => {
    const h = harness();
    const { ctx } = await throughAuthorize(h, chat);
    ctx.response = { status: 200 } as UpstreamResponse;
    ctx.usage = { inputTokens: 5, outputTokens: 7, images: 0 };
    ctx.stageMs = { authenticate: 1, contextChecks: 1, authorize: 2, limit: 3, forward: 4, gateway: 7 };
    record(ctx);
    expect(h.usage).toEqual([
      expect.objectContaining({ requestId: ctx.id, inputTokens: 5, outputTokens: 7 }),
    ]);
    expect(h.audit).toEqual([expect.objectContaining({ decision: 'allowed', reason: 'ok', keyId: KEY_ID })]);
  });
});
