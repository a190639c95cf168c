/**
 * Issue 11 over HTTP against `sluice serve`: the same prompt template from many fresh keys and
 * tenants in a short time is quarantined; the real `openai` and `@anthropic-ai/sdk` clients get
 * 403 SLUICE_QUARANTINED on the paused capability while embeddings still work; the case is in
 * GET /admin/v1/cases and `sluice cases list`; a release needs step-up and restores access; the
 * loopback webhook receives signed notifications; the audit export has the transitions; and a
 * quarantine survives a restart (the case is in the control store). Needs `node scripts/build.mjs`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { verifyAlertSignature } from '../../src/observability/alerts.js';
import { cli, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const SECRET = 'hook-secret-e2e';
let s: SluiceProcess;
let dir: string;
let configFile: string;
let adminToken: string;
let receiver: Server;
const hooks: { body: string; signature: string | undefined }[] = [];
let hookWaiter: (() => void) | null = null;
const keys: { id: string; key: string }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hooks.push({ body, signature: req.headers['x-sluice-signature'] as string | undefined });
      res.end('ok');
      hookWaiter?.();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as AddressInfo).port;
  dir = tempDir('sluice-abuse-e2e-');
  configFile = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
trustedProxies: ["127.0.0.1"]
alerts: [{ webhook: "http://127.0.0.1:${port}/hook", secret: "${SECRET}", on: [quarantine] }]
`,
  );
  s = await startSluice({ config: configFile, dataDir: dir });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  for (let i = 0; i < 20; i++) {
    const r = await admin('/admin/v1/keys', {
      method: 'POST',
      body: { tenant: `camp${i}`, tier: 'default' },
    });
    expect(r.status).toBe(201);
    keys.push(await r.json());
  }
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await new Promise((r) => receiver?.close(r));
});

const admin = (
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) =>
  fetch(`${s.adminUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });

// Each campaign comes from its own network (through the trusted loopback proxy), so each is a case of its own.
const openai = (key: string, ip = '192.0.2.10') =>
  new OpenAI({
    baseURL: `${s.url}/v1`,
    apiKey: key,
    maxRetries: 0,
    defaultHeaders: { 'x-forwarded-for': ip },
  });
const anthropic = (key: string, ip = '198.51.100.20') =>
  new Anthropic({ baseURL: s.url, apiKey: key, maxRetries: 0, defaultHeaders: { 'x-forwarded-for': ip } });

/** Waits for the receiver to hold a notification matching `pred` (resolved by the receiver's event, no timers). */
async function hook(pred: (b: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (;;) {
    const found = hooks.find((h) => pred(JSON.parse(h.body)));
    if (found) {
      expect(verifyAlertSignature(SECRET, found.body, found.signature)).toBe(true);
      return JSON.parse(found.body);
    }
    await new Promise<void>((r) => (hookWaiter = r));
  }
}

type CaseRow = { id: string; kind: string; capability: string; evidence: { related: { keys: string[] } } };
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e as { status?: number; error?: unknown },
  );

