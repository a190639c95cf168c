/**
 * Optional TLS on both listeners (`server.tls`, `admin.tls`), with HTTP/1.1 keep-alive intact.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;
let dir: string;

beforeAll(async () => {
  dir = tempDir();
  execFileSync(
    'openssl',
    [
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
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const config = writeConfig(
    dir,
    `server: { tls: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }
admin: { tls: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
`,
  );
  s = await startSluice({ config, dataDir: dir });
});
afterAll(async () => {
  await s?.stop();
});

describe('TLS listeners', () => {
  it('both planes announce and serve https; requests reuse one kept-alive connection', async () => {
    expect(s.url).toMatch(/^https:\/\//);
    expect(s.adminUrl).toMatch(/^https:\/\//);
    const { key } = await createKey(s);
    const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'cert.pem')) }, connections: 1 });
    let connects = 0;
    agent.on('connect', () => connects++);
    for (let i = 0; i < 3; i++) {
      const r = await request(`${s.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(r.statusCode).toBe(200);
      expect(r.headers.connection).not.toBe('close');
      await r.body.json();
    }
    expect(connects).toBe(1);
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const a = await request(`${s.adminUrl}/admin/v1/keys`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(a.statusCode).toBe(200);
    await a.body.json();
    await agent.close();
  });

  it('plain HTTP to the TLS port is not served', async () => {
    const plain = s.url.replace('https://', 'http://');
    await expect(fetch(`${plain}/healthz`).then((r) => r.status)).rejects.toThrow();
  });
});
