/** Shared by the trust tests: a webhook receiver on loopback, a fake clock, and `serve()` on one PostgreSQL database. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { withDataDir } from '../../src/config/resolve.js';
import { type RunningSluice, serve } from '../../src/main.js';

export const DAY = 86_400_000;

export function fakeClock(start = Date.UTC(2026, 0, 5, 12)) {
  return {
    t: start,
    now() {
      return this.t;
    },
    advance(ms: number) {
      this.t += ms;
    },
  };
}

export interface Hook {
  body: Record<string, unknown>;
  raw: string;
  signature: string | undefined;
}

/** Collects every POST it receives; `status` is what it answers (200 unless changed). */
export async function webhookReceiver(): Promise<{
  url: string;
  hooks: Hook[];
  status: { code: number };
  close(): Promise<void>;
}> {
  const hooks: Hook[] = [];
  const status = { code: 200 };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      hooks.push({
        body: JSON.parse(raw),
        raw,
        signature: req.headers['x-sluice-signature'] as string | undefined,
      });
      res.statusCode = status.code;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/token-in-path`,
    hooks,
    status,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A database of our own on the shared PostgreSQL (dropped by `drop`). */
export async function tempDatabase(prefix: string) {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  await admin.connect();
  await admin.query(`create database ${name}`);
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    query: async (q: string) => {
      const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${name}` });
      await c.connect();
      try {
        return (await c.query(q)).rows;
      } finally {
        await c.end();
      }
    },
    drop: async () => {
      await admin.query(`drop database if exists ${name} with (force)`).catch(() => {});
      await admin.end();
    },
  };
}

export function setProcessSecrets(): void {
  process.env.SLUICE_PEPPER = randomBytes(32).toString('hex');
  process.env.SLUICE_AUDIT_KEY = generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

export async function startInstance(
  yaml: string,
  clock: { now(): number },
  name: string,
): Promise<RunningSluice> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-trust-${name}-`));
  const config = withDataDir(parseConfig(yaml, name), dir);
  return serve({
    source: { file: null, source: yaml, config },
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    clock,
    logger: pino({ level: 'silent' }),
    instanceId: `trust-${name}-${randomBytes(3).toString('hex')}`,
  });
}

export async function adminCall(
  s: RunningSluice,
  token: string,
  method: string,
  path: string,
  body?: unknown,
) {
  const r = await fetch(`${s.urls.admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

export async function chat(s: RunningSluice, key: string): Promise<number> {
  const r = await fetch(`${s.urls.gateway}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'x' }] }),
  });
  await r.arrayBuffer();
  return r.status;
}

export async function me(s: RunningSluice, key: string): Promise<Record<string, any>> {
  const r = await fetch(`${s.urls.gateway}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } });
  return (await r.json()) as Record<string, any>;
}
