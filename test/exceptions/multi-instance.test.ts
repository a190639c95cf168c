/**
 * "On every instance": two `serve()` instances on one PostgreSQL and one Redis, one fake clock.
 * An exception approved through one instance's admin API lifts the 429 on the other (the Redis
 * invalidation channel tells it to reload), and at expiry both refuse again with nothing written.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { withDataDir } from '../../src/config/resolve.js';
import { type RunningSluice, serve } from '../../src/main.js';

const dbName = `sluice_exc_${randomBytes(4).toString('hex')}`;
const tenant = `exc-${randomBytes(4).toString('hex')}`;
const pgAdmin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
const clock = {
  t: Date.now(),
  now() {
    return this.t;
  },
};
const yaml = `database: { url: "postgres://postgres@127.0.0.1:5432/${dbName}" }
redis: { url: "redis://127.0.0.1:6379" }
limits: { store: redis, url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: rpd-${tenant}, requests: 2, window: 1d }
`;
let a: RunningSluice;
let b: RunningSluice;
let key: string;
let adminToken: string;

async function start(name: string): Promise<RunningSluice> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-exc-${name}-`));
  const config = withDataDir(parseConfig(yaml, name), dir);
  return serve({
    source: { file: null, source: yaml, config },
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    clock,
    logger: pino({ level: 'silent' }),
    instanceId: `exc-${name}-${randomBytes(3).toString('hex')}`,
  });
}

beforeAll(async () => {
  await pgAdmin.connect();
  await pgAdmin.query(`create database ${dbName}`);
  process.env.SLUICE_PEPPER = randomBytes(32).toString('hex');
  process.env.SLUICE_AUDIT_KEY = generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
  a = await start('a');
  b = await start('b');
  adminToken = (a.adminTokenFile ? readFileSync(a.adminTokenFile, 'utf8') : '').trim();
  const r = await fetch(`${a.urls.admin}/admin/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant }),
  });
  key = ((await r.json()) as { key: string }).key;
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.close(5000), b?.close(5000)]);
  await pgAdmin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await pgAdmin.end();
});

const chat = (s: RunningSluice) =>
  fetch(`${s.urls.gateway}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });

describe('exceptions on two instances', () => {
  it('approved on one instance, lifted on the other; ended on both at expiry', async () => {
    // 1. the shared daily limit binds on both
    expect((await chat(a)).status).toBe(200);
    expect((await chat(b)).status).toBe(200);
    expect((await chat(a)).status).toBe(429);
    expect((await chat(b)).status).toBe(429);
    // 2. asked on b, approved on a
    const asked = await fetch(`${b.urls.gateway}/sluice/v1/exceptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        limits: [{ id: `rpd-${tenant}`, limit: 6 }],
        justification: 'two instances, one exception',
        duration: 600,
      }),
    });
    const { id } = (await asked.json()) as { id: string };
    const ok = await fetch(`${a.urls.admin}/admin/v1/exceptions/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(ok.status).toBe(200);
    // 3. a applies it at once; b as soon as the Redis message arrives (a denied request costs nothing)
    // (Regression: each instance's Redis deny cache used to keep refusing a raised bucket for up to 60 s.)
    expect((await chat(a)).status).toBe(200);
    await expect.poll(async () => (await chat(b)).status, { timeout: 5000, interval: 50 }).toBe(200);
    // 4. ten minutes later both refuse again; nothing was written to end it
    clock.t += 600_000;
    expect((await chat(a)).status).toBe(429);
    expect((await chat(b)).status).toBe(429);
  });
});
