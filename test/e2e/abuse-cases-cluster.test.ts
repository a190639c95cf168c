/**
 * Two `sluice serve` instances on one PostgreSQL database and one Redis: a quarantine opened on A
 * refuses on B, and a release made on A (admin API, step-up) restores access on B — through the
 * control store and the `~cases` announcement. Needs `node scripts/build.mjs`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const dbName = `sluice_e2e_cases_${randomBytes(4).toString('hex')}`;
const pgAdmin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
const env = {
  SLUICE_PEPPER: randomBytes(32).toString('hex'),
  SLUICE_AUDIT_KEY: generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString(),
};
let a: SluiceProcess;
let b: SluiceProcess;
let adminToken: string;
const keys: { id: string; key: string }[] = [];

beforeAll(async () => {
  await pgAdmin.connect();
  await pgAdmin.query(`create database ${dbName}`);
  const config = writeConfig(
    tempDir(),
    `database: { url: "postgres://postgres@127.0.0.1:5432/${dbName}" }
redis: { url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
trustedProxies: ["127.0.0.1"]
`,
  );
  const dirA = tempDir();
  a = await startSluice({ config, env, dataDir: dirA });
  adminToken = readFileSync(join(dirA, 'admin-token'), 'utf8').trim();
  b = await startSluice({ config, env });
  for (let i = 0; i < 10; i++) {
    const r = await admin('/admin/v1/keys', { method: 'POST', body: { tenant: `cl${i}`, tier: 'default' } });
    expect(r.status).toBe(201);
    keys.push(await r.json());
  }
}, 120_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await pgAdmin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await pgAdmin.end();
});

const admin = (
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) =>
  fetch(`${a.adminUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
const openai = (s: SluiceProcess, key: string) =>
  new OpenAI({
    baseURL: `${s.url}/v1`,
    apiKey: key,
    maxRetries: 0,
    defaultHeaders: { 'x-forwarded-for': '192.0.2.10' },
  });
const status = (s: SluiceProcess, key: string) =>
  openai(s, key)
    .chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content: 'hello' }] })
    .then(
      () => 200,
      (e: { status?: number }) => e.status ?? 0,
    );

/** Sends requests to B one after another until one answers `want` (each waits for its answer; no timers). */
async function until(key: string, want: number): Promise<{ tries: number; ms: number }> {
  const t0 = performance.now();
  for (let tries = 1; tries <= 20_000; tries++)
    if ((await status(b, key)) === want) return { tries, ms: performance.now() - t0 };
  throw new Error(`B never answered ${want}`);
}

describe('abuse cases across instances', () => {
  it('a quarantine opened on A refuses on B; a release on A restores B', async () => {
    for (let round = 0; round < 4; round++)
      for (let i = 0; i < keys.length; i++)
        await openai(a, keys[i]!.key)
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
    const list = (await (await admin('/admin/v1/cases?status=open')).json()).data as {
      id: string;
      kind: string;
      evidence: { related: { keys: string[] } };
    }[];
    const q = list.find((c) => c.kind === 'quarantine')!;
    expect(q).toBeDefined();
    const member = keys.find((k) => k.id === q.evidence.related.keys[0])!;
    expect(await status(a, member.key)).toBe(403);
    const opened = await until(member.key, 403);
    const { secret } = await (await admin('/admin/v1/me/totp', { method: 'POST', body: {} })).json();
    const rel = await admin(`/admin/v1/cases/${q.id}/release`, {
      method: 'POST',
      body: {},
      headers: { 'x-sluice-otp': totpCode(secret, Date.now()) },
    });
    expect(rel.status).toBe(200);
    expect(await status(a, member.key)).toBe(200);
    const released = await until(member.key, 200);
    // Reported, not asserted (the machine is shared): how long B took to apply each change.
    console.log(
      `B applied the quarantine after ${opened.ms.toFixed(0)} ms, the release after ${released.ms.toFixed(0)} ms`,
    );
  }, 180_000);
});
