/**
 * The policy lifecycle on a running `sluice serve`: the admin API's impact replay of a candidate on
 * the calls just recorded, the before/after watch of an apply that tightens a limit (per-version
 * figures and metrics), and `sluice policy watch` naming the rollback.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

let s: SluiceProcess;
let adminToken: string;
let key: string;
let keyId: string;

const policy = (rpm: number, models = '"*"') => `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    models: [${models}]
    limits:
      - { id: rpm, requests: ${rpm}, window: 1m }
`;

beforeAll(async () => {
  const dir = tempDir();
  s = await startSluice({ config: writeConfig(dir, policy(1000)), dataDir: dir });
  adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  ({ key, id: keyId } = await createKey(s));
});
afterAll(async () => {
  await s?.stop();
});

const admin = (path: string, body?: unknown) =>
  fetch(`${s.adminUrl}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: {
      authorization: `Bearer ${adminToken}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
const chat = (model = 'demo-model') =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }),
  });

describe('policy impact and watch through the admin API', () => {
  it('impact: a candidate that drops a model lists the calls and the key it would refuse', async () => {
    for (let i = 0; i < 3; i++) expect((await chat('other-model')).status).toBe(200);
    for (let i = 0; i < 22; i++) expect((await chat()).status).toBe(200);
    const r = await admin('/admin/v1/policy/impact', { source: policy(1000, '"demo-*"'), since: '1h' });
    expect(r.status).toBe(200);
    const report = await r.json();
    expect(report.replayed).toBe(25);
    expect(report.newlyRefused).toHaveLength(3);
    expect(report.byModel).toEqual({ 'other-model': 3 });
    expect(report.byCode).toEqual({ SLUICE_MODEL_DENIED: 3 });
    expect(report.keysLosingAccess).toEqual([]);
    expect(report.newlyRefused[0]).toMatchObject({ keyId, model: 'other-model', before: 'allow' });
    // bad input is a clear 400
    const bad = await admin('/admin/v1/policy/impact', { source: policy(1000), since: 'yesterday-ish' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: 'SLUICE_BAD_REQUEST', param: 'since' });
    const invalid = await admin('/admin/v1/policy/impact', { source: 'tiers: 3' });
    expect(invalid.status).toBe(400);
    expect((await invalid.json()).error.code).toBe('SLUICE_POLICY_INVALID');
  });

  it('watch: an apply that tightens the rate shows the 429 rate jump, version labels, and the rollback', async () => {
    const applied = await admin('/admin/v1/policy', { source: policy(5), message: 'tighten' });
    expect(applied.status).toBe(201);
    const { version } = await applied.json();
    let limited = 0;
    for (let i = 0; i < 25; i++) if ((await chat()).status === 429) limited++;
    // 5 a minute, less what the calls just before spent of it: at least 20 of 25 refused
    expect(limited).toBeGreaterThanOrEqual(20);
    const pct = `${((limited / 25) * 100).toFixed(1)}%`;
    const r = await admin('/admin/v1/policy/watch?minutes=10');
    expect(r.status).toBe(200);
    const w = await r.json();
    expect(w.version).toBe(version);
    expect(w.before).toMatchObject({ requests: 25, limitedRate: 0, errorRate: 0 });
    expect(w.after).toMatchObject({ requests: 25, limitedRate: limited / 25 });
    expect(w.verdict).toBe('regressed');
    expect(w.regressions).toContain(`429 rate 0.0% -> ${pct}`);
    expect(w.rollback).toBe(`sluice policy rollback ${version - 1}`);
    // the decision metrics carry the version that decided
    const m = await (
      await fetch(`${s.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).text();
    expect(m).toContain(
      `sluice_decisions_total{policy="${version}",decision="throttled",reason="SLUICE_RATE_LIMITED",action="chat.create"} ${limited}`,
    );
    expect(m).toContain(
      `sluice_decisions_total{policy="${version - 1}",decision="allowed",reason="ok",action="chat.create"} 25`,
    );
    // 400 on a bad window
    expect((await admin('/admin/v1/policy/watch?minutes=0')).status).toBe(400);
  });

  it('sluice policy watch prints the table, the alert and the rollback command, and exits 1', async () => {
    const r = await cli(['policy', 'watch', '--admin', s.adminUrl, '--minutes', '10'], {
      env: { SLUICE_ADMIN_TOKEN: adminToken },
    });
    expect(r.code).toBe(1);
    // The 429 rate the previous test produced (20 or more of 25 refused: how many depends on how
    // much of the new limit the calls before it had used, which moves with the machine's speed).
    const w = await (await admin('/admin/v1/policy/watch?minutes=10')).json();
    expect(w.after.limitedRate).toBeGreaterThanOrEqual(0.8);
    const pct = `${(w.after.limitedRate * 100).toFixed(1)}%`.replace('.', '\\.');
    expect(r.stdout).toMatch(new RegExp(`429 rate\\s+0\\.0%\\s+${pct}`));
    expect(r.stdout).toMatch(
      new RegExp(`ALERT: 429 rate 0\\.0% -> ${pct}\\nroll back with: sluice policy rollback 1\\n`),
    );
    const noToken = await cli(['policy', 'watch', '--admin', s.adminUrl], {
      env: { SLUICE_ADMIN_TOKEN: '' },
    });
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toContain('an admin token is needed');
  });
});
