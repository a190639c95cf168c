import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTokenRefusal, type TokenClaims, TokenService } from '../../src/auth/tokens.js';
import type { Refusal } from '../../src/core/errors.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-tokens-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const MIN = 60_000;
const DAY = 86_400_000;

function fakeClock(start = Date.UTC(2024, 0, 1)) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const claims = (x: TokenClaims | Refusal): TokenClaims => {
  if (isTokenRefusal(x)) throw new Error(`expected claims, got ${x.code} (${x.internal})`);
  return x;
};

describe('TokenService', () => {
  it('mints a token that verifies to its claims; key file is 0600; JWKS has no private parts', async () => {
    const clock = fakeClock();
    const svc = await TokenService.open({ dataDir: await tempDir(), clock });
    const m = await svc.mint({
      keyId: 'k1',
      tenantId: 'acme',
      scopes: ['chat.create'],
      stepUp: true,
      jkt: 'thumb',
    });
    expect(m.expiresAt).toBe(clock.now() + 15 * MIN);
    const c = claims(await svc.verify(m.token));
    expect(c).toMatchObject({
      keyId: 'k1',
      tenantId: 'acme',
      scopes: ['chat.create'],
      stepUp: true,
      jkt: 'thumb',
      jti: m.jti,
    });
    expect(c.audience).toEqual(['sluice']);
    expect(await svc.fileMode()).toBe(0o600);
    const jwks = svc.jwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: m.kid });
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
    // A token without narrowed scopes or step-up says so.
    const plain = claims(await svc.verify((await svc.mint({ keyId: 'k1', tenantId: 'acme' })).token));
    expect(plain.scopes).toBeNull();
    expect(plain.stepUp).toBe(false);
  });

  it('refuses expired, tampered and foreign tokens as SLUICE_INVALID_TOKEN', async () => {
    const clock = fakeClock();
    const svc = await TokenService.open({ dataDir: await tempDir(), clock, alg: 'ES256' });
    const other = await TokenService.open({ dataDir: await tempDir(), clock, alg: 'ES256' });
    const { token } = await svc.mint({ keyId: 'k1', tenantId: 'acme', ttlMs: 10 * MIN });
    expect(isTokenRefusal(await svc.verify(token))).toBe(false);
    const [h, p, s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'k2' })).toString('base64url')}.${s}`;
    expect(await svc.verify(forged)).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    expect(await other.verify(token)).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    expect(await svc.verify('not.a.jwt')).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    clock.advance(10 * MIN - 1000);
    expect(isTokenRefusal(await svc.verify(token))).toBe(false);
    clock.advance(10_000); // past exp + 5 s tolerance
    const r = await svc.verify(token);
    expect(r).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    expect((r as Refusal).internal).toMatch(/exp/);
  });

  it('narrows the audience: a token for one audience does not verify for another', async () => {
    const svc = await TokenService.open({ dataDir: await tempDir(), clock: fakeClock() });
    const { token } = await svc.mint({ keyId: 'k1', tenantId: 'acme', audience: 'sluice:embeddings' });
    expect(claims(await svc.verify(token, { audience: 'sluice:embeddings' })).audience).toEqual([
      'sluice:embeddings',
    ]);
    expect(await svc.verify(token)).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    expect(await svc.verify(token, { audience: 'sluice:chat' })).toMatchObject({
      code: 'SLUICE_INVALID_TOKEN',
    });
  });

  it('clamps the lifetime to the configured maximum', async () => {
    const clock = fakeClock();
    const svc = await TokenService.open({ dataDir: await tempDir(), clock, ttlMs: 5 * MIN });
    expect((await svc.mint({ keyId: 'k', tenantId: 't', ttlMs: DAY })).expiresAt).toBe(clock.now() + 5 * MIN);
    expect((await svc.mint({ keyId: 'k', tenantId: 't', ttlMs: MIN })).expiresAt).toBe(clock.now() + MIN);
  });

  it('rotates with overlap: old tokens verify until they expire, then the old key leaves the JWKS', async () => {
    const clock = fakeClock();
    const dataDir = await tempDir();
    const svc = await TokenService.open({ dataDir, clock, rotateEveryMs: DAY, ttlMs: 15 * MIN });
    const kid1 = svc.currentKid();
    // 1. A token minted one minute before rotation is due.
    clock.advance(DAY - MIN);
    const old = await svc.mint({ keyId: 'k', tenantId: 't' });
    expect(old.kid).toBe(kid1);
    // 2. Two minutes later the next mint rotates; both keys are published.
    clock.advance(2 * MIN);
    const fresh = await svc.mint({ keyId: 'k', tenantId: 't' });
    expect(fresh.kid).not.toBe(kid1);
    expect(svc.jwks().keys.map((k) => k.kid)).toEqual([kid1, fresh.kid]);
    // 3. The old token still verifies (signed by the retired key) ...
    expect(claims(await svc.verify(old.token)).kid).toBe(kid1);
    // ... and a second instance on the same data dir agrees, picking up the rotation from disk.
    const peer = await TokenService.open({ dataDir, clock, rotateEveryMs: DAY, ttlMs: 15 * MIN });
    expect(isTokenRefusal(await peer.verify(old.token))).toBe(false);
    expect(isTokenRefusal(await peer.verify(fresh.token))).toBe(false);
    // 4. Once it expires it does not.
    clock.advance(14 * MIN);
    expect(await svc.verify(old.token)).toMatchObject({ code: 'SLUICE_INVALID_TOKEN' });
    // 5. The key stays while a token it signed at its last moment (retired at DAY+1m) could be alive ...
    expect(await svc.rotateIfDue()).toBe(false);
    expect(svc.jwks().keys).toHaveLength(2);
    // ... and is pruned from the JWKS and the file once every such token has expired.
    clock.advance(2 * MIN);
    expect(await svc.rotateIfDue()).toBe(false);
    expect(svc.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid]);
    const file = JSON.parse(await readFile(join(dataDir, 'jwt-keys.json'), 'utf8'));
    expect(file.keys.map((k: { kid: string }) => k.kid)).toEqual([fresh.kid]);
    const later = await svc.mint({ keyId: 'k', tenantId: 't' });
    expect(later.kid).toBe(fresh.kid);
    expect(isTokenRefusal(await svc.verify(later.token))).toBe(false);
  });
});
