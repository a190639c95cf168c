/** The pure exception core: validation, narrowing, step-up thresholds, derived expiry, the overlay. */
import { describe, expect, it } from 'vitest';
import {
  approvedGrant,
  type ExceptionPolicy,
  type ExceptionRecord,
  isActive,
  needsStepUp,
  newRequest,
  statusAt,
  transition,
} from '../../src/core/exceptions/model.js';
import { ExceptionOverlay } from '../../src/core/exceptions/overlay.js';
import type { LimitBucket } from '../../src/core/ports.js';

const DAY = 86_400_000;
const policy: ExceptionPolicy = {
  maxDurationMs: 14 * DAY,
  pendingTtlMs: 7 * DAY,
  stepUpAbove: { durationMs: 3 * DAY, factor: 4 },
};
const who = { id: 'exc_1', tenantId: 'acme', keyId: 'k1' };
const T0 = 1_800_000_000_000;

function pending(input: Record<string, unknown> = {}): ExceptionRecord {
  const r = newRequest(
    { limits: [{ id: 'rpm', limit: 500 }], justification: 'launch week traffic', duration: 3600, ...input },
    who,
    policy,
    T0,
  );
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

function approved(r: ExceptionRecord, at = T0 + 1000): ExceptionRecord {
  const g = approvedGrant(r, {}, policy);
  if (!g.ok) throw new Error(g.error);
  const t = transition(r, { op: 'approve', ...g.value, by: 'ops', note: null }, at);
  if (!t.ok) throw new Error(t.error);
  return t.value;
}

describe('exception requests', () => {
  it('refuses requests without a grant, a justification, or within the duration cap', () => {
    const bad = (input: Record<string, unknown>) =>
      newRequest({ justification: 'launch week traffic', duration: 60, ...input }, who, policy, T0);
    expect(bad({})).toMatchObject({ ok: false, error: expect.stringContaining('at least one') });
    expect(bad({ limits: [{ id: 'rpm', limit: -1 }] })).toMatchObject({ ok: false });
    expect(bad({ limits: [{ id: 'rpm', limit: 5 }], justification: 'pls' })).toMatchObject({
      ok: false,
      error: expect.stringContaining('justification'),
    });
    expect(bad({ models: ['gpt-4o'], duration: 15 * 86_400 })).toMatchObject({
      ok: false,
      error: expect.stringContaining('longer than the policy allows'),
    });
    expect(bad({ models: ['bad model!'] })).toMatchObject({ ok: false });
    expect(bad({ models: ['gpt-4o*'], scopes: ['images.generate'] })).toMatchObject({ ok: true });
  });

  it('applies to the calling key unless tenant-wide, and is pending until answered or lapsed', () => {
    const r = pending();
    expect(r.keyId).toBe('k1');
    expect(pending({ tenantWide: true }).keyId).toBeNull();
    expect(statusAt(r, T0 + 7 * DAY - 1)).toBe('pending');
    // 1. nobody answered within pendingTtl: expired, and no longer approvable
    expect(statusAt(r, T0 + 7 * DAY)).toBe('expired');
    const late = transition(r, { op: 'deny', by: 'ops', note: null }, T0 + 7 * DAY);
    expect(late).toMatchObject({ ok: false, error: expect.stringContaining('expired') });
  });

  it('an approval may narrow but never widen what was asked', () => {
    const r = pending({ models: ['gpt-4o', 'o3'] });
    expect(approvedGrant(r, { limits: [{ id: 'rpm', limit: 600 }] }, policy)).toMatchObject({ ok: false });
    expect(approvedGrant(r, { limits: [{ id: 'tpm', limit: 1 }] }, policy)).toMatchObject({ ok: false });
    expect(approvedGrant(r, { models: ['gpt-5'] }, policy)).toMatchObject({ ok: false });
    expect(approvedGrant(r, { duration: 7200 }, policy)).toMatchObject({ ok: false });
    const g = approvedGrant(
      r,
      { limits: [{ id: 'rpm', limit: 300 }], models: ['o3'], duration: 600 },
      policy,
    );
    expect(g).toEqual({
      ok: true,
      value: {
        grant: { limits: [{ id: 'rpm', limit: 300 }], models: ['o3'], scopes: [] },
        durationMs: 600_000,
      },
    });
  });

  it('needs step-up above the duration threshold, the limit factor, or for extra access', () => {
    const base = (id: string) => (id === 'rpm' ? 100 : undefined);
    const limits = (limit: number) => ({ limits: [{ id: 'rpm', limit }], models: [], scopes: [] });
    expect(needsStepUp(limits(400), DAY, policy, base)).toBe(false);
    expect(needsStepUp(limits(401), DAY, policy, base)).toBe(true);
    expect(needsStepUp(limits(400), 3 * DAY + 1, policy, base)).toBe(true);
    expect(needsStepUp({ limits: [], models: ['o3'], scopes: [] }, DAY, policy, base)).toBe(true);
    expect(
      needsStepUp({ limits: [{ id: 'nope', limit: 1 }], models: [], scopes: [] }, DAY, policy, base),
    ).toBe(true);
  });

  it('an approved exception is active until expiresAt and then expired without any write', () => {
    const a = approved(pending());
    expect(a.expiresAt).toBe(T0 + 1000 + 3_600_000);
    expect(isActive(a, a.expiresAt! - 1)).toBe(true);
    expect(isActive(a, a.expiresAt!)).toBe(false);
    expect(statusAt(a, a.expiresAt!)).toBe('expired');
    // Revoking ends it at once; a second decision is refused.
    const rv = transition(a, { op: 'revoke', by: 'ops', note: 'done' }, T0 + 5000);
    expect(rv.ok && isActive(rv.value, T0 + 5000)).toBe(false);
    expect(
      transition(a, { op: 'approve', grant: a.granted!, durationMs: 1, by: 'x', note: null }, T0 + 2000),
    ).toMatchObject({
      ok: false,
    });
  });
});

describe('exception overlay', () => {
  const bucket = (id: string, limit: number): LimitBucket => ({
    id,
    key: `{t:acme}:${id}:g:k:k1`,
    kind: 'requests',
    algorithm: 'gcra',
    limit,
    burst: 0,
    windowMs: 60_000,
    shadow: false,
    per: 'key',
  });

  it('raises only the named limit, only for its key and tenant, only while active, never lowers', () => {
    const a = approved(pending());
    const o = new ExceptionOverlay([a]);
    const buckets = [bucket('rpm', 100), bucket('tpm', 1000)];
    const during = o.buckets('acme', 'k1', T0 + 2000, buckets);
    expect(during.map((b) => [b.id, b.limit, b.key])).toEqual([
      ['rpm', 500, buckets[0]!.key],
      ['tpm', 1000, buckets[1]!.key],
    ]);
    expect(o.buckets('acme', 'k2', T0 + 2000, buckets)).toBe(buckets);
    expect(o.buckets('other', 'k1', T0 + 2000, buckets)).toBe(buckets);
    expect(o.buckets('acme', 'k1', a.expiresAt!, buckets)).toBe(buckets);
    expect(o.buckets('acme', 'k1', T0 + 2000, [bucket('rpm', 900)])[0]!.limit).toBe(900);
    expect(o.none('other')).toBe(true);
  });

  it('tenant-wide grants reach every key; access grants add models and scopes while active', () => {
    const a = approved(
      pending({ limits: undefined, models: ['o3*'], scopes: ['images.generate'], tenantWide: true }),
    );
    const o = new ExceptionOverlay([a, pending()]);
    expect(o.size).toBe(1);
    const g = o.access('acme', 'any-key', T0 + 2000);
    expect(g?.models('o3-mini')).toBe(true);
    expect(g?.models('gpt-4o')).toBe(false);
    expect(g?.scopes('images.generate')).toBe(true);
    expect(o.access('acme', 'any-key', a.expiresAt!)).toBeNull();
  });
});
