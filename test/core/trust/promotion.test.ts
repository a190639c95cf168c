import { describe, expect, it } from 'vitest';
import {
  decide,
  nextStep,
  type PromotionPolicy,
  type TenantHistory,
} from '../../../src/core/trust/promotion.js';
import { rotationPolicyFor, rotationStatus } from '../../../src/core/trust/rotation.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const policy: PromotionPolicy = {
  every: 3_600_000,
  ladder: ['bronze', 'silver', 'gold'],
  maxTier: 'silver',
  minDwell: DAY,
  margin: 0.2,
  onConfirmedCase: 'lowest',
  rules: {
    silver: { minAge: 7 * DAY, period: 30 * DAY, minRequests: 1000, maxRefusedShare: 0.05, noOpenCase: true },
    gold: { period: 30 * DAY, minRequests: 10, noOpenCase: true },
  },
};
const hist = (o: Partial<TenantHistory> = {}): TenantHistory => ({
  createdAt: T0,
  requests: 0,
  usd: 0,
  refused: 0,
  flagged: 0,
  openCases: 0,
  confirmedSinceMove: 0,
  ...o,
});

describe('earned tiers (pure)', () => {
  it('promotes one rung when every requirement of the next rule is met, and not before', () => {
    const state = { tier: 'bronze', pinned: false, since: T0 };
    const good = hist({ requests: 1000, refused: 10 });
    expect(decide(policy, state, () => good, T0 + 6 * DAY).move).toBeNull(); // too young
    expect(decide(policy, state, () => hist({ requests: 999 }), T0 + 8 * DAY).move).toBeNull();
    expect(decide(policy, state, () => hist({ requests: 1000, refused: 60 }), T0 + 8 * DAY).move).toBeNull();
    expect(decide(policy, state, () => hist({ requests: 1000, openCases: 1 }), T0 + 8 * DAY).move).toBeNull();
    expect(decide(policy, state, () => good, T0 + 8 * DAY)).toMatchObject({
      move: 'promote',
      tier: 'silver',
    });
  });

  it('never climbs past maxTier, never moves a pinned tenant', () => {
    const busy = hist({ requests: 1_000_000 });
    expect(
      decide(policy, { tier: 'silver', pinned: false, since: T0 }, () => busy, T0 + 90 * DAY).move,
    ).toBeNull();
    expect(
      decide(
        { ...policy, maxTier: undefined },
        { tier: 'silver', pinned: false, since: T0 },
        () => busy,
        T0 + 90 * DAY,
      ),
    ).toMatchObject({ move: 'promote', tier: 'gold' });
    expect(
      decide(policy, { tier: 'bronze', pinned: true, since: T0 }, () => busy, T0 + 90 * DAY).move,
    ).toBeNull();
  });

  it('hysteresis: a rung is kept within the margin and within the dwell, lost beyond both', () => {
    const state = { tier: 'silver', pinned: false, since: T0 + 10 * DAY };
    // 850 requests: below the 1000 to enter, above the 800 to keep.
    expect(decide(policy, state, () => hist({ requests: 850 }), T0 + 20 * DAY).move).toBeNull();
    // 700: below the margin, but within a day of the last move.
    expect(decide(policy, state, () => hist({ requests: 700 }), T0 + 10 * DAY + 1000).move).toBeNull();
    expect(decide(policy, state, () => hist({ requests: 700 }), T0 + 20 * DAY)).toMatchObject({
      move: 'demote',
      tier: 'bronze',
    });
  });

  it('a confirmed abuse case demotes at once, to the lowest rung or one down', () => {
    const state = { tier: 'gold', pinned: false, since: T0 + 10 * DAY };
    const h = () => hist({ requests: 5000, confirmedSinceMove: 1 });
    expect(decide(policy, state, h, T0 + 10 * DAY + 1)).toMatchObject({
      move: 'demote',
      tier: 'bronze',
      reason: 'abuse case confirmed',
    });
    expect(decide({ ...policy, onConfirmedCase: 'one-down' }, state, h, T0 + 10 * DAY + 1)).toMatchObject({
      tier: 'silver',
    });
  });

  it('nextStep lists what the next tier takes, met or not', () => {
    const n = nextStep(
      policy,
      { tier: 'bronze', pinned: false, since: T0 },
      () => hist({ requests: 10 }),
      T0 + 2 * DAY,
    );
    expect(n.tier).toBe('silver');
    const byId = Object.fromEntries(n.requirements.map((r) => [r.id, r]));
    expect(byId.minAge).toMatchObject({ met: false, target: 7 * DAY });
    expect(byId.minRequests).toMatchObject({ met: false, value: 10, target: 1000 });
    expect(byId.noOpenCase?.met).toBe(true);
    expect(byId.minDwell?.met).toBe(true);
    expect(nextStep(policy, { tier: 'silver', pinned: false, since: T0 }, undefined, T0).tier).toBeNull();
  });
});

describe('scheduled rotation (pure)', () => {
  const p = { maxAge: 30 * DAY, warnAt: 20 * DAY, autoRotate: true, grace: DAY };
  it('a secret is ok, then warned, then due', () => {
    expect(rotationStatus(p, T0, T0 + 19 * DAY).state).toBe('ok');
    expect(rotationStatus(p, T0, T0 + 20 * DAY).state).toBe('warn');
    expect(rotationStatus(p, T0, T0 + 30 * DAY)).toMatchObject({ state: 'due', dueAt: T0 + 30 * DAY });
    // Without warnAt, the warning comes at 80% of maxAge.
    expect(rotationStatus({ ...p, warnAt: undefined }, T0, T0 + 24 * DAY).state).toBe('warn');
  });
  it('the most specific block wins', () => {
    expect(rotationPolicyFor(undefined, p)).toBe(p);
    const t = { ...p, maxAge: DAY };
    expect(rotationPolicyFor(t, p)).toBe(t);
  });
});
