/**
 * Short-lived tokens, DPoP binding and TOTP step-up through the real HTTP path.
 */
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { waitFor } from '../helpers/wait.js';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;

beforeAll(async () => {
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default: {}
  secure: { dpop: required }
actions:
  images.generate: { stepUp: true }
`,
  );
  s = await startSluice({ config, dataDir: dir });
});
afterAll(async () => {
  await s?.stop();
});

const chat = { model: 'demo-model', messages: [{ role: 'user' as const, content: 'hi' }] };
const token = (key: string, body: unknown = {}, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/sluice/v1/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

async function dpopProof(
  keys: { privateKey: CryptoKey; jwk: JWK },
  htm: string,
  htu: string,
  accessToken?: string,
) {
  const claims: Record<string, unknown> = { htm, htu, jti: randomUUID() };
  if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: keys.jwk })
    .setIssuedAt()
    .sign(keys.privateKey);
}

describe('short-lived tokens', () => {
  it('a key exchanges for a JWT that the OpenAI SDK can use; JWKS publishes the public key', async () => {
    const { key } = await createKey(s);
    const r = await token(key);
    expect(r.status).toBe(200);
    const t = await r.json();
    expect(t.token_type).toBe('Bearer');
    expect(t.expires_in).toBeGreaterThan(890);
    expect(t.expires_in).toBeLessThanOrEqual(900);
    const client = new OpenAI({ apiKey: t.access_token, baseURL: `${s.url}/v1`, maxRetries: 0 });
    const out = await client.chat.completions.create(chat);
    expect(out.choices[0]!.message.content).toBeTruthy();
    const jwks = await (await fetch(`${s.url}/.well-known/jwks.json`)).json();
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(JSON.stringify(jwks)).not.toMatch(/"d":/);
  });

  it('narrowed scopes: a token for embeddings cannot chat', async () => {
    const { key } = await createKey(s);
    const t = await (await token(key, { scopes: ['embeddings.create'] })).json();
    const client = new OpenAI({ apiKey: t.access_token, baseURL: `${s.url}/v1`, maxRetries: 0 });
    await expect(client.chat.completions.create(chat)).rejects.toMatchObject({
      status: 403,
      code: 'SLUICE_SCOPE_DENIED',
    });
    const e = await client.embeddings.create({ model: 'demo-embed', input: 'x' });
    expect(e.data).toHaveLength(1);
  });

  it('a tampered or garbage token is 401 SLUICE_INVALID_TOKEN with WWW-Authenticate', async () => {
    const { key } = await createKey(s);
    const t = (await (await token(key)).json()).access_token as string;
    const bad = `${t.slice(0, -4)}AAAA`;
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bad}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await r.json()).error.code).toBe('SLUICE_INVALID_TOKEN');
  });

  it('revoking the key ends its tokens', async () => {
    const k = await createKey(s);
    const t = (await (await token(k.key)).json()).access_token as string;
    await cli(['keys', 'revoke', k.id, '--data-dir', s.dataDir, '--config', s.configFile!]);
    // The gateway's key cache holds the record up to a second: poll until the revocation is seen.
    const r = await waitFor(
      async () => {
        const res = await fetch(`${s.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
          body: JSON.stringify(chat),
        });
        if (res.status === 401) return res;
        await res.arrayBuffer();
        return undefined;
      },
      { what: 'the revoked key’s token to be refused' },
    );
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('SLUICE_KEY_REVOKED');
  });
});

