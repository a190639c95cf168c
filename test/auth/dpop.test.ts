import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessTokenHash,
  checkDpop,
  type DpopCheck,
  jwkThumbprint,
  MemoryReplayCache,
  normalizeHtu,
  verifyDpop,
} from '../../src/auth/dpop.js';
import { isTokenRefusal, TokenService } from '../../src/auth/tokens.js';

const NOW = Date.UTC(2024, 0, 1, 12);
const URL_ = 'https://gw.example.com/v1/chat/completions';
let client: { priv: CryptoKey; jwk: JWK; jkt: string };
let other: { priv: CryptoKey; jwk: JWK; jkt: string };

async function keyPair(alg: 'ES256' | 'EdDSA') {
  const kp = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(kp.publicKey);
  return { priv: kp.privateKey, jwk, jkt: await jwkThumbprint(jwk) };
}

let n = 0;
async function proof(
  k: { priv: CryptoKey; jwk: JWK },
  over: {
    htm?: string;
    htu?: string;
    iat?: number;
    jti?: string;
    ath?: string;
    typ?: string;
    alg?: string;
    jwk?: JWK;
  } = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    htm: over.htm ?? 'POST',
    htu: over.htu ?? URL_,
    jti: over.jti ?? `jti-${n++}`,
  };
  if (over.ath) payload.ath = over.ath;
  return new SignJWT(payload)
    .setProtectedHeader({
      alg: over.alg ?? (k.jwk.kty === 'OKP' ? 'EdDSA' : 'ES256'),
      typ: over.typ ?? 'dpop+jwt',
      jwk: over.jwk ?? k.jwk,
    })
    .setIssuedAt(over.iat ?? Math.floor(NOW / 1000))
    .sign(k.priv);
}

