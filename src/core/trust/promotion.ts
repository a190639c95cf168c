/**
 * Earned ceilings: which tier a tenant has earned from its own history. Pure: the history and the
 * time are passed in; the scheduler (src/trust/service.ts) gathers them off the request path.
 *
 * The ladder is the policy's `promotion.ladder`, lowest tier first. A tenant climbs one rung per
 * evaluation when it meets the next rung's rule, up to `maxTier`. Hysteresis, two ways:
 * - in time: no move by rule within `minDwell` of the last move;
 * - in value: a tenant keeps a rung until it misses that rung's rule by more than `margin` (a rule of
 *   1000 requests is met at 1000 to climb, and only lost below 800 with margin 0.2).
 * A confirmed abuse case demotes at once (dwell or not) to the lowest rung or one rung down, and a
 * pinned tier (an operator's override) never moves.
 */

export interface PromotionRule {
  /** Tenant age at least this (ms). */
  minAge?: number;
  /** The period the counts below cover (ms). */
  period: number;
  minRequests?: number;
  minUsd?: number;
  /** Refused or throttled requests over all requests, at most (0..1). */
  maxRefusedShare?: number;
  /** Flagged requests (abuse flags) over answered requests, at most (0..1). */
  maxFlaggedShare?: number;
  /** No open abuse case (default true). */
  noOpenCase: boolean;
}

export interface PromotionPolicy {
  every: number;
  ladder: string[];
  maxTier?: string;
  minDwell: number;
  margin: number;
  onConfirmedCase: 'lowest' | 'one-down';
  /** Rule to enter each rung above the first, by tier name. */
  rules: Record<string, PromotionRule>;
}

/** What the scheduler knows of a tenant's history over one rule's period. */
export interface TenantHistory {
  createdAt: number;
  /** Answered requests in the period. */
  requests: number;
  usd: number;
  /** Refused or throttled requests in the period. */
  refused: number;
  /** Flags raised in the period. */
  flagged: number;
  openCases: number;
  /** Confirmed cases not yet acted on (confirmed after the tenant's last move). */
  confirmedSinceMove: number;
}

export interface TierState {
  tier: string;
  pinned: boolean;
  /** When the tier last changed (or was first seen). */
  since: number;
}

export interface Requirement {
  id: 'minAge' | 'minRequests' | 'minUsd' | 'maxRefusedShare' | 'maxFlaggedShare' | 'noOpenCase' | 'minDwell';
  /** What it takes, in words. */
  text: string;
  met: boolean;
  /** Current value and the target (numbers in the rule's unit: ms, requests, USD, share). */
  value: number;
  target: number;
}

export type Decision =
  | { move: null; tier: string; reason: string }
  | { move: 'promote' | 'demote'; from: string; tier: string; reason: string };

const DAY = 86_400_000;

function days(ms: number): string {
  return ms % DAY === 0 ? `${ms / DAY}d` : `${Math.round(ms / 3_600_000)}h`;
}

/** Highest rung index the policy allows. */
function topIndex(p: PromotionPolicy): number {
  const i = p.maxTier ? p.ladder.indexOf(p.maxTier) : -1;
  return i >= 0 ? i : p.ladder.length - 1;
}

/**
 * Each requirement of `rule` checked against `h`; `slack` loosens the thresholds (0 to enter a rung,
 * the policy's margin to keep it).
 */
export function checkRule(rule: PromotionRule, h: TenantHistory, now: number, slack = 0): Requirement[] {
  const out: Requirement[] = [];
  const total = h.requests + h.refused;
  const period = days(rule.period);
  if (rule.minAge !== undefined) {
    const age = now - h.createdAt;
    out.push({
      id: 'minAge',
      text: `account at least ${days(rule.minAge)} old`,
      met: age >= rule.minAge * (1 - slack),
      value: age,
      target: rule.minAge,
    });
  }
  if (rule.minRequests !== undefined)
    out.push({
      id: 'minRequests',
      text: `at least ${rule.minRequests} requests in ${period}`,
      met: h.requests >= rule.minRequests * (1 - slack),
      value: h.requests,
      target: rule.minRequests,
    });
  if (rule.minUsd !== undefined)
    out.push({
      id: 'minUsd',
      text: `at least $${rule.minUsd} spent in ${period}`,
      met: h.usd >= rule.minUsd * (1 - slack),
      value: Math.round(h.usd * 1e6) / 1e6,
      target: rule.minUsd,
    });
  if (rule.maxRefusedShare !== undefined) {
    const share = total === 0 ? 0 : h.refused / total;
    out.push({
      id: 'maxRefusedShare',
      text: `at most ${rule.maxRefusedShare * 100}% of requests refused or throttled in ${period}`,
      met: share <= rule.maxRefusedShare * (1 + slack),
      value: share,
      target: rule.maxRefusedShare,
    });
  }
  if (rule.maxFlaggedShare !== undefined) {
    const share = h.requests === 0 ? 0 : h.flagged / h.requests;
    out.push({
      id: 'maxFlaggedShare',
      text: `at most ${rule.maxFlaggedShare * 100}% of requests flagged in ${period}`,
      met: share <= rule.maxFlaggedShare * (1 + slack),
      value: share,
      target: rule.maxFlaggedShare,
    });
  }
  if (rule.noOpenCase)
    out.push({
      id: 'noOpenCase',
      text: 'no open abuse case',
      met: h.openCases === 0,
      value: h.openCases,
      target: 0,
    });
  return out;
}

