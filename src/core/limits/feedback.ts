/**
 * Upstream feedback (pure: time is a parameter). When an upstream answers 429, or its own rate-limit
 * headers say it is nearly out (`x-ratelimit-remaining-{requests,tokens}` or Anthropic's
 * `anthropic-ratelimit-*-remaining` below `lowFraction` of the matching limit header), the capacity
 * Sluice hands out for it is cut (multiplicative decrease), then recovered step by step while the
 * upstream stays quiet (additive increase), never below `floor` of the base. Callers then get
 * Sluice's own 429 with an exact retry time instead of a burst of upstream errors.
 *
 * One decrease per episode: a response to a request admitted before the last decrease says nothing
 * about the capacity since (as TCP reacts once per round trip), so it is ignored.
 *
 * Base capacity: the upstream's declared `capacity`; when it declares none, the rate Sluice admitted
 * to it over the last `rateWindowMs` when the first signal arrives (the rate it could not take). A
 * derived capacity recovers past that rate up to `derivedCeiling` times it, and is then forgotten:
 * the upstream is unlimited again until its next 429.
 */
import { type Capacity, RecentRate } from './fair-share.js';

export interface FeedbackOptions {
  /** Factor applied on a 429. Default 0.5. */
  decrease?: number;
  /** Factor applied when the upstream's remaining allowance runs low. Default 0.8. */
  lowDecrease?: number;
  /** "Low": remaining below this fraction of the limit header. Default 0.05. */
  lowFraction?: number;
  /** Added to the factor every `recoverEveryMs` without a decrease. Default 0.05 (a halved capacity is back in 10 s). */
  recoverStep?: number;
  /** Default 1 s. */
  recoverEveryMs?: number;
  /** Lowest factor. Default 0.05: a trickle still reaches the upstream, so its recovery is seen. */
  floor?: number;
  /** A derived capacity is forgotten once its factor recovers to this. Default 2. */
  derivedCeiling?: number;
  /** Window of the admitted rate a capacity is derived from. Default 10 s. */
  rateWindowMs?: number;
}

/** What a response changed, for logs and metrics. */
export interface FeedbackEvent {
  reason: 'upstream-429' | 'upstream-low';
  /** Factor now applied to the base capacity. */
  factor: number;
  /** True when this signal derived a capacity for an upstream that declares none. */
  derived: boolean;
  capacity: Capacity;
}

const LOW_PAIRS: readonly [remaining: string, limit: string][] = [
  ['x-ratelimit-remaining-requests', 'x-ratelimit-limit-requests'],
  ['x-ratelimit-remaining-tokens', 'x-ratelimit-limit-tokens'],
  ['anthropic-ratelimit-requests-remaining', 'anthropic-ratelimit-requests-limit'],
  ['anthropic-ratelimit-tokens-remaining', 'anthropic-ratelimit-tokens-limit'],
  ['anthropic-ratelimit-input-tokens-remaining', 'anthropic-ratelimit-input-tokens-limit'],
  ['anthropic-ratelimit-output-tokens-remaining', 'anthropic-ratelimit-output-tokens-limit'],
];

/** True when any remaining/limit header pair says less than `fraction` of the limit is left. */
export function remainingIsLow(headers: Readonly<Record<string, string>>, fraction: number): boolean {
  for (const [r, l] of LOW_PAIRS) {
    const rv = headers[r];
    const lv = headers[l];
    if (rv === undefined || lv === undefined) continue;
    const remaining = Number(rv);
    const limit = Number(lv);
    if (Number.isFinite(remaining) && Number.isFinite(limit) && limit > 0 && remaining < limit * fraction)
      return true;
  }
  return false;
}

/** Feedback state of one upstream. Every method takes `now`; nothing here reads a clock. */
export class UpstreamFeedback {
  private readonly decrease: number;
  private readonly lowDecrease: number;
  private readonly lowFraction: number;
  private readonly step: number;
  private readonly everyMs: number;
  private readonly floor: number;
  private readonly ceiling: number;
  private readonly admittedRate: RecentRate;
  /** Factor as of `changedAt`; recovery is computed from it. */
  private f0 = 1;
  private changedAt = Number.NEGATIVE_INFINITY;
  private lastDecrease = Number.NEGATIVE_INFINITY;
  private derivedBase: Capacity | null = null;

