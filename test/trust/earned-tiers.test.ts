/**
 * Issue 20, earned ceilings over HTTP on a virtual clock: a tenant is promoted once it meets the
 * next tier's rule (and its limits change on the data plane), `/sluice/v1/me` says what the next
 * tier takes, the ladder stops at maxTier, and a confirmed abuse case demotes it at once. Every move
 * is an audit event and a signed webhook. `serve()` in-process on a PostgreSQL database of our own.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AbuseCase } from '../../src/abuse/engine.js';
import type { RunningSluice } from '../../src/main.js';
import { verifyAlertSignature } from '../../src/observability/alerts.js';
import { SqlCaseStore } from '../../src/stores/sql/case-store.js';
import {
  adminCall,
  chat,
  DAY,
  fakeClock,
  me,
  setProcessSecrets,
  startInstance,
  tempDatabase,
  webhookReceiver,
} from './support.js';

const clock = fakeClock();
const SECRET = 'trust-webhook-secret-0123456789';
let db: Awaited<ReturnType<typeof tempDatabase>>;
let hook: Awaited<ReturnType<typeof webhookReceiver>>;
let s: RunningSluice;
let key: string;
let adminToken: string;
const tenant = 'partner-a';

beforeAll(async () => {
  db = await tempDatabase('sluice_trust_tiers');
  hook = await webhookReceiver();
  setProcessSecrets();
  const yaml = `database: { url: "${db.url}" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  bronze: { limits: [{ id: rpm, requests: 2, window: 1m }] }
  silver: { limits: [{ id: rpm, requests: 50, window: 1m }] }
  gold: { limits: [{ id: rpm, requests: 500, window: 1m }] }
promotion:
  every: 1h
  ladder: [bronze, silver, gold]
  maxTier: silver
  minDwell: 1d
  rules:
    silver: { minAge: 7d, period: 30d, minRequests: 6, maxRefusedShare: 0.25 }
    gold: { minRequests: 1 }
  webhooks: [{ webhook: "${hook.url}", secret: "${SECRET}" }]
`;
  s = await startInstance(yaml, clock, 'tiers');
  adminToken = readFileSync(s.adminTokenFile!, 'utf8').trim();
  const r = await adminCall(s, adminToken, 'POST', '/admin/v1/keys', { tenant, tier: 'bronze' });
  expect(r.status).toBe(201);
  key = r.body.key;
}, 60_000);

afterAll(async () => {
  await s?.close(5000);
  await hook?.close();
  await db?.drop();
});

/** Two requests a minute for `minutes` minutes, plus (with `over`) a third in the first minute. */
async function traffic(minutes: number, over = false): Promise<number[]> {
  const out: number[] = [];
  for (let m = 0; m < minutes; m++) {
    out.push(await chat(s, key), await chat(s, key));
    if (m === 0 && over) out.push(await chat(s, key));
    clock.advance(60_000);
  }
  return out;
}

async function tierAudit(): Promise<{ action: string; details: string }[]> {
  await s.stores.audit.flush();
  return (await db.query(
    "select action, details from audit_events where action like 'tier.%' order by at, seq",
  )) as { action: string; details: string }[];
}

function fakeCase(now: number): AbuseCase {
  return {
    id: 'case-confirmed-1',
    kind: 'quarantine',
    status: 'confirmed',
    detector: 'extraction',
    category: 'extraction',
    score: 0.9,
    reason: 'systematic extraction',
    capability: 'images.generate',
    subject: { tenantId: tenant },
    evidence: { signals: {}, sampleRequests: [], related: { keys: [], ips: [], tenants: [] } },
    createdAt: now - 60_000,
    updatedAt: now,
    expiresAt: null,
    shadow: false,
    notes: [{ at: now, by: 'reviewer', text: 'confirmed' }],
  } as unknown as AbuseCase;
}