/** The rung the tenant stands on: its tier, or the lowest rung when its tier is not on the ladder. */
export function rungOf(p: PromotionPolicy, tier: string): number {
  return Math.max(0, p.ladder.indexOf(tier));
}

/**
 * The tier a tenant should hold now. `histories` has the history over each rung's rule period, by
 * tier name (the rung's own rule for keeping it, the next rung's rule for climbing).
 */
export function decide(
  p: PromotionPolicy,
  state: TierState,
  histories: (tier: string) => TenantHistory,
  now: number,
): Decision {
  if (state.pinned) return { move: null, tier: state.tier, reason: 'pinned' };
  const onLadder = p.ladder.includes(state.tier);
  if (!onLadder) return { move: null, tier: state.tier, reason: 'not on the ladder' };
  const rung = rungOf(p, state.tier);
  const anyHistory = histories(state.tier);
  if (anyHistory.confirmedSinceMove > 0 && rung > 0) {
    const to = p.onConfirmedCase === 'lowest' ? 0 : rung - 1;
    return { move: 'demote', from: state.tier, tier: p.ladder[to]!, reason: 'abuse case confirmed' };
  }
  if (now - state.since < p.minDwell) return { move: null, tier: state.tier, reason: 'minimum dwell' };
  // Keep the current rung unless its rule is missed by more than the margin.
  const own = p.rules[state.tier];
  if (rung > 0 && own) {
    const missed = checkRule(own, histories(state.tier), now, p.margin).filter((r) => !r.met);
    if (missed.length > 0)
      return {
        move: 'demote',
        from: state.tier,
        tier: p.ladder[rung - 1]!,
        reason: `no longer meets: ${missed.map((r) => r.text).join('; ')}`,
      };
  }
  if (rung >= topIndex(p)) return { move: null, tier: state.tier, reason: 'highest tier allowed' };
  const next = p.ladder[rung + 1]!;
  const rule = p.rules[next];
  if (!rule) return { move: null, tier: state.tier, reason: `no rule for ${next}` };
  const reqs = checkRule(rule, histories(next), now);
  if (reqs.every((r) => r.met))
    return {
      move: 'promote',
      from: state.tier,
      tier: next,
      reason: `met: ${reqs.map((r) => r.text).join('; ') || 'no requirement'}`,
    };
  return { move: null, tier: state.tier, reason: 'next rule not met' };
}

/** The next tier and what it takes, for `/sluice/v1/me` and the portal. */
export function nextStep(
  p: PromotionPolicy,
  state: TierState,
  history: ((tier: string) => TenantHistory) | undefined,
  now: number,
): { tier: string | null; requirements: Requirement[] } {
  if (state.pinned || !p.ladder.includes(state.tier)) return { tier: null, requirements: [] };
  const rung = rungOf(p, state.tier);
  if (rung >= topIndex(p)) return { tier: null, requirements: [] };
  const next = p.ladder[rung + 1]!;
  const rule = p.rules[next];
  if (!rule || !history) return { tier: next, requirements: [] };
  const reqs = checkRule(rule, history(next), now);
  if (p.minDwell > 0)
    reqs.push({
      id: 'minDwell',
      text: `at least ${days(p.minDwell)} in the current tier`,
      met: now - state.since >= p.minDwell,
      value: now - state.since,
      target: p.minDwell,
    });
  return { tier: next, requirements: reqs };
}