  constructor(opts: FeedbackOptions = {}) {
    this.decrease = opts.decrease ?? 0.5;
    this.lowDecrease = opts.lowDecrease ?? 0.8;
    this.lowFraction = opts.lowFraction ?? 0.05;
    this.step = opts.recoverStep ?? 0.05;
    this.everyMs = opts.recoverEveryMs ?? 1000;
    this.floor = opts.floor ?? 0.05;
    this.ceiling = opts.derivedCeiling ?? 2;
    this.admittedRate = new RecentRate(opts.rateWindowMs ?? 10_000, 500);
  }

  /** A request admitted to this upstream (the rate a capacity is derived from). */
  admitted(requests: number, tokens: number, now: number): void {
    this.admittedRate.add(now, requests, tokens);
  }

  /**
   * An upstream response. `admittedAt`: when its request was admitted (see "one decrease per
   * episode"). Returns what changed, or null when nothing did (a signal at the floor only restarts
   * recovery).
   */
  response(
    status: number,
    rateHeaders: Readonly<Record<string, string>>,
    admittedAt: number,
    declared: Capacity | undefined,
    now: number,
  ): FeedbackEvent | null {
    const throttled = status === 429;
    if (!throttled && !remainingIsLow(rateHeaders, this.lowFraction)) return null;
    if (admittedAt <= this.lastDecrease) return null;
    let derived = false;
    const hasDeclared = declaredDims(declared);
    if (!hasDeclared && !this.derivedBase) {
      const [r, t] = this.admittedRate.perMinute(now);
      this.derivedBase = { requestsPerMinute: Math.max(1, r) };
      if (t > 0) this.derivedBase.tokensPerMinute = t;
      this.f0 = 1;
      this.changedAt = now;
      derived = true;
    }
    const before = this.factorAt(now, hasDeclared);
    const factor = Math.max(this.floor, before * (throttled ? this.decrease : this.lowDecrease));
    this.f0 = factor;
    this.changedAt = now;
    this.lastDecrease = now;
    // Already at the floor: recovery starts over, but there is nothing new to report.
    if (!derived && factor >= before) return null;
    return {
      reason: throttled ? 'upstream-429' : 'upstream-low',
      factor,
      derived,
      capacity: this.capacity(declared, now) ?? {},
    };
  }

  /** The factor applied to the base capacity now (1 when nothing happened). */
  factor(now: number, declared?: Capacity): number {
    return this.factorAt(now, declaredDims(declared));
  }

  /**
   * The capacity to hand out now: the declared (else derived) capacity times the factor; undefined
   * when the upstream declares none and none is derived (unlimited).
   */
  capacity(declared: Capacity | undefined, now: number): Capacity | undefined {
    if (declaredDims(declared)) {
      this.derivedBase = null;
      const f = this.factorAt(now, true);
      return f >= 1 ? declared : scale(declared!, f);
    }
    if (!this.derivedBase) return undefined;
    const f = this.factorAt(now, false);
    if (f >= this.ceiling) {
      this.derivedBase = null;
      this.f0 = 1;
      return undefined;
    }
    return scale(this.derivedBase, f);
  }

  private factorAt(now: number, declared: boolean): number {
    const cap = declared ? 1 : this.ceiling;
    if (this.f0 >= cap) return cap;
    const steps = Math.floor((now - this.changedAt) / this.everyMs);
    return Math.min(cap, this.f0 + (steps > 0 ? steps * this.step : 0));
  }
}

function declaredDims(c: Capacity | undefined): boolean {
  return c !== undefined && (c.requestsPerMinute !== undefined || c.tokensPerMinute !== undefined);
}

function scale(c: Capacity, f: number): Capacity {
  const out: Capacity = {};
  if (c.requestsPerMinute !== undefined) out.requestsPerMinute = c.requestsPerMinute * f;
  if (c.tokensPerMinute !== undefined) out.tokensPerMinute = c.tokensPerMinute * f;
  return out;
}
