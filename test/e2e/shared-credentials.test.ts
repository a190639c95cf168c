/**
 * Issue 18: two `sluice serve` processes, each with its own data dir, on one PostgreSQL database and
 * one Redis: a token minted by A is accepted by B, and a DPoP proof accepted by A is refused by B
 * (both addressed by the same URL, as behind a load balancer).
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/auth/totp.js';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const dbName = `sluice_e2e_cred_${randomBytes(4).toString('hex')}`;
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

beforeAll(async () => {
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  Object.assign(process.env, env); // the CLI that creates keys must share the pepper
  configFile = writeConfig(
    tempDir(),
    `database: { url: "postgres://postgres@127.0.0.1:5432/${dbName}" }
redis: { url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default: {}
  secure: { dpop: required }
`,
  );
  a = await startSluice({ config: configFile, env });
  b = await startSluice({ config: configFile, env });
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await admin.end();
});

const chatBody = JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] });

/** POST to `target` while the request names `host` (the shared address both instances serve). */
function post(
  target: SluiceProcess,
  path: string,
  host: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  const u = new URL(target.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        headers: {
          ...headers,
          host,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function dpopProof(keys: { privateKey: CryptoKey; jwk: JWK }, htu: string, accessToken?: string) {
  const claims: Record<string, unknown> = { htm: 'POST', htu, jti: randomUUID() };
  if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: keys.jwk })
    .setIssuedAt()
    .sign(keys.privateKey);
}

describe('credentials shared by two instances with their own data dirs', () => {
  it('a JWT minted on instance A is accepted by instance B; both publish the same JWKS', async () => {
    const { key } = await createKey({ dataDir: a.dataDir, configFile });
    const host = new URL(a.url).host;
    const minted = await post(a, '/sluice/v1/token', host, { authorization: `Bearer ${key}` }, '{}');
    expect(minted.status).toBe(200);
    const t = JSON.parse(minted.body) as { access_token: string };
    const onB = await fetch(`${b.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.access_token}`, 'content-type': 'application/json' },
      body: chatBody,
    });
    expect(onB.status).toBe(200);
    const [ja, jb] = await Promise.all(
      [a, b].map(async (s) => (await fetch(`${s.url}/.well-known/jwks.json`)).json()),
    );
    expect(jb).toEqual(ja);
  });

  it('a DPoP proof accepted by instance A is refused by instance B', async () => {
    const { key } = await createKey({ dataDir: a.dataDir, configFile }, [], 'acme', 'secure');
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keys = { privateKey: privateKey as CryptoKey, jwk: await exportJWK(publicKey) };
    // Both instances are reached as one address (a load balancer in front of them): A's.
    const host = new URL(a.url).host;
    const origin = `http://${host}`;
    const minted = await post(
      a,
      '/sluice/v1/token',
      host,
      { authorization: `Bearer ${key}`, dpop: await dpopProof(keys, `${origin}/sluice/v1/token`) },
      '{}',
    );
    expect(minted.status).toBe(200);
    const t = JSON.parse(minted.body) as { access_token: string; token_type: string };
    expect(t.token_type).toBe('DPoP');
    const call = async (s: SluiceProcess, proof: string) =>
      post(
        s,
        '/v1/chat/completions',
        host,
        { authorization: `DPoP ${t.access_token}`, dpop: proof },
        chatBody,
      );
    // 1. A fresh proof on B works (the shared address and the token are fine there).
    expect(
      (await call(b, await dpopProof(keys, `${origin}/v1/chat/completions`, t.access_token))).status,
    ).toBe(200);
    // 2. A proof accepted by A ...
    const proof = await dpopProof(keys, `${origin}/v1/chat/completions`, t.access_token);
    expect((await call(a, proof)).status).toBe(200);
    // 3. ... is a replay on B.
    const replay = await call(b, proof);
    expect(replay.status).toBe(401);
    expect(JSON.parse(replay.body).error.code).toBe('SLUICE_DPOP_INVALID');
  });

  it('a TOTP code accepted by instance A is refused by instance B (one shared replay guard)', async () => {
    const k = await createKey({ dataDir: a.dataDir, configFile });
    const enrolled = JSON.parse(
      (await cli(['keys', 'totp', k.id, '--json', '--data-dir', a.dataDir, '--config', configFile], { env }))
        .stdout,
    ) as { secret: string };
    const code = totpCode(enrolled.secret, Date.now());
    const mint = (s: SluiceProcess) =>
      post(
        s,
        '/sluice/v1/token',
        new URL(s.url).host,
        { authorization: `Bearer ${k.key}` },
        JSON.stringify({ otp: code }),
      );
    const onA = await mint(a);
    expect(onA.status).toBe(200);
    expect(JSON.parse(onA.body).step_up).toBe(true);
    // 1. The same code on the other instance is a replay, not a second step-up.
    const onB = await mint(b);
    expect(onB.status).toBe(401);
    expect(onB.body).toContain('replayed');
  });
});
