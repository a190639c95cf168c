/**
 * The management plane end to end: roles, separation from the data plane, policy as code (apply,
 * diff, rollback with step-up) changing limits on the next request, audit verify and tamper
 * detection through the CLI, metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { waitFor } from '../helpers/wait.js';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;
let adminToken: string;
let key: string;

const policy = (rpm: number) => `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: rpm, requests: ${rpm}, window: 1m }
`;

beforeAll(async () => {
  const dir = tempDir();
  s = await startSluice({ config: writeConfig(dir, policy(100)), dataDir: dir });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  ({ key } = await createKey(s));
});
afterAll(async () => {
  await s?.stop();
});

const admin = (
  path: string,
  init: { method?: string; body?: unknown; token?: string; headers?: Record<string, string> } = {},
) =>
  fetch(`${s.adminUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.token ?? adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
const chat = () =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });

describe('management plane', () => {
  it('admin token file is 0600 and the data-plane key cannot reach the management plane', async () => {
    const st = (await import('node:fs')).statSync(join(s.dataDir, 'admin-token'));
    expect(st.mode & 0o777).toBe(0o600);
    const r = await admin('/admin/v1/keys', { token: key });
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('SLUICE_ADMIN_UNAUTHORIZED');
    expect((await admin('/admin/v1/keys', { token: 'sa-wrong' })).status).toBe(401);
    // and the admin token is not a data-plane key
    const d = await fetch(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(d.status).toBe(401);
  });

  it('roles: an auditor reads audit and usage but cannot create keys; an operator can', async () => {
    const mk = async (role: string) =>
      (await (await admin('/admin/v1/users', { method: 'POST', body: { name: `u-${role}`, role } })).json())
        .token as string;
    const auditor = await mk('auditor');
    const operator = await mk('operator');
    const denied = await admin('/admin/v1/keys', {
      method: 'POST',
      token: auditor,
      body: { tenant: 'acme', tier: 'default' },
    });
    expect(denied.status).toBe(403);
    expect((await denied.json()).error.code).toBe('SLUICE_ADMIN_FORBIDDEN');
    expect((await admin('/admin/v1/audit?limit=5', { token: auditor })).status).toBe(200);
    expect((await admin('/admin/v1/usage', { token: auditor })).status).toBe(200);
    const created = await admin('/admin/v1/keys', {
      method: 'POST',
      token: operator,
      body: { tenant: 'beta', tier: 'default', scopes: ['chat.create'] },
    });
    expect(created.status).toBe(201);
    const body = await created.json();
    expect(body.key).toMatch(/^sk-sluice-/);
    const shown = await (await admin(`/admin/v1/keys/${body.id}`, { token: auditor })).json();
    expect(shown.key).toBeUndefined();
    expect(JSON.stringify(shown)).not.toContain(body.key.split('-').pop());
    expect(
      (await admin('/admin/v1/policy', { method: 'POST', token: operator, body: { source: policy(5) } }))
        .status,
    ).toBe(403);
  });

  it('policy apply changes limits on the next request; a broken policy is refused with its line; rollback needs step-up', async () => {
    expect((await chat()).status).toBe(200);
    const broken = await admin('/admin/v1/policy', {
      method: 'POST',
      body: { source: policy(5).replace('window: 1m', 'window: 1x') },
    });
    expect(broken.status).toBe(400);
    expect((await broken.json()).error.message).toMatch(/policy:6: tiers\.default\.limits\.0\.window/);
    const diff = await (
      await admin('/admin/v1/policy/diff', { method: 'POST', body: { source: policy(2) } })
    ).json();
    expect(diff.changes).toEqual([
      expect.objectContaining({ kind: 'lowered', path: 'tiers.default.limits.rpm' }),
    ]);
    const applied = await admin('/admin/v1/policy', {
      method: 'POST',
      body: { source: policy(2), message: 'tighten' },
    });
    expect(applied.status).toBe(201);
    const v = (await applied.json()).version as number;
    // 1. the new limit applies at once on this instance (2 per minute: one was used above under the old policy,
    //    but buckets are keyed per policy limit, so count from here)
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await chat()).status);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(1);
    // 2. rollback without a second factor is refused
    const noOtp = await admin('/admin/v1/policy/rollback', { method: 'POST', body: {} });
    expect(noOtp.status).toBe(401);
    expect(noOtp.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    // 3. enroll TOTP, roll back with a code
    const { secret } = await (await admin('/admin/v1/me/totp', { method: 'POST', body: {} })).json();
    const rb = await admin('/admin/v1/policy/rollback', {
      method: 'POST',
      body: {},
      headers: { 'x-sluice-otp': totpCode(secret, Date.now()) },
    });
    expect(rb.status).toBe(200);
    expect(await rb.json()).toMatchObject({ restored: v - 1, version: v + 1 });
    const hist = await cli(['policy', 'history', '--data-dir', s.dataDir]);
    expect(hist.stdout).toContain('rollback to version');
    expect((await chat()).status).toBe(200);
  });

  it('CLI policy diff and apply against the running version', async () => {
    const dir = tempDir();
    const f = writeConfig(dir, policy(50).replace('requests: 50', 'requests: 50, mode: shadow'));
    const d = await cli(['policy', 'diff', f, '--data-dir', s.dataDir]);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/tiers\.default\.limits\.rpm: limit now in shadow mode/);
    const a = await cli(['policy', 'apply', f, '-m', 'shadow rpm', '--data-dir', s.dataDir]);
    expect(a.stdout).toMatch(/applied .* as version \d+/);
    const bad = writeConfig(tempDir(), 'tiers: [');
    const r = await cli(['policy', 'apply', bad, '--data-dir', s.dataDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sluice\.yaml:1/);
  });

  it('least-privilege review suggests the narrower grant actually used', async () => {
    // Usage rows are written in batches: wait until this key's rows from the calls above are stored.
    const keyId = key.split('-')[2]!;
    await waitFor(
      () => {
        const db = new Database(join(s.dataDir, 'sluice.db'), { readonly: true });
        try {
          return db.prepare('select 1 from usage where key_id = ? limit 1').get(keyId) !== undefined;
        } finally {
          db.close();
        }
      },
      { what: `usage rows of key ${keyId}` },
    );
    const r = await admin('/admin/v1/review?days=7');
    expect(r.status).toBe(200);
    const { data } = await r.json();
    const mine = data.filter((f: { key: string }) => f.key === key.split('-')[2]);
    expect(mine.map((f: { kind: string }) => f.kind).sort()).toEqual(
      ['no-expiry', 'unused-scopes', 'unused-models'].sort(),
    );
    expect(mine.find((f: { kind: string }) => f.kind === 'unused-scopes').suggest.scopes).toEqual([
      'chat.create',
    ]);
    expect(mine.find((f: { kind: string }) => f.kind === 'unused-models').suggest.models).toEqual([
      'demo-model',
    ]);
    const c = await cli(['review', '--days', '7', '--data-dir', s.dataDir]);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('suggest --scopes chat.create');
  });

  it('metrics are exposed to admins', async () => {
    const r = await admin('/metrics');
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/sluice_decisions_total\{[^}]*decision="allowed"/);
    // Added latency per stage is observed on every forwarded request.
    for (const stage of ['auth', 'authorize', 'limit', 'gateway']) {
      expect(text).toMatch(
        new RegExp(`sluice_stage_seconds_count\\{policy="[^"]*",stage="${stage}"\\} [1-9]`),
      );
    }
    expect(text).not.toContain(key.split('-').pop());
    expect((await fetch(`${s.adminUrl}/metrics`)).status).toBe(401);
  });

  it('every decision and admin call is audited; verify passes; tampering is detected and named', async () => {
    const exp = await admin('/admin/v1/audit/export');
    const events = (await exp.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const decisions = new Set(events.map((e) => e.decision));
    expect([...decisions]).toEqual(expect.arrayContaining(['allowed', 'throttled', 'admin']));
    expect(events.every((e) => typeof e.policyVersion === 'number' || e.policyVersion === null)).toBe(true);
    expect(events.find((e) => e.decision === 'throttled')).toMatchObject({
      reason: 'SLUICE_RATE_LIMITED',
      keyId: expect.any(String),
    });
    const ok = await cli(['audit', 'verify', '--data-dir', s.dataDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok /m);
    // Edit one stored event behind Sluice's back.
    const db = new Database(join(s.dataDir, 'sluice.db'));
    const victim = db
      .prepare("select instance, seq from audit_events where decision = 'allowed' order by seq limit 1")
      .get() as { instance: string; seq: number };
    db.prepare("update audit_events set reason = 'forged' where instance = ? and seq = ?").run(
      victim.instance,
      victim.seq,
    );
    db.close();
    const bad = await cli(['audit', 'verify', '--data-dir', s.dataDir]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`FAIL  ${victim.instance}`);
    expect(bad.stdout).toMatch(new RegExp(`\\b${victim.seq}\\b`));
  });
});
