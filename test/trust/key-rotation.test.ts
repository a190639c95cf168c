/**
 * Issue 20, scheduled rotation on two instances sharing PostgreSQL and Redis, one virtual clock:
 * the owner is warned at `warnAt` (signed webhook), the key is rotated once at `maxAge` (both
 * instances run the pass at once: one rotation, one delivery), both secrets work on both instances
 * through the grace period, the old one is refused on both after it, and the new secret is in no
 * audit event. `review` lists the key while it nears its age.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { review } from '../../src/admin/review.js';
import type { RunningSluice } from '../../src/main.js';
import { verifyAlertSignature } from '../../src/observability/alerts.js';
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
const SECRET = 'delivery-secret-0123456789abcdef';
let db: Awaited<ReturnType<typeof tempDatabase>>;
let hook: Awaited<ReturnType<typeof webhookReceiver>>;
let a: RunningSluice;
let b: RunningSluice;
let oldKey: string;
let keyId: string;

beforeAll(async () => {
  db = await tempDatabase('sluice_trust_rot');
  hook = await webhookReceiver();
  setProcessSecrets();
  const yaml = `database: { url: "${db.url}" }
redis: { url: "redis://127.0.0.1:6379" }
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    keys: { maxAge: 90d }
tenants:
  partner-b:
    keys:
      maxAge: 30d
      warnAt: 20d
      autoRotate: true
      grace: 2d
      deliver: { webhook: "${hook.url}", secret: "${SECRET}" }
`;
  a = await startInstance(yaml, clock, 'a');
  b = await startInstance(yaml, clock, 'b');
  const token = readFileSync(a.adminTokenFile!, 'utf8').trim();
  const r = await adminCall(a, token, 'POST', '/admin/v1/keys', { tenant: 'partner-b' });
  oldKey = r.body.key;
  keyId = r.body.id ?? r.body.record?.id ?? oldKey.split('-')[2];
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.close(5000), b?.close(5000)]);
  await hook?.close();
  await db?.drop();
});

describe('scheduled key rotation', () => {
  it('warned at warnAt, rotated once at maxAge, both secrets work in grace on both instances, old refused after', async () => {
    // 1. Young key: nothing to do.
    await a.trust.tick();
    expect(hook.hooks).toHaveLength(0);
    expect((await me(a, oldKey)).trust.keysToRotate).toEqual([]);

    // 2. At 21 days: one warning (both instances run the pass), signed, listed by review and /me.
    clock.advance(21 * DAY);
    await Promise.all([a.trust.tick(), b.trust.tick()]);
    expect(hook.hooks.map((h) => h.body.type)).toEqual(['key.rotation.warning']);
    expect(verifyAlertSignature(SECRET, hook.hooks[0]!.raw, hook.hooks[0]!.signature)).toBe(true);
    expect(hook.hooks[0]!.body).toMatchObject({ key: keyId, tenant: 'partner-b', autoRotate: true });
    expect((await me(a, oldKey)).trust.keysToRotate).toMatchObject([
      { id: keyId, state: 'warn', autoRotate: true },
    ]);
    const findings = await review(a.stores.control, a.stores.sql, a.runtime().cfg, 30, clock.now());
    expect(findings.find((f) => f.key === keyId && f.kind === 'rotation-warn')?.message).toContain(
      'rotated automatically',
    );

    // 3. At 31 days: both instances run the pass at once; exactly one rotation is delivered.
    clock.advance(10 * DAY);
    await Promise.all([a.trust.tick(), b.trust.tick()]);
    const rotated = hook.hooks.filter((h) => h.body.type === 'key.rotated');
    expect(rotated).toHaveLength(1);
    const delivery = rotated[0]!;
    expect(verifyAlertSignature(SECRET, delivery.raw, delivery.signature)).toBe(true);
    const newKey = delivery.body.apiKey as string;
    expect(newKey).toMatch(new RegExp(`^sk-sluice-${keyId}-`));
    expect(newKey).not.toBe(oldKey);
    expect(Date.parse(delivery.body.previousValidUntil as string)).toBe(clock.now() + 2 * DAY);

    // 4. Grace: both secrets work on both instances.
    clock.advance(DAY);
    for (const s of [a, b]) {
      expect(await chat(s, oldKey)).toBe(200);
      expect(await chat(s, newKey)).toBe(200);
    }

    // 5. After the grace period: the old secret is refused on both, the new one works.
    clock.advance(DAY + 1000);
    for (const s of [a, b]) {
      expect(await chat(s, oldKey)).toBe(401);
      expect(await chat(s, newKey)).toBe(200);
    }
    // The new secret is fresh: nothing to rotate; no further delivery.
    await Promise.all([a.trust.tick(), b.trust.tick()]);
    expect((await me(b, newKey)).trust.keysToRotate).toEqual([]);
    expect(hook.hooks.filter((h) => h.body.type === 'key.rotated')).toHaveLength(1);

    // 6. The audit trail has the rotation, never the secret (nor the webhook's path).
    await Promise.all([a.stores.audit.flush(), b.stores.audit.flush()]);
    const rows = (await db.query(
      "select action, reason, details from audit_events where action like 'key.%'",
    )) as {
      action: string;
      reason: string;
      details: string;
    }[];
    expect(rows.filter((r) => r.action === 'key.rotate.auto').map((r) => r.reason)).toEqual(['ok']);
    const all = JSON.stringify(await db.query('select * from audit_events'));
    expect(all).not.toContain(newKey.slice(-32));
    expect(all).not.toContain('token-in-path');
  }, 60_000);

  it('a delivery that fails leaves the key as it was, and is retried at the next pass', async () => {
    const token = readFileSync(a.adminTokenFile!, 'utf8').trim();
    const r = await adminCall(a, token, 'POST', '/admin/v1/keys', { tenant: 'partner-b' });
    const key = r.body.key as string;
    const id = key.split('-')[2]!;
    clock.advance(31 * DAY);
    hook.status.code = 500;
    const mine = () => hook.hooks.filter((h) => h.body.key === id);
    await a.trust.tick();
    // The warning and the rotation were tried (3 attempts each) and failed: the key is unchanged.
    expect(mine().map((h) => h.body.type)).toEqual([
      ...Array(3).fill('key.rotation.warning'),
      ...Array(3).fill('key.rotated'),
    ]);
    expect(await db.query(`select prev_hash from api_keys where id = '${id}'`)).toEqual([
      { prev_hash: null },
    ]);
    expect(await chat(a, key)).toBe(200);
    hook.status.code = 200;
    await a.trust.tick();
    // Retried: the warning again (its delivery had failed), then the rotation.
    expect(
      mine()
        .slice(6)
        .map((h) => h.body.type),
    ).toEqual(['key.rotation.warning', 'key.rotated']);
    const delivered = mine().filter((h) => h.body.type === 'key.rotated');
    expect(await chat(b, delivered.at(-1)!.body.apiKey as string)).toBe(200);
  }, 60_000);
});
