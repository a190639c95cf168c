/**
 * Secrets hygiene: a real process runs a varied workload (keys created, rotated and revoked over
 * the admin API, tokens minted with a TOTP step-up, an upstream with an API key, admin users,
 * errors of every kind, debug logging on), then EVERYTHING it wrote is searched: stdout and
 * stderr, every column of the audit and usage tables, and the metrics page. No key secret, pepper,
 * upstream credential, admin token, TOTP seed or access token may appear.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { type FaultStub, startFaultStub, waitFor } from './support.js';

const UPSTREAM_SECRET = 'sk-upstream-hygiene-0123456789abcdef';
let s: SluiceProcess;
let stub: FaultStub;
let adminToken: string;
/** Every secret the workload handled, with a label for the failure message. */
const secrets: [string, string][] = [];

beforeAll(async () => {
  stub = await startFaultStub();
  const dir = tempDir('sluice-secrets-');
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: up, kind: openai, baseUrl: "${stub.url}", apiKey: "\${HYGIENE_UPSTREAM_KEY}", timeouts: { headers: 1s } }
  - { name: local, kind: mock }
models:
  - { match: "up-*", upstream: up }
  - { match: "hang-*", upstream: up }
  - { match: "reset-*", upstream: up }
  - { match: "*", upstream: local }
tiers:
  default: { limits: [{ id: rpm, requests: 5, window: 1m }] }
actions:
  images.generate: { stepUp: true }
hardening: { authFailures: { perIp: 10, window: 1m } }
log: { level: debug }
`,
  );
  s = await startSluice({ config, dataDir: dir, env: { HYGIENE_UPSTREAM_KEY: UPSTREAM_SECRET } });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  secrets.push(['upstream credential', UPSTREAM_SECRET], ['admin token', adminToken]);
  const pepperHex = readFileSync(join(dir, 'pepper'), 'utf8').trim();
  secrets.push(
    ['pepper (hex)', pepperHex],
    ['pepper (base64)', Buffer.from(pepperHex, 'hex').toString('base64')],
  );
});
afterAll(async () => {
  await s?.stop();
  await stub?.close();
});

const admin = async (path: string, method = 'GET', body?: unknown, token = adminToken) => {
  const r = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: (await r.json()) as any };
};
const data = async (path: string, auth: Record<string, string>, body?: unknown) => {
  const r = await fetch(`${s.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
};
const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hello' }],
  ...extra,
});

/** The secret part of a key (what must never be written), and the key as presented. */
function track(label: string, key: string) {
  secrets.push([`${label} (secret part)`, key.split('-').pop()!], [label, key]);
}

