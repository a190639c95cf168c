/**
 * The pipeline through `createGateway(...).inject()`: memory stores, the mock upstream, a fake
 * clock. Settlement is awaited through `onSettled`, never by sleeping.
 */
import { describe, expect, it } from 'vitest';
import { refuse } from '../../../src/core/errors.js';
import type { RequestContext } from '../../../src/gateway/pipeline/context.js';
import { screenInput } from '../../../src/gateway/pipeline/stages/screen-input.js';
import { auth, harness, KEY_ID, REVOKED, REVOKED_ID } from './support.js';

const chat = { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }] };

describe('pipeline in process', () => {
  it('a chat call is answered, settled and recorded once, with the metric stage names', async () => {
    const observed: string[][] = [];
    const h = harness({ deps: { observe: (o) => void observed.push(Object.keys(o.stageMs ?? {})) } });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().choices[0].message.content.length).toBeGreaterThan(0);
    await h.settled(res.headers['x-request-id'] as string);
    expect(h.audit).toHaveLength(1);
    expect(h.audit[0]).toMatchObject({
      decision: 'allowed',
      reason: 'ok',
      keyId: KEY_ID,
      action: 'chat.create',
    });
    expect(h.usage).toHaveLength(1);
    expect(h.usage[0]!.requestId).toBe(res.headers['x-request-id']);
    expect(observed[0]!.sort()).toEqual(['auth', 'authorize', 'gateway', 'limit', 'upstream_headers']);
  });

  it('a streamed call settles when the stream ends', async () => {
    const h = harness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: { ...chat, stream: true },
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('data: [DONE]');
    await h.settled(res.headers['x-request-id'] as string);
    expect(h.usage).toHaveLength(1);
    expect(h.usage[0]!.outputTokens).toBeGreaterThan(0);
  });

  it('a rate-limit refusal is audited once as throttled and answered once', async () => {
    const h = harness();
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: auth,
        payload: chat,
      });
      codes.push(res.statusCode);
      await h.settled(res.headers['x-request-id'] as string);
    }
    expect(codes).toEqual([200, 200, 200, 429]);
    const throttled = h.audit.filter((e) => e.decision === 'throttled');
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({ reason: 'SLUICE_RATE_LIMITED', keyId: KEY_ID });
    expect(throttled[0]!.details).toMatchObject({ limit: 'rpm' });
    expect(h.audit).toHaveLength(4);
  });

  it('a revoked key is audited with its key id', async () => {
    const h = harness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${REVOKED}` },
      payload: chat,
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SLUICE_KEY_REVOKED');
    expect(h.audit).toEqual([
      expect.objectContaining({ keyId: REVOKED_ID, reason: 'SLUICE_KEY_REVOKED', action: 'auth' }),
    ]);
  });

  it('bad JSON (refused by the parser, before any route) is audited with the request id', async () => {
    const h = harness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { ...auth, 'content-type': 'application/json', 'x-request-id': 'req-bad-json' },
      payload: '{"model":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(h.audit).toEqual([
      expect.objectContaining({
        requestId: 'req-bad-json',
        reason: 'SLUICE_BAD_JSON',
        details: expect.objectContaining({ presentedKeyId: KEY_ID }),
      }),
    ]);
  });

  it.each([
    [
      '__proto__ at the top',
      '{"model":"mock-chat","messages":[{"role":"user","content":"x"}],"__proto__":{"admin":true}}',
    ],
    [
      'constructor.prototype deep inside',
      '{"model":"mock-chat","messages":[{"role":"user","content":"x","a":{"constructor":{"prototype":{"x":1}}}}]}',
    ],
    [
      'an escaped __proto__',
      '{"model":"mock-chat","messages":[{"role":"user","content":"x"}],"\\u005f_proto__":{}}',
    ],
  ])('a body with %s is a 400 in the caller format and never forwarded', async (_name, payload) => {
    const h = harness();
    for (const url of ['/v1/chat/completions', '/v1/messages']) {
      const res = await h.app.inject({
        method: 'POST',
        url,
        headers: { ...auth, 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode).toBe(400);
      if (url === '/v1/messages') expect(res.json().error.message).toContain('"__proto__"');
      else
        expect(res.json().error).toMatchObject({
          code: 'SLUICE_BAD_REQUEST',
          message: expect.stringContaining('prototype'),
        });
    }
    expect(h.usage).toHaveLength(0);
  });

  it('a key named "constructor" in a string value is not refused', async () => {
    const h = harness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: {
        model: 'mock-chat',
        messages: [{ role: 'user', content: 'what does a constructor do? prototype?' }],
      },
    });
    expect(res.statusCode).toBe(200);
  });

  it('a task goes through the same stages, and its refusals are audited', async () => {
    const h = harness();
    const ok = await h.app.inject({
      method: 'POST',
      url: '/v1/tasks/shout',
      headers: auth,
      payload: { input: 'hello' },
    });
    expect(ok.statusCode).toBe(200);
    await h.settled(ok.headers['x-request-id'] as string);
    expect(h.usage[0]).toMatchObject({ action: 'tasks.shout', model: 'mock-chat' });
    const bad = await h.app.inject({
      method: 'POST',
      url: '/v1/tasks/shout',
      headers: auth,
      payload: { input: 1 },
    });
    expect(bad.statusCode).toBe(400);
    const unknown = await h.app.inject({
      method: 'POST',
      url: '/v1/tasks/nope',
      headers: auth,
      payload: { input: 'x' },
    });
    expect(unknown.json().error.code).toBe('SLUICE_UNKNOWN_TASK');
    expect(h.audit.map((e) => e.reason)).toEqual(['ok', 'SLUICE_BAD_REQUEST', 'SLUICE_UNKNOWN_TASK']);
  });

  it('/v1/models and /sluice/v1/me answer through the stages; their refusals are audited', async () => {
    const h = harness();
    const models = await h.app.inject({ method: 'GET', url: '/v1/models', headers: auth });
    expect(models.statusCode).toBe(200);
    expect(models.json().data.map((m: { id: string }) => m.id)).toContain('demo-model');
    const me = await h.app.inject({ method: 'GET', url: '/sluice/v1/me', headers: auth });
    expect(me.json()).toMatchObject({
      key: { id: KEY_ID, tenant: 'acme' },
      limits: [expect.objectContaining({ id: 'rpm' })],
    });
    const anon = await h.app.inject({ method: 'GET', url: '/sluice/v1/me' });
    expect(anon.statusCode).toBe(401);
    expect(h.audit).toEqual([expect.objectContaining({ reason: 'SLUICE_MISSING_KEY', action: 'auth' })]);
  });

  it('a stage inserted through deps.stages runs in order, and its refusal is audited with internal reasons kept off the wire', async () => {
    const seen: string[] = [];
    function quarantine(ctx: RequestContext) {
      seen.push(`${ctx.principal?.keyId === KEY_ID}:${ctx.model}`);
      return refuse('SLUICE_POLICY_DENIED', undefined, { internal: 'quarantined by detector 42' });
    }
    const h = harness({
      deps: { stages: (s) => void s.model.splice(s.model.indexOf(screenInput), 0, quarantine) },
    });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain('detector 42');
    expect(seen).toEqual(['true:mock-chat']);
    expect(h.audit).toEqual([
      expect.objectContaining({
        reason: 'SLUICE_POLICY_DENIED',
        details: { internal: 'quarantined by detector 42' },
      }),
    ]);
  });

  it('a stage that throws a store outage is a 503 with retry-after, audited as an error', async () => {
    function broken(): undefined {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    }
    const h = harness({ deps: { stages: (s) => void s.model.splice(2, 0, broken) } });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(h.audit).toEqual([
      expect.objectContaining({ decision: 'error', reason: 'SLUICE_STORE_UNAVAILABLE' }),
    ]);
  });

  it('while draining, a request is refused 503 with x-request-id and audited', async () => {
    const h = harness();
    let res: { status: number; requestId: string | null } | undefined;
    // 1. A preClose hook registered after the gateway's own drain hook runs once draining has begun,
    //    before the listener stops accepting.
    h.app.addHook('preClose', async () => {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'x-request-id': 'req-drain' },
        body: JSON.stringify(chat),
      });
      await r.arrayBuffer();
      res = { status: r.status, requestId: r.headers.get('x-request-id') };
    });
    const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
    // 2. Closing runs the hooks (and the request) to completion.
    await h.app.close();
    if (!res) throw new Error('the request did not run');
    expect(res.status).toBe(503);
    expect(res.requestId).toBe('req-drain');
    expect(h.audit).toEqual([
      expect.objectContaining({ requestId: 'req-drain', reason: 'SLUICE_SHUTTING_DOWN' }),
    ]);
  });
});
