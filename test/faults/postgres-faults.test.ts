/**
 * The control database (PostgreSQL) becomes unreachable under a running process: its database is
 * dropped (WITH FORCE, which also cuts the open connections). The data plane answers 503
 * SLUICE_STORE_UNAVAILABLE for what it cannot verify (never a 500, never a crash), keeps serving
 * keys it verified moments ago, and the management plane answers 503 SLUICE_STORE_UNAVAILABLE.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import { isWireError, waitFor } from './support.js';

const ADMIN_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dbName = `sluice_faults_${randomBytes(6).toString('hex')}`;
let s: SluiceProcess | undefined;

async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await pgAdmin(`CREATE DATABASE ${dbName}`);
});
afterAll(async () => {
  await s?.stop();
  await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
});

describe('PostgreSQL unreachable', () => {
  let token: string;
  const admin = (path: string, method = 'GET', body?: unknown) =>
    fetch(`${s!.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  it('data plane: 503 for what it cannot verify, keys verified a moment ago still served', async () => {
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    const dir = tempDir('sluice-pg-');
    const config = writeConfig(
      dir,
      `database: { url: "${url.href}" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: {} }
shutdown: { deadline: 2s }
`,
    );
    s = await startSluice({ config, dataDir: dir });
    token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const created = await (await admin('/admin/v1/keys', 'POST', { tenant: 'acme' })).json();
    const other = await (await admin('/admin/v1/keys', 'POST', { tenant: 'acme' })).json();
    const chat = (key: string, path = '/v1/chat/completions') =>
      fetch(`${s!.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'demo-model',
          max_tokens: 5,
          messages: [{ role: 'user', content: 'x' }],
        }),
      });
    expect((await chat(created.key)).status).toBe(200);

    // 1. The database goes away (open connections are terminated too).
    await pgAdmin(`DROP DATABASE ${dbName} WITH (FORCE)`);

    // 2. A key verified a moment ago is still served from the cache.
    expect((await chat(created.key)).status).toBe(200);

    // 3. A key never seen cannot be verified: 503 with Retry-After, in the caller's format.
    for (const [path, format] of [
      ['/v1/chat/completions', 'openai'],
      ['/v1/messages', 'anthropic'],
    ] as const) {
      const r = await chat(other.key, path);
      const body = await r.json();
      expect(r.status, JSON.stringify(body)).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(isWireError(format, body)).toBe(true);
      expect(JSON.stringify(body)).toContain('SLUICE_STORE_UNAVAILABLE');
    }
    // 4. Wrong keys still get their 401 (and an audit event the store cannot take yet): the writer
    //    tries to store it, fails, and the process lives on.
    const failedWrites = () => s!.output().split('audit write failed').length - 1;
    const failedBefore = failedWrites();
    expect((await chat('nonsense')).status).toBe(401);
    expect(await waitFor(() => failedWrites() > failedBefore, 10_000)).toBe(true);
    expect(s.proc.exitCode).toBeNull();
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  });

  // Regression (src/admin/app.ts setErrorHandler): the store-error test was a message regex that
  // missed PostgreSQL's codes (3D000 database gone, 57P01 terminated): the management plane answered
  // 500 SLUICE_INTERNAL. It now uses `isStoreUnavailable` from src/gateway/hardening.ts.
  it('regression: management plane: 503 SLUICE_STORE_UNAVAILABLE', async () => {
    const a = await admin('/admin/v1/keys');
    const ab = await a.json();
    expect(a.status, JSON.stringify(ab)).toBe(503);
    expect(ab.error.code).toBe('SLUICE_STORE_UNAVAILABLE');
  });

  it('SIGTERM with records the store cannot take: exits (1, loudly) once the flush budget is spent', async () => {
    const t0 = Date.now();
    const code = await s!.stop();
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(s!.output()).toContain('did not take the last records in time');
    s = undefined;
  });
});
