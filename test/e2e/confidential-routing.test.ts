/**
 * Confidential routing over HTTP, through a real `sluice serve` (issue 20 part 3): upstream labels and
 * `routing.pins`, and per-upstream TLS. Certificates are made with `openssl` at test time: a CA, the
 * TEE stub's server certificate, a second server certificate from the same CA (a valid chain with
 * another fingerprint), and a client certificate whose key is passphrase-protected.
 *
 *   public        plain HTTP stub, no labels (counts every request it gets: pinned ones must never arrive)
 *   tee           HTTPS stub requiring a client certificate; labels confidential=true, region=eu
 *   tee-nocert    the same stub without a client certificate
 *   tee-wrongpin  the same stub pinned to the other certificate's fingerprint
 *   tee-down      labelled, on a closed port; ant-tee-down the same for /v1/messages
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const PASS = 'tee-client-passphrase-6f1c2a';
let dir: string;
let s: SluiceProcess;
let publicServer: Server;
let teeServer: Server;
const publicSeen: string[] = [];
const teeSeen: { model: string; clientCn: string }[] = [];
let hospitalKey: string;
let acmeKey: string;
let adminToken: string;

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A key and a certificate for `cn` signed by the test CA, with `ext` (a v3 extension line). */
function issue(name: string, cn: string, ext: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  ]);
}

function fingerprintOf(name: string): string {
  // "sha256 Fingerprint=AB:CD:..." (OpenSSL 3) or "SHA256 Fingerprint=..." (1.1).
  return openssl(['x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha256'])
    .trim()
    .split('=')[1]!;
}

const listen = (srv: Server) =>
  new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));

function chatAnswer(model: string, text: string): string {
  return JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });
}

beforeAll(async () => {
  execFileSync('openssl', ['version'], { stdio: 'ignore' }); // fails clearly when openssl is missing
  dir = tempDir('sluice-conf-');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=sluice-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  issue('server', 'tee.local', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  issue('other', 'impostor.local', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  issue('client', 'sluice-gateway', 'extendedKeyUsage=clientAuth');
  // The client key, encrypted: Sluice gets its passphrase from the environment.
  openssl(['pkey', '-in', 'client.key', '-aes256', '-passout', `pass:${PASS}`, '-out', 'client-enc.key']);

  publicServer = createHttpServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      const model = String(JSON.parse(b || '{}').model ?? '');
      publicSeen.push(model);
      res.writeHead(200, { 'content-type': 'application/json' }).end(chatAnswer(model, 'from public'));
    });
  });
  teeServer = createHttpsServer(
    {
      key: readFileSync(join(dir, 'server.key')),
      cert: readFileSync(join(dir, 'server.pem')),
      ca: readFileSync(join(dir, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        const model = String(JSON.parse(b || '{}').model ?? '');
        const clientCn = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
        teeSeen.push({ model, clientCn });
        res.writeHead(200, { 'content-type': 'application/json' }).end(chatAnswer(model, 'from tee'));
      });
    },
  );
  const pub = await listen(publicServer);
  const tee = await listen(teeServer);
  // A port nothing listens on: the labelled upstream that is down.
  const closed = createHttpServer();
  const down = await listen(closed);
  await new Promise<void>((r) => closed.close(() => r()));

  const fp = fingerprintOf('server');
  const otherFp = fingerprintOf('other');
  const clientTls = `cert: client.pem, key: "\${TEE_CLIENT_KEY}", passphrase: "\${TEE_KEY_PASS}"`;
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: public, kind: openai, baseUrl: "http://127.0.0.1:${pub}/v1" }
  - { name: ant-public, kind: anthropic, baseUrl: "http://127.0.0.1:${pub}" }
  - name: tee
    kind: openai
    baseUrl: "https://127.0.0.1:${tee}/v1"
    labels: { confidential: true, region: eu }
    tls: { ca: ca.pem, ${clientTls}, fingerprints: ["${fp}"] }
  - name: tee-nocert
    kind: openai
    baseUrl: "https://127.0.0.1:${tee}/v1"
    labels: { confidential: true }
    tls: { ca: ca.pem, fingerprints: ["${fp}"] }
  - name: tee-wrongpin
    kind: openai
    baseUrl: "https://127.0.0.1:${tee}/v1"
    labels: { confidential: true }
    tls: { ca: ca.pem, ${clientTls}, fingerprints: ["${otherFp}"] }
  - { name: tee-down, kind: openai, baseUrl: "https://127.0.0.1:${down}/v1", labels: { confidential: true }, tls: { ca: ca.pem } }
  - { name: ant-tee-down, kind: anthropic, baseUrl: "https://127.0.0.1:${down}", labels: { confidential: true } }
