/**
 * Issue 20, rotation of the server's own secrets on two instances sharing PostgreSQL and Redis, one
 * virtual clock (docs/trust.md, "Rotating the pepper and the token signing keys"):
 * 1. token signing keys: a token signed before a rotation keeps verifying on both instances through
 *    its lifetime (the grace), then the old key leaves both instances' JWKS;
 * 2. the pepper: both instances restart with SLUICE_PEPPER=new and SLUICE_PEPPER_PREVIOUS=old until a
 *    date. Keys, admin tokens and sealed signing keys made under the old pepper work on both instances
 *    until then (each is rewritten under the new pepper when used); after it, one never used is refused
 *    on both.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSluice } from '../../src/main.js';
import { adminCall, chat, fakeClock, setProcessSecrets, startInstance, tempDatabase } from './support.js';

const MIN = 60_000;
const clock = fakeClock();
let db: Awaited<ReturnType<typeof tempDatabase>>;
let yaml: string;
let a: RunningSluice;
let b: RunningSluice;
let adminToken: string;
const keys: Record<'used' | 'other' | 'idle', { id: string; key: string }> = {} as never;

beforeAll(async () => {
  db = await tempDatabase('sluice_trust_secrets');
  setProcessSecrets();
  delete process.env.SLUICE_PEPPER_PREVIOUS;
  delete process.env.SLUICE_PEPPER_PREVIOUS_UNTIL;
  yaml = `database: { url: "${db.url}" }
redis: { url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
tokens: { ttl: 15m, rotateEvery: 1h }
`;
  a = await startInstance(yaml, clock, 'a');
  b = await startInstance(yaml, clock, 'b');
  adminToken = readFileSync(a.adminTokenFile!, 'utf8').trim();
  for (const name of ['used', 'other', 'idle'] as const) {
    const r = await adminCall(a, adminToken, 'POST', '/admin/v1/keys', { tenant: 'acme' });
    keys[name] = { id: r.body.key.split('-')[2], key: r.body.key };
  }
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.close(5000), b?.close(5000)]);
  delete process.env.SLUICE_PEPPER_PREVIOUS;
  delete process.env.SLUICE_PEPPER_PREVIOUS_UNTIL;
  await db?.drop();
});

async function mint(s: RunningSluice, key: string): Promise<string> {
  const r = await fetch(`${s.urls.gateway}/sluice/v1/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

async function kids(s: RunningSluice): Promise<string[]> {
  const r = await fetch(`${s.urls.gateway}/.well-known/jwks.json`);
  return ((await r.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
}

const kidOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;

describe('rotating the server secrets', () => {
  it('token signing keys: old tokens verify on both instances through the grace, then the old key is gone from both', async () => {
    // 1. A token signed with the first key, 55 minutes in (the key rotates at 60).
    clock.advance(55 * MIN);
    const t1 = await mint(a, keys.used.key);
    // 2. At 61 minutes instance B mints: it rotates. Both instances accept both tokens.
    clock.advance(6 * MIN);
    const t2 = await mint(b, keys.used.key);
    expect(kidOf(t2)).not.toBe(kidOf(t1));
    for (const s of [a, b]) {
      expect(await chat(s, t1)).toBe(200);
      expect(await chat(s, t2)).toBe(200);
      expect(await kids(s)).toEqual([kidOf(t1), kidOf(t2)].sort());
    }
    // 3. Once every token the old key signed has expired, both instances drop it.
    clock.advance(16 * MIN);
    for (const s of [a, b]) {
      expect(await chat(s, t1)).toBe(401);
      await mint(s, keys.used.key); // any mint (or the minute timer) prunes
      expect(await kids(s)).toEqual([kidOf(t2)]);
    }
  }, 60_000);

  it('the pepper: old keys work on both instances until the date, then only those used meanwhile', async () => {
    const jwksBefore = await kids(a);
    const hashes = async () =>
      Object.fromEntries(
        ((await db.query('select id, hash from api_keys')) as { id: string; hash: string }[]).map((r) => [
          r.id,
          r.hash,
        ]),
      );
    const before = await hashes();
    const sealedBefore = await db.query('select kid, private_jwk from signing_keys');
    // 1. Both instances restart with the new pepper and the old one until tomorrow.
    await Promise.all([a.close(5000), b.close(5000)]);
    process.env.SLUICE_PEPPER_PREVIOUS = process.env.SLUICE_PEPPER;
    process.env.SLUICE_PEPPER = randomBytes(32).toString('hex');
    process.env.SLUICE_PEPPER_PREVIOUS_UNTIL = new Date(clock.now() + 86_400_000).toISOString();
    a = await startInstance(yaml, clock, 'a2');
    b = await startInstance(yaml, clock, 'b2');
    // 2. The signing keys sealed under the old pepper opened (same JWKS) and were sealed again.
    expect(await kids(a)).toEqual(jwksBefore);
    const sealedAfter = await db.query('select kid, private_jwk from signing_keys');
    expect(sealedAfter.map((r: any) => r.private_jwk)).not.toContain(sealedBefore[0].private_jwk);
    expect(await chat(b, await mint(a, keys.used.key))).toBe(200);
    // 3. Through the grace: keys and the admin token made under the old pepper work on both.
    expect(await chat(b, keys.other.key)).toBe(200);
    expect((await adminCall(b, adminToken, 'GET', '/admin/v1/keys')).status).toBe(200);
    const after = await hashes();
    expect(after[keys.used.id]).not.toBe(before[keys.used.id]); // rewritten under the new pepper
    expect(after[keys.other.id]).not.toBe(before[keys.other.id]);
    expect(after[keys.idle.id]).toBe(before[keys.idle.id]); // never used: still the old hash
    // 4. After the date: keys used meanwhile work on both; the idle one is refused on both.
    clock.advance(86_400_000 + 1000);
    for (const s of [a, b]) {
      expect(await chat(s, keys.used.key)).toBe(200);
      expect(await chat(s, keys.other.key)).toBe(200);
      expect(await chat(s, keys.idle.key)).toBe(401);
      expect((await adminCall(s, adminToken, 'GET', '/admin/v1/keys')).status).toBe(200);
    }
  }, 90_000);
});