describe('DPoP (RFC 9449)', () => {
  it('a key on a dpop-required tier needs a proof; the bound token works only with fresh proofs for the right URL', async () => {
    const { key } = await createKey(s, [], 'acme', 'secure');
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keys = { privateKey: privateKey as CryptoKey, jwk: await exportJWK(publicKey) };
    const plain = await token(key);
    expect(plain.status).toBe(401);
    expect((await plain.json()).error.code).toBe('SLUICE_DPOP_INVALID');
    // The key itself is no bearer credential on the data plane.
    const direct = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    expect(direct.status).toBe(401);
    expect((await direct.json()).error.code).toBe('SLUICE_DPOP_INVALID');

    const tokenUrl = `${s.url}/sluice/v1/token`;
    const r = await token(key, {}, { dpop: await dpopProof(keys, 'POST', tokenUrl) });
    expect(r.status).toBe(200);
    const t = await r.json();
    expect(t.token_type).toBe('DPoP');

    const chatUrl = `${s.url}/v1/chat/completions`;
    const call = (proof: string | null, scheme = 'DPoP') =>
      fetch(chatUrl, {
        method: 'POST',
        headers: {
          authorization: `${scheme} ${t.access_token}`,
          'content-type': 'application/json',
          ...(proof ? { dpop: proof } : {}),
        },
        body: JSON.stringify(chat),
      });
    const proof = await dpopProof(keys, 'POST', chatUrl, t.access_token);
    expect((await call(proof)).status).toBe(200);
    // 1. the same proof again: replay
    const replay = await call(proof);
    expect(replay.status).toBe(401);
    expect((await replay.json()).error.code).toBe('SLUICE_DPOP_INVALID');
    // 2. a proof for another URL
    expect((await call(await dpopProof(keys, 'POST', `${s.url}/v1/embeddings`, t.access_token))).status).toBe(
      401,
    );
    // 3. no proof, or as a plain bearer token
    expect((await call(null)).status).toBe(401);
    expect((await call(await dpopProof(keys, 'POST', chatUrl, t.access_token), 'Bearer')).status).toBe(401);
    // 4. a proof signed by another key
    const other = await generateKeyPair('ES256');
    const otherKeys = { privateKey: other.privateKey as CryptoKey, jwk: await exportJWK(other.publicKey) };
    expect((await call(await dpopProof(otherKeys, 'POST', chatUrl, t.access_token))).status).toBe(401);
  });
});

describe('step-up with TOTP (RFC 6238 / RFC 9470)', () => {
  it('a step-up action needs a token minted with a fresh code', async () => {
    const k = await createKey(s);
    const img = (auth: string) =>
      fetch(`${s.url}/v1/images/generations`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo-image', prompt: 'x' }),
      });
    const direct = await img(`Bearer ${k.key}`);
    expect(direct.status).toBe(401);
    expect(direct.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    expect((await direct.json()).error.code).toBe('SLUICE_STEP_UP_REQUIRED');

    // No factor enrolled yet: asking with a code is refused.
    expect((await token(k.key, { otp: '123456' })).status).toBe(401);
    const enrolled = JSON.parse(
      (await cli(['keys', 'totp', k.id, '--json', '--data-dir', s.dataDir, '--config', s.configFile!]))
        .stdout,
    );
    expect(enrolled.otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    // The key cache holds the record without the factor up to a second: poll until a wrong code is
    // judged as a code (not refused as "no second factor enrolled"). Every poll is a failed
    // authentication from this address (30 a minute are allowed, then 429): polling every 20 ms
    // spent them all within the second once the CLI came back fast, so every 200 ms.
    const wrong = await waitFor(
      async () => {
        const res = await token(k.key, {
          otp: '000000' === totpCode(enrolled.secret, Date.now()) ? '111111' : '000000',
        });
        const text = await res.clone().text();
        return text.includes('no second factor enrolled') ? undefined : res;
      },
      { intervalMs: 200, what: 'the enrolled factor to be seen by the gateway' },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('insufficient_user_authentication');
    const code = totpCode(enrolled.secret, Date.now());
    const ok = await token(k.key, { otp: code });
    expect(ok.status).toBe(200);
    const t = await ok.json();
    expect(t.step_up).toBe(true);
    expect((await img(`Bearer ${t.access_token}`)).status).toBe(200);
    // The same code cannot mint a second token.
    expect((await token(k.key, { otp: code })).status).toBe(401);
  });
});