models:
  - { match: "conf-*", upstream: public, fallbacks: [tee] }
  - { match: "nocert-*", upstream: public, fallbacks: [tee-nocert] }
  - { match: "wrongpin-*", upstream: public, fallbacks: [tee-wrongpin] }
  - { match: "down-*", upstream: public, fallbacks: [tee-down] }
  - { match: "claude-down*", upstream: ant-public, fallbacks: [ant-tee-down] }
  - { match: "*", upstream: public }
tasks:
  summarize: { model: conf-notes, system: "Summarize the text." }
routing:
  pins:
    - { task: summarize, labels: { confidential: true } }
    - { tenant: hospital, labels: { confidential: true } }
tiers: { default: {} }
`,
  );
  // In this worker's environment: `sluice serve` and the `keys create` CLI both read the policy.
  process.env.TEE_CLIENT_KEY = join(dir, 'client-enc.key');
  process.env.TEE_KEY_PASS = PASS;
  s = await startSluice({ config, dataDir: dir });
  hospitalKey = (await createKey(s, [], 'hospital')).key;
  acmeKey = (await createKey(s, [], 'acme')).key;
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
}, 60_000);

afterAll(async () => {
  delete process.env.TEE_CLIENT_KEY;
  delete process.env.TEE_KEY_PASS;
  await s?.stop();
  publicServer?.close();
  teeServer?.close();
});

async function chat(key: string, model: string) {
  const r = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'patient record 4711' }] }),
  });
  return { status: r.status, requestId: r.headers.get('x-request-id'), body: (await r.json()) as any };
}

async function auditOf(requestId: string | null): Promise<any> {
  const r = await fetch(`${s.adminUrl}/admin/v1/audit/export`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  const events = (await r.text())
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return events.find((e) => e.requestId === requestId);
}

describe('confidential routing', () => {
  it('a pinned tenant goes to the labelled upstream over mTLS; an unpinned one keeps the route', async () => {
    const before = publicSeen.length;
    const open = await chat(acmeKey, 'conf-a');
    expect(open.status).toBe(200);
    expect(open.body.choices[0].message.content).toBe('from public');
    expect(publicSeen.length).toBe(before + 1);

    const pinned = await chat(hospitalKey, 'conf-a');
    expect(pinned.status).toBe(200);
    expect(pinned.body.choices[0].message.content).toBe('from tee');
    // The stub saw Sluice's client certificate; the public upstream saw nothing more.
    expect(teeSeen.at(-1)).toEqual({ model: 'conf-a', clientCn: 'sluice-gateway' });
    expect(publicSeen.length).toBe(before + 1);
    expect((await auditOf(pinned.requestId))?.details.routing).toEqual({
      upstream: 'tee',
      pinned: { confidential: 'true' },
    });
  });

  it('a task pinned by name goes to the labelled upstream, whoever calls it', async () => {
    const before = publicSeen.length;
    const r = await fetch(`${s.url}/v1/tasks/summarize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${acmeKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'confidential minutes' }),
    });
    expect(r.status).toBe(200);
    expect(teeSeen.at(-1)).toEqual({ model: 'conf-notes', clientCn: 'sluice-gateway' });
    expect(publicSeen.length).toBe(before);
  });

  it('mTLS: without a client certificate the upstream refuses the connection; nothing goes elsewhere', async () => {
    const pub = publicSeen.length;
    const tee = teeSeen.length;
    const r = await chat(hospitalKey, 'nocert-a');
    expect(r.status).toBe(502);
    // TLS 1.3: the server refuses the missing certificate after the handshake, so the call fails as a
    // reset (the stub's HTTP handler never runs). It is not retried anywhere else.
    expect(r.body.error.code).toBe('SLUICE_UPSTREAM_ERROR');
    expect((await auditOf(r.requestId)).details).toMatchObject({
      internal: expect.stringContaining('tee-nocert'),
      routing: { upstream: 'tee-nocert', pinned: { confidential: 'true' } },
    });
    expect(teeSeen.length).toBe(tee);
    expect(publicSeen.length).toBe(pub);
  });

  it('an upstream whose certificate does not match its pin is refused before anything is sent', async () => {
    const pub = publicSeen.length;
    const tee = teeSeen.length;
    const r = await chat(hospitalKey, 'wrongpin-a');
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('SLUICE_UPSTREAM_UNTRUSTED');
    // The CA chain was valid: only the pin refused it. The stub never got a request.
    expect(teeSeen.length).toBe(tee);
    expect(publicSeen.length).toBe(pub);
    const ev = await auditOf(r.requestId);
    expect(ev).toMatchObject({ decision: 'error', reason: 'SLUICE_UPSTREAM_UNTRUSTED' });
    expect(ev.details.routing.upstream).toBe('tee-wrongpin');
    expect(ev.details.internal).toContain(fingerprintOf('server'));
    expect(ev.details.internal).toMatch(/does not match a pinned fingerprint/);
    // The unpinned caller on the same route is not affected: its route's first upstream is public.
    expect((await chat(acmeKey, 'wrongpin-a')).body.choices[0].message.content).toBe('from public');
  });

  it('a confidential request whose only labelled upstream is down is refused while the public one is up', async () => {
    const pub = publicSeen.length;
    // 1. Down (connection refused): each call fails before sending; five open its circuit.
    for (let i = 0; i < 5; i++) {
      const r = await chat(hospitalKey, 'down-a');
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('SLUICE_NO_TRUSTED_UPSTREAM');
    }
    // 2. Circuit open: refused at routing, without a connection attempt; the audit says why.
    const r = await chat(hospitalKey, 'down-a');
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('SLUICE_NO_TRUSTED_UPSTREAM');
    const ev = await auditOf(r.requestId);
    expect(ev.details.internal).toBe('pinned to confidential=true; public: labels; tee-down: circuit-open');
    // 3. The public upstream was up the whole time and never used for the pinned tenant.
    expect(publicSeen.length).toBe(pub);
    expect((await chat(acmeKey, 'down-a')).body.choices[0].message.content).toBe('from public');
    expect(publicSeen.length).toBe(pub + 1);
  });

  it('side endpoints follow the pins too: /v1/moderations goes over mTLS, or is refused', async () => {
    const moderate = (model: string) =>
      fetch(`${s.url}/v1/moderations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${hospitalKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, input: 'patient record 4711' }),
      });
    const pub = publicSeen.length;
    const ok = await moderate('conf-mod');
    expect(ok.status).toBe(200);
    await ok.json();
    expect(teeSeen.at(-1)).toEqual({ model: 'conf-mod', clientCn: 'sluice-gateway' });
    // tee-down's circuit is open (the test above): refused, not answered by the public upstream.
    const down = await moderate('down-mod');
    expect(down.status).toBe(503);
    expect(((await down.json()) as any).error.code).toBe('SLUICE_NO_TRUSTED_UPSTREAM');
    expect(publicSeen.length).toBe(pub);
  });

  it('the refusal comes in the caller wire format (Anthropic on /v1/messages)', async () => {
    const r = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': hospitalKey,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
      },
      body: JSON.stringify({
        model: 'claude-down-1',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'x' }],
      }),
    });
    expect(r.status).toBe(503);
    const body = (await r.json()) as any;
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('overloaded_error');
    expect(body.error.message).toMatch(/\(SLUICE_NO_TRUSTED_UPSTREAM\)$/);
  });

  it('the client key path and passphrase are in no log line and not in the admin API', async () => {
    const policy = await (
      await fetch(`${s.adminUrl}/admin/v1/policy`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).text();
    expect(policy).toContain('${TEE_KEY_PASS}');
    for (const text of [s.output(), policy]) {
      expect(text).not.toContain(PASS);
      expect(text).not.toContain('client-enc.key');
    }
  });

  it('a policy whose client key does not load is refused at apply, naming neither the path nor the passphrase', async () => {
    const source = readFileSync(s.configFile!, 'utf8').replace('${TEE_KEY_PASS}', 'wrong-passphrase-9');
    const r = await fetch(`${s.adminUrl}/admin/v1/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source }),
    });
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(text).toContain('SLUICE_POLICY_INVALID');
    expect(text).toMatch(/upstream \\?"tee\\?": tls: the CA, certificate or key does not load/);
    expect(text).not.toContain('wrong-passphrase-9');
    expect(text).not.toContain('client-enc.key');
  });
});