describe('earned tiers', () => {
  it('promoted after meeting the rule, capped at maxTier, demoted after a confirmed case', async () => {
    // 1. Bronze: the third request in a minute is refused. 6 answered, 1 refused (14%).
    expect(await traffic(1, true)).toEqual([200, 200, 429]);
    expect(await traffic(2)).toEqual([200, 200, 200, 200]);
    await s.trust.tick();
    let mine = await me(s, key);
    expect(mine.key.tier).toBe('bronze');
    expect(mine.trust).toMatchObject({ tier: 'bronze', pinned: false, maxTier: 'silver' });
    expect(mine.trust.next.tier).toBe('silver');
    const req = Object.fromEntries(mine.trust.next.requirements.map((r: any) => [r.id, r]));
    expect(req.minRequests).toMatchObject({ met: true, value: 6, target: 6 });
    expect(req.maxRefusedShare.met).toBe(true);
    expect(req.maxRefusedShare.value).toBeCloseTo(1 / 7, 5);
    expect(req.minAge).toMatchObject({ met: false, target: 7 * DAY }); // the account is minutes old
    expect(hook.hooks).toHaveLength(0);

    // 2. A week later the rule is met: promoted, announced (signed webhook, audit event).
    clock.advance(7 * DAY);
    await s.trust.tick();
    expect(hook.hooks).toHaveLength(1);
    const h = hook.hooks[0]!;
    expect(h.body).toMatchObject({ type: 'tier.promote', tenant, from: 'bronze', to: 'silver' });
    expect(verifyAlertSignature(SECRET, h.raw, h.signature)).toBe(true);
    mine = await me(s, key);
    expect(mine.key.tier).toBe('silver');
    expect(mine.trust.next).toBeNull(); // silver is the highest tier allowed
    // The data plane serves the key with silver's limits now.
    const burst: number[] = [];
    for (let i = 0; i < 5; i++) burst.push(await chat(s, key));
    expect(burst).toEqual([200, 200, 200, 200, 200]);
    clock.advance(60_000);

    // 3. Busy enough for gold, but maxTier is silver: no move.
    clock.advance(2 * DAY);
    await s.trust.tick();
    expect((await me(s, key)).key.tier).toBe('silver');
    expect(hook.hooks).toHaveLength(1);

    // 4. An abuse case is confirmed (written by a reviewer through another instance or the CLI):
    //    demoted at the next pass, within the dwell time.
    await new SqlCaseStore(s.stores.sql).save(fakeCase(clock.now()));
    clock.advance(3_600_000);
    await s.trust.tick();
    expect(hook.hooks).toHaveLength(2);
    expect(hook.hooks[1]!.body).toMatchObject({
      type: 'tier.demote',
      from: 'silver',
      to: 'bronze',
      reason: 'abuse case confirmed',
    });
    mine = await me(s, key);
    expect(mine.key.tier).toBe('bronze');
    expect(await traffic(1, true)).toEqual([200, 200, 429]);

    // 5. Every move is in the audit trail, with the delivery's origin only (never the path).
    const audit = await tierAudit();
    expect(audit.map((a) => a.action)).toEqual(['tier.promote', 'tier.demote']);
    expect(audit[0]!.details).toContain('"webhook":"http://127.0.0.1:');
    expect(audit.map((a) => a.details).join()).not.toContain('token-in-path');
  }, 60_000);

  it('an operator override pins the tier until it is removed', async () => {
    const path = `/admin/v1/tenants/${tenant}/tier`;
    expect((await adminCall(s, adminToken, 'PUT', path, { tier: 'platinum' })).status).toBe(400);
    const set = await adminCall(s, adminToken, 'PUT', path, { tier: 'silver' });
    expect(set.body).toMatchObject({ tenant, tier: 'silver', pinned: true, reason: 'set by admin' });
    let mine = await me(s, key);
    expect(mine.trust).toMatchObject({ tier: 'silver', pinned: true, next: null });
    // The confirmed case would demote an earned tier; a pinned one stays.
    clock.advance(3 * DAY);
    await s.trust.tick();
    expect((await me(s, key)).trust.tier).toBe('silver');
    expect((await adminCall(s, adminToken, 'DELETE', path)).body).toMatchObject({
      tier: 'silver',
      pinned: false,
    });
    await s.trust.tick();
    mine = await me(s, key);
    expect(mine.trust.pinned).toBe(false);
    // Unpinned: earned again from silver; the case is still live, so silver is not kept past the margin.
    expect(mine.trust.tier).toBe('bronze');
  }, 60_000);
});
