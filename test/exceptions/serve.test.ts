/**
 * Exceptions through the real `serve()` (both planes over HTTP on port 0, SQLite in a temp dir,
 * memory limits) with a fake clock: a 429 lifted by an approved exception, ended by its expiry with
 * nobody undoing it; step-up above the threshold; the portal session (cookie, CSRF); audit events.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { parseConfig } from '../../src/config/load.js';
import { withDataDir } from '../../src/config/resolve.js';
import { type RunningSluice, serve } from '../../src/main.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const clock = {
  t: T0,
  now() {
    return this.t;
  },
};
const yaml = `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    scopes: [chat.create, embeddings.create]
    models: [demo-model]
    limits:
      - { id: rpd, requests: 2, window: 1d }
`;

let s: RunningSluice;
let dir: string;
let adminToken: string;
let key: string;

const admin = (
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) =>
  fetch(`${s.urls.admin}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
const dev = (
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) =>
  fetch(`${s.urls.gateway}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${key}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
const chat = (model = 'demo-model') =>
  dev('/v1/chat/completions', {
    method: 'POST',
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-exc-'));
  const config = withDataDir(parseConfig(yaml, 'test'), dir);
  s = await serve({
    source: { file: null, source: yaml, config },
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    clock,
    logger: pino({ level: 'silent' }),
  });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const r = await admin('/admin/v1/keys', { method: 'POST', body: { tenant: 'acme' } });
  key = ((await r.json()) as { key: string }).key;
});
afterAll(async () => {
  await s?.close(5000);
});

describe('exceptions end to end', () => {
  it('lifts a 429 for its key only while approved, and ends by itself at expiry', async () => {
    // 1. the daily limit of 2 binds
    expect((await chat()).status).toBe(200);
    expect((await chat()).status).toBe(200);
    expect((await chat()).status).toBe(429);

    // 2. the developer asks for 5 a day for one hour
    const asked = await dev('/sluice/v1/exceptions', {
      method: 'POST',
      body: { limits: [{ id: 'rpd', limit: 5 }], justification: 'load test for the launch', duration: 3600 },
    });
    expect(asked.status).toBe(201);
    const exc = (await asked.json()) as { id: string; status: string };
    expect(exc.status).toBe('pending');
    expect((await chat()).status).toBe(429);

    // 3. an operator sees it in the queue and approves (5 ≤ 4 × 2 and 1 h: no step-up needed)
    const queue = (await (await admin('/admin/v1/exceptions?status=pending')).json()) as {
      data: { id: string }[];
    };
    expect(queue.data.map((e) => e.id)).toContain(exc.id);
    const ok = await admin(`/admin/v1/exceptions/${exc.id}/approve`, {
      method: 'POST',
      body: { note: 'ok' },
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { status: string }).status).toBe('approved');

    // 4. the next request passes; /sluice/v1/me reports the raised limit
    expect((await chat()).status).toBe(200);
    const me = (await (await dev('/sluice/v1/me')).json()) as { limits: { id: string; limit: number }[] };
    expect(me.limits.find((l) => l.id === 'rpd')?.limit).toBe(5);

    // 5. an hour later it has ended by itself: the day's usage (3) is over the policy's 2 again
    clock.t += 3_600_000;
    expect((await chat()).status).toBe(429);
    const after = (await (await dev(`/sluice/v1/exceptions/${exc.id}`)).json()) as { status: string };
    expect(after.status).toBe('expired');
    clock.t += 86_400_000; // a new day for the tests below
  });

  it('asks for a TOTP step-up above the threshold, and extra models apply to authorization', async () => {
    expect((await chat('other-model')).status).toBe(403);
    const asked = await dev('/sluice/v1/exceptions', {
      method: 'POST',
      body: { models: ['other-model'], justification: 'evaluate the other model', duration: 600 },
    });
    const exc = (await asked.json()) as { id: string };
    const noOtp = await admin(`/admin/v1/exceptions/${exc.id}/approve`, { method: 'POST', body: {} });
    expect(noOtp.status).toBe(401);
    expect(((await noOtp.json()) as { error: { code: string } }).error.code).toBe('SLUICE_STEP_UP_REQUIRED');
    const enrolled = (await (await admin('/admin/v1/me/totp', { method: 'POST' })).json()) as {
      secret: string;
    };
    const withOtp = await admin(`/admin/v1/exceptions/${exc.id}/approve`, {
      method: 'POST',
      body: {},
      headers: { 'x-sluice-otp': totpCode(enrolled.secret, clock.now()) },
    });
    expect(withOtp.status).toBe(200);
    expect((await chat('other-model')).status).toBe(200);
    // Revoked: refused again at once on this instance.
    expect((await admin(`/admin/v1/exceptions/${exc.id}/revoke`, { method: 'POST', body: {} })).status).toBe(
      200,
    );
    expect((await chat('other-model')).status).toBe(403);
    // A second decision on a revoked exception is a conflict.
    const again = await admin(`/admin/v1/exceptions/${exc.id}/deny`, { method: 'POST', body: {} });
    expect(again.status).toBe(409);
  });

  it('refuses a bad request with a clear 400 and audits every step', async () => {
    const bad = await dev('/sluice/v1/exceptions', {
      method: 'POST',
      body: { justification: 'x', duration: 10 },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('SLUICE_EXCEPTION_INVALID');
    await s.stores.audit.flush();
    const events = await s.stores.auditStore.read({ limit: 10_000 });
    const actions = events.map((e) => e.action);
    for (const a of ['exception.request', 'exception.approve', 'exception.revoke'])
      expect(actions).toContain(a);
  });

  it('portal session: the key is exchanged for an HttpOnly SameSite=Strict cookie; writes need the CSRF token', async () => {
    const r = await fetch(`${s.urls.gateway}/portal/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: key }),
    });
    expect(r.status).toBe(200);
    const cookie = r.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(key);
    const { csrfToken } = (await r.json()) as { csrfToken: string };
    const jar = cookie.split(';')[0]!;
    const me = await fetch(`${s.urls.gateway}/sluice/v1/me`, { headers: { cookie: jar } });
    expect(me.status).toBe(200);
    const body = { models: ['x-model'], justification: 'session write test', duration: 60 };
    const noCsrf = await fetch(`${s.urls.gateway}/sluice/v1/exceptions`, {
      method: 'POST',
      headers: { cookie: jar, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(noCsrf.status).toBe(403);
    const withCsrf = await fetch(`${s.urls.gateway}/sluice/v1/exceptions`, {
      method: 'POST',
      headers: { cookie: jar, 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify(body),
    });
    expect(withCsrf.status).toBe(201);
    const bad = await fetch(`${s.urls.gateway}/portal/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: 'sk-sluice-nope-nope' }),
    });
    expect(bad.status).toBe(401);
  });

  it('console sign-in: scrypt password, HttpOnly session cookie, CSRF token on writes, audited', async () => {
    const file = readFileSync(join(dir, 'console-password'), 'utf8');
    const password = /password: (\S+)/.exec(file)![1]!;
    const signIn = (pw: string) =>
      fetch(`${s.urls.admin}/console/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: pw }),
      });
    const wrong = await signIn('not the password');
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe(
      'SLUICE_ADMIN_LOGIN_FAILED',
    );
    const ok = await signIn(password);
    expect(ok.status).toBe(200);
    const cookie = ok.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const { csrfToken, role } = (await ok.json()) as { csrfToken: string; role: string };
    expect(role).toBe('admin');
    const jar = cookie.split(';')[0]!;
    expect((await fetch(`${s.urls.admin}/admin/v1/keys`, { headers: { cookie: jar } })).status).toBe(200);
    const post = (headers: Record<string, string>) =>
      fetch(`${s.urls.admin}/admin/v1/tenants`, {
        method: 'POST',
        headers: { cookie: jar, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ id: 'made-in-console' }),
      });
    const noCsrf = await post({});
    expect(noCsrf.status).toBe(403);
    expect(((await noCsrf.json()) as { error: { code: string } }).error.code).toBe('SLUICE_CSRF_FAILED');
    expect((await post({ 'x-csrf-token': csrfToken })).status).toBe(201);
    // Signed out: the cookie no longer works.
    await fetch(`${s.urls.admin}/console/session`, {
      method: 'DELETE',
      headers: { cookie: jar, 'x-csrf-token': csrfToken },
    });
    expect((await fetch(`${s.urls.admin}/admin/v1/keys`, { headers: { cookie: jar } })).status).toBe(401);
    await s.stores.audit.flush();
    const signins = (await s.stores.auditStore.read({ limit: 10_000 })).filter(
      (e) => e.action === 'admin.console.signin',
    );
    expect(signins.map((e) => e.reason)).toEqual(['SLUICE_ADMIN_LOGIN_FAILED', 'ok']);
    expect(JSON.stringify(signins)).not.toContain(password);
  });

  it('usage is aggregated in SQL per tenant, by endpoint, model or key, per hour or day', async () => {
    const row = (tenantId: string, keyId: string, action: string, at: number, input: number) => ({
      requestId: `r-${tenantId}-${at}-${input}`,
      at,
      keyId,
      tenantId,
      projectId: null,
      model: action === 'embeddings.create' ? 'demo-embed' : 'demo-model',
      action,
      upstream: 'local',
      inputTokens: input,
      outputTokens: 10,
      images: 0,
      usd: 0.001,
      status: 200,
      latencyMs: 5,
    });
    const h = clock.now() - 5 * 3_600_000;
    await s.stores.usage.record([
      row('usage-t', 'ka', 'chat.create', h, 100),
      row('usage-t', 'kb', 'chat.create', h + 60_000, 50),
      row('usage-t', 'ka', 'embeddings.create', h + 3_600_000, 7),
      row('someone-else', 'kz', 'chat.create', h, 999),
    ]);
    const k = (
      (await (await admin('/admin/v1/keys', { method: 'POST', body: { tenant: 'usage-t' } })).json()) as {
        key: string;
      }
    ).key;
    const get = async (q: string) =>
      (
        (await (
          await fetch(`${s.urls.gateway}/sluice/v1/usage?${q}`, { headers: { authorization: `Bearer ${k}` } })
        ).json()) as { data: { group: string; bucketStart: number; requests: number; inputTokens: number }[] }
      ).data;
    const byEndpoint = await get('groupBy=endpoint&bucket=hour&days=1');
    expect(byEndpoint.map((d) => [d.group, d.requests, d.inputTokens])).toEqual([
      ['chat.create', 2, 150],
      ['embeddings.create', 1, 7],
    ]);
    expect(byEndpoint[0]!.bucketStart % 3_600_000).toBe(0);
    const byKey = await get('groupBy=key&bucket=day&days=1');
    expect(byKey.map((d) => d.group).sort()).toEqual(['ka', 'kb']);
    expect((await dev('/sluice/v1/usage?groupBy=nope')).status).toBe(400);
  });
});
