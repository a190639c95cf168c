/**
 * Nothing from the upstream leaks, through the real gateway: an upstream's error answers reach the
 * caller mapped into Sluice's catalogue, in the caller's wire format, and neither the answer nor the
 * process output (logs) carries the upstream's credential or its body.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const UPSTREAM_SECRET = 'sk-upstream-e2e-mapping-0123456789abcdef';
let s: SluiceProcess;
let upstream: Server;
let key: string;

beforeAll(async () => {
  // An upstream that fails the way real ones do, echoing what it was sent.
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const model = String(JSON.parse(Buffer.concat(chunks).toString() || '{}').model ?? '');
      const sent = req.headers.authorization ?? req.headers['x-api-key'] ?? '';
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      if (model.includes('auth'))
        return json(401, {
          error: { message: `Incorrect API key provided: ${sent}`, type: 'invalid_request_error' },
        });
      if (model.includes('boom'))
        return json(500, { error: { message: 'Traceback: db-7.internal exploded' } });
      if (model.includes('busy'))
        return json(
          429,
          { error: { message: 'Rate limit for org-xyz', type: 'requests' } },
          { 'retry-after': '9' },
        );
      return json(400, {
        error: { message: `Invalid 'temperature' (echo: ${sent})`, type: 'invalid_request_error' },
      });
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const dir = tempDir();
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: oai, kind: openai, baseUrl: "${origin}/v1", apiKey: "${UPSTREAM_SECRET}" }
  - { name: ant, kind: anthropic, baseUrl: "${origin}", apiKey: "${UPSTREAM_SECRET}" }
models:
  - { match: "claude-*", upstream: ant }
  - { match: "*", upstream: oai }
tiers:
  default: { scopes: ["*"], models: ["*"] }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  ({ key } = await createKey(s));
});
afterAll(async () => {
  await s?.stop();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const post = async (path: string, body: unknown) => {
  const r = await fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: Object.fromEntries(r.headers), text };
};
const chat = (model: string, stream = false) => ({
  model,
  stream,
  messages: [{ role: 'user', content: 'hi' }],
});

describe('upstream error answers through the gateway', () => {
  it("an upstream 401 echoing Sluice's upstream key: 502, no key, no upstream body, not in the logs either", async () => {
    for (const stream of [false, true]) {
      const r = await post('/v1/chat/completions', chat('auth-model', stream));
      expect(r.status).toBe(502);
      expect(JSON.parse(r.text).error.code).toBe('SLUICE_UPSTREAM_ERROR');
      const seen = JSON.stringify(r);
      expect(seen).not.toContain(UPSTREAM_SECRET);
      expect(seen).not.toContain('Incorrect API key');
    }
    const a = await post('/v1/messages', {
      model: 'claude-auth',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(a.status).toBe(502);
    expect(JSON.parse(a.text)).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect(JSON.stringify(a)).not.toContain(UPSTREAM_SECRET);
    expect(s.output()).not.toContain(UPSTREAM_SECRET);
    expect(s.output()).not.toContain('Incorrect API key');
  });

  it("the audit event names the catalogue code the caller saw, not the upstream's status", async () => {
    const id = `upstream-500-${Date.now()}`;
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify(chat('boom-model')),
    });
    expect(r.status).toBe(502);
    const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
    const event = async () => {
      const exp = await (
        await fetch(`${s.adminUrl}/admin/v1/audit/export`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      return exp
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((e) => e.requestId === id);
    };
    await expect.poll(event, { timeout: 10_000 }).toMatchObject({
      decision: 'error',
      reason: 'SLUICE_UPSTREAM_ERROR',
    });
  });

  it('an upstream 500 is a 502 in the catalogue, its body not passed through', async () => {
    const r = await post('/v1/chat/completions', chat('boom-model'));
    expect(r.status).toBe(502);
    expect(r.text).not.toContain('Traceback');
    const client = new OpenAI({ apiKey: key, baseURL: `${s.url}/v1`, maxRetries: 0 });
    await expect(client.chat.completions.create(chat('boom-model') as never)).rejects.toMatchObject({
      status: 502,
      code: 'SLUICE_UPSTREAM_ERROR',
    });
  });

  it("an upstream 429 is a 429 with the upstream's retry time; the SDK sees a RateLimitError", async () => {
    const r = await post('/v1/chat/completions', chat('busy-model'));
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('9');
    expect(JSON.parse(r.text).error.code).toBe('SLUICE_UPSTREAM_RATE_LIMITED');
    expect(r.text).not.toContain('org-xyz');
    const client = new Anthropic({ apiKey: key, baseURL: s.url, maxRetries: 0 });
    await expect(
      client.messages.create({
        model: 'claude-busy',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.RateLimitError);
  });

  it("the caller's invalid request: 400, the upstream's message dropped when it echoes a credential", async () => {
    const r = await post('/v1/chat/completions', chat('other-model'));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error).toMatchObject({
      code: 'SLUICE_UPSTREAM_REJECTED',
      message: 'The upstream model service rejected the request',
    });
    expect(r.headers['x-should-retry']).toBe('false');
    expect(r.text).not.toContain(UPSTREAM_SECRET);
  });
});
