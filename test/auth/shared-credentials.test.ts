/**
 * Issue 18, shared credentials state: two instances (separate data dirs, separate database handles
 * and Redis connections) sign and verify alike, and a DPoP proof or TOTP code accepted by one is
 * refused by the other. On real PostgreSQL (a database of our own) and SQLite, and the shared Redis
 * at 127.0.0.1:6379 under a unique prefix (only our keys are deleted).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDpop, jwkThumbprint, type ReplayCache } from '../../src/auth/dpop.js';
import { FileKeyStorage, isTokenRefusal, type TokenClaims, TokenService } from '../../src/auth/tokens.js';
import { newTotpSecret, type SharedTotpGuard, totpCode, verifyTotpShared } from '../../src/auth/totp.js';
import type { Refusal } from '../../src/core/errors.js';
import { importKeyFile, RedisReplayStore } from '../../src/stores/credential-state.js';
import { SqlReplayStore, SqlSigningKeyStore } from '../../src/stores/sql/signing-key-store.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

const PEPPER = randomBytes(32);
const T0 = Date.UTC(2024, 0, 1, 12);
const MIN = 60_000;
const DAY = 86_400_000;

function fakeClock(start = T0) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-shared-cred-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const claims = (x: TokenClaims | Refusal): TokenClaims => {
  if (isTokenRefusal(x)) throw new Error(`expected claims, got ${x.code} (${x.internal})`);
  return x;
};

describe.each(DIALECTS)('shared signing keys ($name)', ({ make }) => {
  let db: TestDatabase;
  beforeAll(() => {
    db = make();
  });
  afterAll(async () => {
    await db.cleanup();
  });

  it('a JWT minted on instance A is accepted by instance B (own data dir, own connection), across a rotation', async () => {
    const clock = fakeClock();
    // 1. Two instances open at the same moment: one first key between them, not two.
    const [sqlA, sqlB] = [await db.open(), await db.open()];
    const [a, b] = await Promise.all([
      TokenService.open({ dataDir: await tempDir(), clock, storage: new SqlSigningKeyStore(sqlA, PEPPER) }),
      TokenService.open({ dataDir: await tempDir(), clock, storage: new SqlSigningKeyStore(sqlB, PEPPER) }),
    ]);
    expect(a.currentKid()).toBe(b.currentKid());
    expect(await new SqlSigningKeyStore(sqlA, PEPPER).count()).toBe(1);
    // 2. Minted on A, verified on B.
    const m = await a.mint({ keyId: 'k1', tenantId: 'acme' });
    expect(claims(await b.verify(m.token))).toMatchObject({ keyId: 'k1', tenantId: 'acme', jti: m.jti });
    // 3. A rotates after a week; B has never seen the new key and picks it up on first use.
    clock.advance(7 * DAY);
    const m2 = await a.mint({ keyId: 'k2', tenantId: 'acme' });
    expect(m2.kid).not.toBe(m.kid);
    expect(claims(await b.verify(m2.token)).keyId).toBe('k2');
    // 4. Both JWKS list every active key (the retired one still verifies until its tokens expire).
    await b.rotateIfDue();
    expect(
      b
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([m.kid, m2.kid].sort());
    expect(
      a
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([m.kid, m2.kid].sort());
    // 5. B signs with the same current key as A (no rotation of its own).
    expect((await b.mint({ keyId: 'k3', tenantId: 'acme' })).kid).toBe(m2.kid);
    // 6. Once every token of the retired key has expired, it leaves the store and both JWKS.
    clock.advance(16 * MIN);
    await a.rotateIfDue();
    clock.advance(31_000);
    await b.rotateIfDue();
    expect(b.jwks().keys.map((k) => k.kid)).toEqual([m2.kid]);
    expect(await new SqlSigningKeyStore(sqlA, PEPPER).count()).toBe(1);
  });

  it('private keys are sealed at rest; another pepper cannot open them', async () => {
    const sql = await db.open();
    const store = new SqlSigningKeyStore(sql, PEPPER);
    const svc = await TokenService.open({ dataDir: await tempDir(), clock: fakeClock(), storage: store });
    const [k] = (await store.load()).filter((x) => x.kid === svc.currentKid());
    const rows = await (sql.db as unknown as import('kysely').Kysely<Record<string, { private_jwk: string }>>)
      .selectFrom('signing_keys')
      .select('private_jwk')
      .execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.private_jwk).not.toContain(String(k!.privateJwk.d));
    await expect(new SqlSigningKeyStore(sql, randomBytes(32)).load()).rejects.toThrow(/same SLUICE_PEPPER/);
  });
});

describe('upgrading from per-data-dir key files', () => {
  it('keys of the data dir file are imported into an empty control store: old tokens keep verifying', async () => {
    const db = DIALECTS[0]!.make();
    try {
      const dir = await tempDir();
      const clock = fakeClock();
      const old = await TokenService.open({ dataDir: dir, clock }); // the file, as before
      const m = await old.mint({ keyId: 'k1', tenantId: 'acme' });
      const store = new SqlSigningKeyStore(await db.open(), PEPPER);
      expect(await importKeyFile(store, join(dir, 'jwt-keys.json'))).toBe(1);
      expect(await importKeyFile(store, join(dir, 'jwt-keys.json'))).toBe(0); // only into an empty store
      const svc = await TokenService.open({ dataDir: await tempDir(), clock, storage: store });
      expect(claims(await svc.verify(m.token)).keyId).toBe('k1');
      expect((await new FileKeyStorage(join(dir, 'jwt-keys.json')).load()).length).toBe(1);
    } finally {
      await db.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Replay guards: Redis (two connections) and the control store (two handles), same cases.

const redisPrefix = `sluice-test:${randomBytes(6).toString('hex')}:auth:`;
const redisClients: Redis[] = [];
afterAll(async () => {
  const r = redisClients[0];
  if (r) {
    const keys = await r.keys(`${redisPrefix}*`);
    if (keys.length > 0) await r.del(...keys);
  }
  for (const c of redisClients) c.disconnect();
});

type Guards = ReplayCache & SharedTotpGuard;
const backends: { name: string; pair: () => Promise<{ a: Guards; b: Guards; done: () => Promise<void> }> }[] =
  [
    {
      name: 'redis',
      pair: async () => {
        const [ra, rb] = [
          new Redis({ host: '127.0.0.1', port: 6379 }),
          new Redis({ host: '127.0.0.1', port: 6379 }),
        ];
        redisClients.push(ra, rb);
        return {
          a: new RedisReplayStore(ra, redisPrefix),
          b: new RedisReplayStore(rb, redisPrefix),
          done: async () => {},
        };
      },
    },
    ...DIALECTS.map(({ name, make }) => ({
      name: `control store (${name})`,
      pair: async () => {
        const db = make();
        const [sa, sb] = [await db.open(), await db.open()];
        return { a: new SqlReplayStore(sa), b: new SqlReplayStore(sb), done: () => db.cleanup() };
      },
    })),
  ];

describe.each(backends)('shared replay guards: $name', ({ pair }) => {
  let a: Guards;
  let b: Guards;
  let done: () => Promise<void>;
  beforeAll(async () => {
    ({ a, b, done } = await pair());
  });
  afterAll(async () => {
    await done();
  });

  it('a DPoP proof accepted by instance A is refused by instance B', async () => {
    const kp = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(kp.publicKey);
    const htu = 'https://gw.example.com/v1/chat/completions';
    const proof = await new SignJWT({ htm: 'POST', htu, jti: randomBytes(12).toString('base64url') })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .setIssuedAt(Math.floor(T0 / 1000))
      .sign(kp.privateKey);
    const check = (replay: ReplayCache) => checkDpop(proof, { htm: 'POST', htu, now: T0, replay });
    expect(await check(a)).toEqual({ jkt: await jwkThumbprint(jwk) });
    const onB = await check(b);
    expect(onB).toMatchObject({ code: 'SLUICE_DPOP_INVALID', internal: 'replayed jti' });
    expect(await check(a)).toMatchObject({ code: 'SLUICE_DPOP_INVALID' });
  });

  it('a TOTP code accepted by instance A is refused by instance B, and so is an older one', async () => {
    const secret = newTotpSecret();
    const subject = `key-${randomBytes(4).toString('hex')}`;
    const now = T0 + 95_000; // mid-step
    const code = totpCode(secret, now);
    expect(await verifyTotpShared(secret, code, now, { guard: a, subject })).toMatchObject({ ok: true });
    expect(await verifyTotpShared(secret, code, now, { guard: b, subject })).toEqual({
      ok: false,
      reason: 'replayed',
    });
    // The previous step's code is still inside the ±1 window, but older than the one used.
    const older = totpCode(secret, now - 30_000);
    expect(await verifyTotpShared(secret, older, now, { guard: b, subject })).toEqual({
      ok: false,
      reason: 'replayed',
    });
    // The next step's code is newer: accepted once, by whichever instance sees it first.
    const next = totpCode(secret, now + 30_000);
    expect(await verifyTotpShared(secret, next, now + 30_000, { guard: b, subject })).toMatchObject({
      ok: true,
    });
    expect(await verifyTotpShared(secret, next, now + 30_000, { guard: a, subject })).toMatchObject({
      ok: false,
    });
  });

  it('concurrent claims of one proof on both instances: exactly one wins', async () => {
    const key = `race-${randomBytes(6).toString('hex')}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).remember(key, T0 + 60_000, T0)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});

describe('rotation races and store outages', () => {
  it('two instances due for rotation at once end on one new key', async () => {
    const db = DIALECTS[0]!.make();
    try {
      const clock = fakeClock();
      const storage = () => db.open().then((h) => new SqlSigningKeyStore(h, PEPPER));
      const a = await TokenService.open({ dataDir: await tempDir(), clock, storage: await storage() });
      const b = await TokenService.open({ dataDir: await tempDir(), clock, storage: await storage() });
      const first = a.currentKid();
      clock.advance(7 * DAY);
      await Promise.all([a.rotateIfDue(), b.rotateIfDue()]);
      expect(a.currentKid()).not.toBe(first);
      expect(b.currentKid()).toBe(a.currentKid());
      expect(await (await storage()).count()).toBe(2);
    } finally {
      await db.cleanup();
    }
  });

  it('with the key store unreachable, tokens are still minted and verified with the keys already loaded', async () => {
    const clock = fakeClock();
    const inner = new FileKeyStorage(join(await tempDir(), 'jwt-keys.json'));
    let down = false;
    const flaky = {
      shared: true,
      load: () => (down ? Promise.reject(new Error('connection refused')) : inner.load()),
      rotate: (
        p: Parameters<typeof inner.rotate>[0],
        n: Parameters<typeof inner.rotate>[1],
        d: readonly string[],
      ) => (down ? Promise.reject(new Error('connection refused')) : inner.rotate(p, n, d)),
      prune: (k: readonly string[]) =>
        down ? Promise.reject(new Error('connection refused')) : inner.prune(k),
    };
    const svc = await TokenService.open({ dataDir: await tempDir(), clock, storage: flaky });
    down = true;
    clock.advance(7 * DAY); // due for rotation and a re-read: both fail
    const m = await svc.mint({ keyId: 'k1', tenantId: 'acme' });
    expect(claims(await svc.verify(m.token)).keyId).toBe('k1');
    down = false;
    clock.advance(MIN);
    expect((await svc.mint({ keyId: 'k1', tenantId: 'acme' })).kid).not.toBe(m.kid); // rotates once back
  });
});
