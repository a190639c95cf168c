/**
 * Two `sluice serve` processes on one PostgreSQL and one Redis behave as one: a key revoked through
 * one instance's admin API is refused by the other within a second; a policy applied on one changes
 * the limits on the other; both write one audit trail that verifies.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const dbName = `sluice_e2e_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
const env = {
  SLUICE_PEPPER: randomBytes(32).toString('hex'),
  SLUICE_AUDIT_KEY: generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString(),
};
let a: SluiceProcess;
let b: SluiceProcess;
let configFile: string;
const policy = (rpm: number) => `database: { url: "postgres://postgres@127.0.0.1:5432/${dbName}" }
redis: { url: "redis://127.0.0.1:6379" }
limits: { store: redis, url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: rpm-${rpm}, requests: ${rpm}, window: 1m }
`;

beforeAll(async () => {
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  Object.assign(process.env, env);
  configFile = writeConfig(tempDir(), policy(1000));
  a = await startSluice({ config: configFile, env });
  b = await startSluice({ config: configFile, env });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await admin.end();
});

const chat = (s: SluiceProcess, key: string) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });

describe('two instances on one PostgreSQL and one Redis', () => {
  it('a key revoked through one instance is refused by the other within a second', async () => {
    const k = await createKey(a);
    expect((await chat(b, k.key)).status).toBe(200); // cached on b
    const token = readFileSync(join(a.dataDir, 'admin-token'), 'utf8').trim();
    const r = await fetch(`${a.adminUrl}/admin/v1/keys/${k.id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    const t0 = Date.now();
    let status = 200;
    while (Date.now() - t0 < 1000) {
      status = (await chat(b, k.key)).status;
      if (status === 401) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(status).toBe(401);
  });

  it('a policy applied on one instance changes the limits on the other', async () => {
    const k = await createKey(a);
    const f = writeConfig(tempDir(), policy(3));
    const applied = await cli(['policy', 'apply', f, '--data-dir', a.dataDir], { env });
    expect(applied.code).toBe(0);
    let codes: number[] = [];
    for (let attempt = 0; attempt < 30; attempt++) {
      codes = [];
      for (let i = 0; i < 5; i++) codes.push((await chat(b, k.key)).status);
      if (codes.includes(429)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(codes).toContain(429);
    // The limit is shared through Redis: instance a sees the same exhausted bucket.
    expect((await chat(a, k.key)).status).toBe(429);
  });

  it('both write one audit trail that verifies', async () => {
    await Promise.all([a.stop(), b.stop()]);
    const r = await cli(['audit', 'verify', '--config', configFile, '--data-dir', a.dataDir], { env });
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('ok'));
    expect(lines.length).toBeGreaterThanOrEqual(2);
  });
});
