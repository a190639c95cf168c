/**
 * `policy impact`: a recorded day replayed against a candidate that drops a model from the free
 * tier and lowers the pro rate; the known set of changed decisions comes out, grouped, with the
 * keys that lose access and the facts that were not recorded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { policyEvaluator, runtimeForPolicy } from '../../src/cli/policy.js';
import { formatImpact, type RecordedCall, replayImpact } from '../../src/core/policy-test/impact.js';

const CANDIDATE = `
upstreams:
  - { name: mock, kind: mock }
models:
  - { match: "*", upstream: mock }
tiers:
  free:
    scopes: ["chat.create"]
    models: ["small-2"]
  pro:
    limits:
      - { id: rpm, per: key, requests: 2, window: 1m }
`;

const dir = mkdtempSync(join(tmpdir(), 'sluice-impact-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'candidate.yaml');
writeFileSync(file, CANDIDATE);

const T0 = Date.UTC(2026, 11, 5, 9);
const call = (i: number, keyId: string, model: string, extra: Partial<RecordedCall> = {}): RecordedCall => ({
  at: T0 + i * 1000,
  keyId,
  tenantId: keyId === 'keyfree00001' ? 'small-co' : 'acme',
  action: 'chat.create',
  model,
  ip: '192.0.2.1',
  country: null,
  decision: 'allowed',
  reason: 'ok',
  ...extra,
});

describe('impact replay', () => {
  it('lists the newly refused and allowed calls, the limits that bind, and the keys losing access', async () => {
    const { rt } = await runtimeForPolicy(file);
    const day: RecordedCall[] = [
      // free key: used small-1 twice (now not in its models), refused once for embeddings (still refused)
      call(0, 'keyfree00001', 'small-1'),
      call(1, 'keyfree00001', 'small-1'),
      call(2, 'keyfree00001', 'small-1', {
        action: 'embeddings.create',
        decision: 'refused',
        reason: 'SLUICE_SCOPE_DENIED',
      }),
      // pro key: 3 calls in a minute (the candidate allows 2), one recorded refusal that would now pass
      call(3, 'keypro000001', 'big-1'),
      call(4, 'keypro000001', 'big-1'),
      call(5, 'keypro000001', 'big-1'),
      call(120, 'keypro000001', 'big-1', { decision: 'refused', reason: 'SLUICE_MODEL_DENIED' }),
      // not replayed: an upstream error, an admin action, a key that is gone
      call(6, 'keypro000001', 'big-1', { decision: 'error', reason: 'SLUICE_UPSTREAM_ERROR' }),
      call(7, 'keypro000001', 'big-1', { action: 'models.list' }),
      call(8, 'keygone00001', 'big-1'),
    ];
    const principals: Record<string, { tenant: string; tier: string }> = {
      keyfree00001: { tenant: 'small-co', tier: 'free' },
      keypro000001: { tenant: 'acme', tier: 'pro' },
    };
    const r = await replayImpact(day, (id) => principals[id], policyEvaluator(rt));
    expect(r.replayed).toBe(7);
    expect(r.skipped).toEqual(
      expect.arrayContaining([
        { reason: 'recorded as an error', count: 1 },
        { reason: 'not a model call (models.list)', count: 1 },
        { reason: 'key no longer exists', count: 1 },
      ]),
    );
    expect(r.newlyRefused.map((c) => [c.keyId, c.after])).toEqual([
      ['keyfree00001', 'deny SLUICE_MODEL_DENIED'],
      ['keyfree00001', 'deny SLUICE_MODEL_DENIED'],
      ['keypro000001', 'deny SLUICE_RATE_LIMITED'],
    ]);
    expect(r.newlyAllowed.map((c) => [c.keyId, c.before])).toEqual([
      ['keypro000001', 'deny SLUICE_MODEL_DENIED'],
    ]);
    expect(r.byTenant).toEqual({ 'small-co': 2, acme: 1 });
    expect(r.byModel).toEqual({ 'small-1': 2, 'big-1': 1 });
    expect(r.byCode).toEqual({ SLUICE_MODEL_DENIED: 2, SLUICE_RATE_LIMITED: 1 });
    expect(r.limitsBinding).toEqual({ rpm: 1 });
    expect(r.keysLosingAccess).toEqual(['keyfree00001']);
    const text = formatImpact(r);
    expect(text).toContain('keys losing access: keyfree00001');
    expect(text).toContain('not recorded, so not replayed: prompt text');
  });
});