const dirs: string[] = [];
beforeAll(async () => {
  client = await keyPair('ES256');
  other = await keyPair('EdDSA');
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('verifyDpop', () => {
  const token = 'eyJ.access.token';
  const check = (over: Partial<DpopCheck> = {}): DpopCheck => ({
    htm: 'POST',
    htu: URL_,
    accessToken: token,
    jkt: client.jkt,
    now: NOW,
    replay: new MemoryReplayCache(),
    ...over,
  });

  it('accepts a fresh proof bound to the token, ignoring the query string', async () => {
    const p = await proof(client, { ath: accessTokenHash(token) });
    expect(await verifyDpop(p, check({ htu: `${URL_}?x=1#frag` }))).toBeNull();
    expect(normalizeHtu('HTTPS://GW.example.com:443/v1/x?y#z')).toBe('https://gw.example.com/v1/x');
  });

  it('refuses a replayed proof', async () => {
    const replay = new MemoryReplayCache();
    const p = await proof(client, { ath: accessTokenHash(token) });
    expect(await verifyDpop(p, check({ replay }))).toBeNull();
    const again = await verifyDpop(p, check({ replay, now: NOW + 1000 }));
    expect(again).toMatchObject({ code: 'SLUICE_DPOP_INVALID', internal: 'replayed jti' });
  });

  it('refuses a proof for another URL or method', async () => {
    const p = await proof(client, {
      ath: accessTokenHash(token),
      htu: 'https://gw.example.com/v1/embeddings',
    });
    expect(await verifyDpop(p, check())).toMatchObject({ code: 'SLUICE_DPOP_INVALID' });
    const q = await proof(client, {
      ath: accessTokenHash(token),
      htu: 'https://evil.example.com/v1/chat/completions',
    });
    expect((await verifyDpop(q, check()))?.internal).toMatch(/^htu/);
    const g = await proof(client, { ath: accessTokenHash(token), htm: 'GET' });
    expect((await verifyDpop(g, check()))?.internal).toMatch(/^htm/);
  });

  it('refuses a wrong ath, a key the token is not bound to, and stale or future proofs', async () => {
    const wrongAth = await proof(client, { ath: accessTokenHash('another.token') });
    expect((await verifyDpop(wrongAth, check()))?.internal).toMatch(/ath/);
    const noAth = await proof(client);
    expect((await verifyDpop(noAth, check()))?.internal).toMatch(/ath/);
    const otherKey = await proof(other, { ath: accessTokenHash(token) });
    expect((await verifyDpop(otherKey, check()))?.internal).toMatch(/bound/);
    const stale = await proof(client, { ath: accessTokenHash(token), iat: Math.floor(NOW / 1000) - 61 });
    expect((await verifyDpop(stale, check()))?.internal).toBe('proof too old');
    const future = await proof(client, { ath: accessTokenHash(token), iat: Math.floor(NOW / 1000) + 30 });
    expect((await verifyDpop(future, check()))?.internal).toMatch(/future/);
  });

  it('refuses malformed proofs: wrong typ, symmetric alg, private jwk, no proof, forged key', async () => {
    expect((await verifyDpop(await proof(client, { typ: 'JWT' }), check()))?.internal).toMatch(/typ/);
    expect(await verifyDpop(undefined, check())).toMatchObject({ code: 'SLUICE_DPOP_INVALID' });
    expect(await verifyDpop('garbage', check())).toMatchObject({ code: 'SLUICE_DPOP_INVALID' });
    const hs = await new SignJWT({ htm: 'POST', htu: URL_, jti: 'x' })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } as JWK })
      .setIssuedAt(Math.floor(NOW / 1000))
      .sign(new TextEncoder().encode('secret'));
    expect((await verifyDpop(hs, check()))?.internal).toMatch(/alg/);
    const priv = await exportJWK(client.priv);
    expect((await verifyDpop(await proof(client, { jwk: priv }), check()))?.internal).toMatch(/public/);
    // Signed by one key while claiming another in the header.
    const forged = await proof(other, { ath: accessTokenHash(token), jwk: client.jwk, alg: 'EdDSA' });
    expect(await verifyDpop(forged, check())).toMatchObject({ code: 'SLUICE_DPOP_INVALID' });
  });

  it('binds a token end to end: thumbprint at the token endpoint, cnf.jkt in the token, proof per request', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-dpop-'));
    dirs.push(dataDir);
    const svc = await TokenService.open({ dataDir, clock: { now: () => NOW } });
    const replay = new MemoryReplayCache();
    // 1. Token endpoint: a proof without an access token yields the client's key thumbprint.
    const atTokenEndpoint = await checkDpop(
      await proof(client, { htu: 'https://gw.example.com/sluice/v1/token' }),
      {
        htm: 'POST',
        htu: 'https://gw.example.com/sluice/v1/token',
        now: NOW,
        replay,
      },
    );
    if ('code' in atTokenEndpoint) throw new Error(atTokenEndpoint.internal);
    expect(atTokenEndpoint.jkt).toBe(client.jkt);
    // 2. The minted token carries cnf.jkt.
    const { token: at } = await svc.mint({ keyId: 'k', tenantId: 't', jkt: atTokenEndpoint.jkt });
    const c = await svc.verify(at);
    if (isTokenRefusal(c)) throw new Error(c.internal);
    // 3. Each request needs a proof by the same key over that token; another client's key fails.
    const ok = await proof(client, { ath: accessTokenHash(at) });
    expect(
      await verifyDpop(ok, { htm: 'POST', htu: URL_, accessToken: at, jkt: c.jkt, now: NOW, replay }),
    ).toBeNull();
    const thief = await proof(other, { ath: accessTokenHash(at) });
    expect(
      await verifyDpop(thief, { htm: 'POST', htu: URL_, accessToken: at, jkt: c.jkt, now: NOW, replay }),
    ).not.toBeNull();
  });
});

describe('MemoryReplayCache', () => {
  it('forgets expired entries and stays bounded', () => {
    const c = new MemoryReplayCache(3);
    expect(c.remember('a', 100, 0)).toBe(true);
    expect(c.remember('a', 100, 50)).toBe(false);
    expect(c.remember('a', 200, 100)).toBe(true); // expired at 100
    for (const k of ['b', 'c', 'd', 'e']) c.remember(k, 1000, 100);
    expect(c.size).toBe(3);
  });
});