describe('secrets hygiene', () => {
  it('runs a varied workload', async () => {
    // Admin: tenant, users, keys created, rotated, revoked, TOTP enrolled.
    expect((await admin('/admin/v1/tenants', 'POST', { id: 'acme' })).status).toBe(201);
    const op = await admin('/admin/v1/users', 'POST', { name: 'ops', role: 'operator' });
    secrets.push(['operator token', op.body.token]);
    const created = await admin(
      '/admin/v1/keys',
      'POST',
      { tenant: 'acme', tier: 'default', name: 'main' },
      op.body.token,
    );
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    track('key', key);
    const other = await admin('/admin/v1/keys', 'POST', { tenant: 'acme' });
    track('second key', other.body.key);
    const totp = await admin(`/admin/v1/keys/${created.body.id}/totp`, 'POST', {});
    expect(totp.status).toBe(200);
    secrets.push(['key TOTP seed', totp.body.secret]);
    const meTotp = await admin('/admin/v1/me/totp', 'POST', {});
    secrets.push(['admin TOTP seed', meTotp.body.secret]);

    const bearer = { authorization: `Bearer ${key}` };
    // Data plane: calls through the mock and through the credentialed upstream, streams too.
    expect((await data('/v1/chat/completions', bearer, chat('demo-model'))).status).toBe(200);
    expect((await data('/v1/chat/completions', bearer, chat('up-1', { stream: true }))).status).toBe(200);
    expect(
      (await data('/v1/messages', { 'x-api-key': key }, { ...chat('demo-claude'), max_tokens: 20 })).status,
    ).toBe(200);
    // Tokens: minted (with the TOTP step-up), used, then refused where a fresh factor is needed.
    const minted = await data('/sluice/v1/token', bearer, { otp: totpCode(totp.body.secret, Date.now()) });
    expect(minted.status).toBe(200);
    const jwt = JSON.parse(minted.text).access_token as string;
    secrets.push(['access token', jwt]);
    expect((await data('/v1/models', { authorization: `Bearer ${jwt}` })).status).toBe(200);
    const plain = JSON.parse((await data('/sluice/v1/token', bearer, {})).text).access_token as string;
    secrets.push(['access token (no step-up)', plain]);
    const stepUp = await data(
      '/v1/images/generations',
      { authorization: `Bearer ${plain}` },
      { model: 'demo-image', prompt: 'x' },
    );
    expect(stepUp.status).toBe(401);

    // Errors: upstream down and hanging, limits, bad input, a key in the URL, near-miss secrets.
    expect((await data('/v1/chat/completions', bearer, chat('reset-1'))).status).toBe(502);
    expect((await data('/v1/chat/completions', bearer, chat('hang-1'))).status).toBe(504);
    expect((await data('/v1/chat/completions', bearer, '{"model":')).status).toBe(400);
    for (let i = 0; i < 4; i++) await data('/v1/chat/completions', bearer, chat('demo-model'));
    expect((await data('/v1/chat/completions', bearer, chat('demo-model'))).status).toBe(429);
    await data(`/v1/models?api_key=${key}`, {});
    await data('/v1/models', { authorization: `Bearer ${key.slice(0, -1)}X` });
    await data('/v1/models', { authorization: `Basic ${Buffer.from(`u:${key}`).toString('base64')}` });
    await admin('/admin/v1/keys', 'GET', undefined, key); // a data-plane key on the management plane
    await admin(`/admin/v1/keys?token=${adminToken}`, 'GET', undefined, 'sa-wrong');

    // Rotation and revocation; the old secret during and after its grace period.
    const rotated = await admin(`/admin/v1/keys/${created.body.id}/rotate`, 'POST', { grace: '1s' });
    expect(rotated.status).toBe(200);
    track('rotated key', rotated.body.key);
    // The old secret after its grace period: poll until it is refused (grace 1 s, key cache 1 s).
    const afterGrace = await waitFor(async () => (await data('/v1/models', bearer)).status === 401, 10_000);
    expect(afterGrace).toBe(true);
    await data('/v1/models', { authorization: `Bearer ${rotated.body.key}` });
    expect((await admin(`/admin/v1/keys/${other.body.id}/revoke`, 'POST', {})).status).toBe(200);
    await data('/v1/models', { authorization: `Bearer ${other.body.key}` });
    await admin('/admin/v1/audit?limit=50');
    await admin('/admin/v1/usage');
  });

  it('nothing the process wrote, stored or exposes contains a secret', async () => {
    const metrics = await (
      await fetch(`${s.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).text();
    expect(await s.stop()).toBe(0);
    const out = s.output();
    expect(out).toContain('upstream call failed'); // errors were logged: there was something to leak into
    const db = new Database(join(s.dataDir, 'sluice.db'), { readonly: true });
    const tables = (['audit_events', 'usage'] as const).map((t): [string, string] => [
      t,
      JSON.stringify(db.prepare(`select * from ${t}`).all()),
    ]);
    db.close();
    const corpus: [string, string][] = [['process output', out], ['metrics', metrics], ...tables];
    expect(tables[0]![1].length).toBeGreaterThan(1000);
    expect(secrets.length).toBe(15);
    const leaks: string[] = [];
    for (const [label, secret] of secrets) {
      expect(secret.length).toBeGreaterThanOrEqual(20);
      for (const [where, text] of corpus) if (text.includes(secret)) leaks.push(`${label} in ${where}`);
    }
    expect(leaks).toEqual([]);
  });

  it('the upstream received its credential (so there was one to leak)', async () => {
    await waitFor(() => stub.received.length > 0);
    expect(stub.received.some((r) => r.model === 'up-1')).toBe(true);
  });
});