describe('abuse cases over HTTP', () => {
  let chatCase = '';
  let msgCase = '';
  let chatMember: { id: string; key: string };
  let msgMember: { id: string; key: string };

  it('template campaigns across fresh keys are quarantined per capability, in both wire formats', async () => {
    for (let round = 0; round < 4; round++)
      for (let i = 0; i < 10; i++) {
        await openai(keys[i]!.key)
          .chat.completions.create({
            model: 'demo-model',
            messages: [
              {
                role: 'user',
                content: `Write a five-star review for product ${i * 13 + round} mentioning fast shipping`,
              },
            ],
          })
          .catch((err: unknown) => {
            if (!(err instanceof OpenAI.APIError) || err.status !== 403) throw err;
          });
        await anthropic(keys[10 + i]!.key)
          .messages.create({
            model: 'demo-model',
            max_tokens: 32,
            messages: [
              {
                role: 'user',
                content: `Write a glowing testimonial for gadget ${i * 17 + round} praising quick delivery`,
              },
            ],
          })
          .catch((err: unknown) => {
            if (!(err instanceof Anthropic.APIError) || err.status !== 403) throw err;
          });
      }
    const list = (await (await admin('/admin/v1/cases?status=open')).json()).data as CaseRow[];
    const qc = list.find((c) => c.kind === 'quarantine' && c.capability === 'chat.create');
    const qm = list.find((c) => c.kind === 'quarantine' && c.capability === 'messages.create');
    expect(qc).toBeDefined();
    expect(qm).toBeDefined();
    chatCase = qc!.id;
    msgCase = qm!.id;
    chatMember = keys.find((k) => k.id === qc!.evidence.related.keys[0])!;
    msgMember = keys.find((k) => k.id === qm!.evidence.related.keys[0])!;
    // OpenAI format: 403 SLUICE_QUARANTINED through the real SDK.
    const e1 = await refusal(
      openai(chatMember.key).chat.completions.create({
        model: 'demo-model',
        messages: [{ role: 'user', content: 'hello' }],
      }),
    );
    expect(e1).toBeInstanceOf(OpenAI.APIError);
    expect(e1!.status).toBe(403);
    expect(JSON.stringify(e1!.error)).toContain('SLUICE_QUARANTINED');
    // Anthropic format: the same, through the real SDK.
    const e2 = await refusal(
      anthropic(msgMember.key).messages.create({
        model: 'demo-model',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hello' }],
      }),
    );
    expect(e2).toBeInstanceOf(Anthropic.APIError);
    expect(e2!.status).toBe(403);
    expect(JSON.stringify(e2!.error)).toContain('SLUICE_QUARANTINED');
    // Another capability of the same key still works.
    const emb = await openai(chatMember.key).embeddings.create({ model: 'demo-model', input: 'hello' });
    expect(emb.data.length).toBe(1);
    // The partner is told through the signed webhook.
    await hook((b) => JSON.stringify(b).includes(`paused pending review (case ${chatCase})`));
  }, 180_000);

  it('`sluice cases list|show` read the control store; `sluice cases release` works and survives a restart', async () => {
    const c = ['--data-dir', dir, '--config', configFile];
    const r = await cli(['cases', 'list', '--status', 'open', ...c]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(chatCase);
    expect(r.stdout).toContain(msgCase);
    const shown = JSON.parse((await cli(['cases', 'show', chatCase, ...c])).stdout);
    expect(shown.evidence.related.keys).toContain(chatMember.id);
    expect(shown.evidence.sampleRequests.length).toBeGreaterThan(0);
    expect((await cli(['cases', 'list', '--status', 'nope', ...c])).code).not.toBe(0);
    expect((await cli(['cases', 'show', 'case_nope', ...c])).code).not.toBe(0);
    // Extend, confirm and note the chat case from the CLI (the server holds it open meanwhile).
    const before = JSON.parse((await cli(['cases', 'show', chatCase, ...c])).stdout).expiresAt as number;
    expect((await cli(['cases', 'extend', chatCase, '--by', 'nope', ...c])).code).not.toBe(0);
    expect((await cli(['cases', 'extend', chatCase, '--by', '12h', ...c])).code).toBe(0);
    expect((await cli(['cases', 'confirm', chatCase, ...c])).code).toBe(0);
    expect((await cli(['cases', 'note', chatCase, 'asked the tenant', ...c])).code).toBe(0);
    const after = JSON.parse((await cli(['cases', 'show', chatCase, ...c])).stdout);
    expect(after.expiresAt).toBe(before + 12 * 3_600_000);
    expect(after.status).toBe('confirmed');
    expect(after.notes.map((n: { text: string }) => n.text)).toEqual(
      expect.arrayContaining(['confirmed', 'asked the tenant']),
    );
    const rel = await cli(['cases', 'release', msgCase, '--note', 'researcher', ...c]);
    expect(rel.code).toBe(0);
    expect(rel.stdout).toContain('released');
    // The CLI's release tells the partner through the signed webhook, as the admin API does.
    await hook((b) => JSON.stringify(b).includes(`case ${msgCase} released`));
    // A restart: the chat quarantine is loaded again, the CLI's release holds.
    await s.stop();
    s = await startSluice({ config: configFile, dataDir: dir });
    const e1 = await refusal(
      openai(chatMember.key).chat.completions.create({
        model: 'demo-model',
        messages: [{ role: 'user', content: 'hello' }],
      }),
    );
    expect(e1!.status).toBe(403);
    const ok = await anthropic(msgMember.key).messages.create({
      model: 'demo-model',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(ok.content.length).toBeGreaterThan(0);
    // GET /admin/v1/cases is served from the control store: the restarted instance loaded only the
    // live cases, yet lists the one the CLI released.
    const listed = await (await admin('/admin/v1/cases?status=released')).json();
    expect(listed.data.map((x: CaseRow) => x.id)).toContain(msgCase);
    const one = await (await admin(`/admin/v1/cases/${msgCase}`)).json();
    expect(one.status).toBe('released');
  }, 90_000);

  it('an admin release needs step-up, restores access, notifies, and the audit export has the transitions', async () => {
    const noOtp = await admin(`/admin/v1/cases/${chatCase}/release`, {
      method: 'POST',
      body: { note: 'ok' },
    });
    expect(noOtp.status).toBe(401);
    const { secret } = await (await admin('/admin/v1/me/totp', { method: 'POST', body: {} })).json();
    const rel = await admin(`/admin/v1/cases/${chatCase}/release`, {
      method: 'POST',
      body: { note: 'customer explained' },
      headers: { 'x-sluice-otp': totpCode(secret, Date.now()) },
    });
    expect(rel.status).toBe(200);
    expect((await rel.json()).status).toBe('released');
    const ok = await openai(chatMember.key).chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'hello again' }],
    });
    expect(ok.choices.length).toBeGreaterThan(0);
    await hook((b) => JSON.stringify(b).includes(`case ${chatCase} released`));
    await s.stop();
    const c = ['--data-dir', dir, '--config', configFile];
    expect(JSON.parse((await cli(['cases', 'show', chatCase, ...c])).stdout).status).toBe('released');
    const exp = await cli(['audit', 'export', ...c]);
    expect(exp.stdout).toContain('abuse.case.open');
    expect(exp.stdout).toContain('abuse.case.release');
    expect(exp.stdout).toContain('cli.cases.release');
    expect(exp.stdout).toContain('abuse.case.extend');
    expect(exp.stdout).toContain('abuse.case.confirm');
    expect(exp.stdout).toContain(chatCase);
    expect(exp.stdout).toContain(msgCase);
  }, 90_000);
});
