/**
 * Fair share of a shared upstream's capacity among its active tenants (pure: time is a parameter).
 *
 * When the tenants of one upstream ask for more than it can take (`upstreams[].capacity`), each gets
 * a share by weighted max-min fairness (water-filling): tenants asking for less than their weighted
 * share get all they ask for, and what they leave is split among the others by weight, until either
 * the capacity or every demand is met. On top of that the share is work-conserving: capacity nobody
 * asked for is spread by weight as headroom, so one tenant alone can use all of it and a tenant that
 * grows is not held to its past rate.
 *
 * Demand is the cost tenants asked for recently (requests and tokens over the last few seconds,
 * denied attempts included: a tenant held back by its share still wants it), scaled to a rate per
 * minute. The gateway turns each share into a GCRA bucket (`src/gateway/admission.ts`).
 */

/** Capacity of an upstream, or a share of it, per minute (a missing dimension is unlimited). */
export interface Capacity {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** One tenant's recent demand and weight, for {@link waterFill}. */
export interface TenantDemand {
  id: string;
  /** Positive; a tenant of weight 3 gets three times the share of a tenant of weight 1. */
  weight: number;
  /** Amount asked for (any unit, the same as the capacity's). Negative counts as 0. */
  demand: number;
}

/**
 * Weighted max-min fair allocation. Every allocation is at most its tenant's demand, allocations sum
 * to min(capacity, total demand), and a tenant whose demand is not met gets no less, per unit of
 * weight, than any other tenant. O(n log n).
 */
export function waterFill(capacity: number, tenants: readonly TenantDemand[]): Map<string, number> {
  const out = new Map<string, number>();
  const order = tenants
    .map((t) => ({ id: t.id, w: Math.max(t.weight || 0, 0), d: Math.max(t.demand || 0, 0) }))
    .sort((a, b) => a.d * b.w - b.d * a.w);
  let left = Math.max(capacity || 0, 0);
  let weight = 0;
  for (const t of order) weight += t.w;
  for (let i = 0; i < order.length; i++) {
    const t = order[i]!;
    if (t.w === 0) {
      out.set(t.id, 0);
      continue;
    }
    const fair = (left * t.w) / weight;
    if (t.d <= fair) {
      out.set(t.id, t.d);
      left -= t.d;
      weight -= t.w;
      continue;
    }
    // Sorted by demand per weight: this tenant and every later one are held to the same level.
    const level = left / weight;
    for (let j = i; j < order.length; j++) out.set(order[j]!.id, order[j]!.w * level);
    break;
  }
  return out;
}

/**
 * Bucket limits from a water-fill: each tenant's allocation plus the capacity nobody asked for,
 * spread by weight (work-conserving). They sum to the capacity whenever a tenant of positive weight
 * is given.
 */
export function shareLimits(capacity: number, tenants: readonly TenantDemand[]): Map<string, number> {
  const alloc = waterFill(capacity, tenants);
  let used = 0;
  let weight = 0;
  for (const t of tenants) {
    used += alloc.get(t.id) ?? 0;
    if (t.weight > 0) weight += t.weight;
  }
  const spare = Math.max(0, capacity - used);
  if (spare > 0 && weight > 0)
    for (const t of tenants)
      if (t.weight > 0) alloc.set(t.id, alloc.get(t.id)! + (spare * t.weight) / weight);
  return alloc;
}

/**
 * Amounts over a sliding window of fixed slots, as a rate per minute: the window covers the last
 * `windowMs`, or the time since the amounts began when that is shorter (so a newcomer's rate is not
 * diluted by the time before it arrived), and at least one slot.
 */
export class RecentRate {
  private readonly k: number;
  private readonly req: Float64Array;
  private readonly tok: Float64Array;
  private sumReq = 0;
  private sumTok = 0;
  private last = Number.NEGATIVE_INFINITY;
  private since = 0;

  constructor(
    readonly windowMs: number,
    readonly slotMs: number,
  ) {
    this.k = Math.max(1, Math.ceil(windowMs / slotMs));
    this.req = new Float64Array(this.k);
    this.tok = new Float64Array(this.k);
  }

  /** Adds amounts at `now` (negative amounts take back an earlier add; slots never go below 0). O(1) amortised. */
  add(now: number, requests: number, tokens: number): void {
    const s = this.advance(now);
    if (this.sumReq <= 0 && this.sumTok <= 0 && requests + tokens > 0) this.since = now;
    const i = ((s % this.k) + this.k) % this.k;
    const r = Math.max(0, this.req[i]! + requests);
    const t = Math.max(0, this.tok[i]! + tokens);
    this.sumReq += r - this.req[i]!;
    this.sumTok += t - this.tok[i]!;
    this.req[i] = r;
    this.tok[i] = t;
  }

  /** True while any amount is left in the window. */
  active(now: number): boolean {
    this.advance(now);
    return this.sumReq > 0 || this.sumTok > 0;
  }

  /** [requests, tokens] per minute over the window (see the class comment). */
  perMinute(now: number): [number, number] {
    const s = this.advance(now);
    if (this.sumReq <= 0 && this.sumTok <= 0) return [0, 0];
    const spanned = (this.k - 1) * this.slotMs + (now - s * this.slotMs) + 1;
    const covered = Math.max(this.slotMs, Math.min(spanned, now - this.since + 1));
    return [(this.sumReq * 60_000) / covered, (this.sumTok * 60_000) / covered];
  }

  /** Clears the slots that left the window; returns the current slot number. */
  private advance(now: number): number {
    const s = Math.floor(now / this.slotMs);
    if (s > this.last) {
      if (s - this.last >= this.k) {
        this.req.fill(0);
        this.tok.fill(0);
        this.sumReq = 0;
        this.sumTok = 0;
      } else {
        for (let j = this.last + 1; j <= s; j++) {
          const i = ((j % this.k) + this.k) % this.k;
          this.sumReq -= this.req[i]!;
          this.sumTok -= this.tok[i]!;
          this.req[i] = 0;
          this.tok[i] = 0;
        }
        // Sums of whole amounts are exact; this only guards against drift from fractional ones.
        if (this.sumReq < 1e-9) this.sumReq = 0;
        if (this.sumTok < 1e-9) this.sumTok = 0;
      }
      this.last = s;
    }
    return Math.max(s, this.last);
  }
}

export interface FairShareOptions {
  /** Demand is measured over this long. Default 5 s: an idle tenant's share goes to others within it. */
  windowMs?: number;
  /** Slot of the demand window. Default 500 ms. */
  slotMs?: number;
  /** Shares are recomputed at least this often. Default 1 s. */
  recomputeEveryMs?: number;
  /** A tenant without a share triggers a recompute, at most this often (else it gets a provisional share). Default 50 ms. */
  minRecomputeMs?: number;
  /** Observed demand is scaled by this, so a tenant that grows is not held to its past rate. Default 1.25. */
  headroom?: number;
  /** Demand seen here times this is the demand on every instance (instances sharing a limit store). Default 1. */
  demandScale?: number;
  /** Most tenants tracked; beyond, the oldest is forgotten. Default 100,000. */
  maxTenants?: number;
}

interface TenantEntry {
  weight: number;
  rate: RecentRate;
}

/** Smallest share handed out, as a fraction of the capacity: a share is never 0 (a GCRA limit must be positive). */
export const MIN_SHARE_FRACTION = 1e-3;

/**
 * Demand and shares of one upstream. Not thread-safe by design (one event loop); every method takes
 * `now`. Memory: one small entry per tenant active in the window (bounded by `maxTenants`).
 */
export class FairShare {
  private readonly windowMs: number;
  private readonly slotMs: number;
  private readonly everyMs: number;
  private readonly minRecomputeMs: number;
  private readonly headroom: number;
  private readonly scale: number;
  private readonly maxTenants: number;
  private readonly tenants = new Map<string, TenantEntry>();
  private shares = new Map<string, Capacity>();
  private computedAt = Number.NEGATIVE_INFINITY;
  private computedFor: Capacity = {};
  private activeWeight = 0;

  constructor(opts: FairShareOptions = {}) {
    this.windowMs = opts.windowMs ?? 5000;
    this.slotMs = opts.slotMs ?? 500;
    this.everyMs = opts.recomputeEveryMs ?? 1000;
    this.minRecomputeMs = opts.minRecomputeMs ?? 50;
    this.headroom = opts.headroom ?? 1.25;
    this.scale = opts.demandScale ?? 1;
    this.maxTenants = opts.maxTenants ?? 100_000;
  }

  /** Records demand (negative amounts take back a demand that turned out not to be on this upstream). */
  demand(tenant: string, weight: number, requests: number, tokens: number, now: number): void {
    let e = this.tenants.get(tenant);
    if (!e) {
      if (requests <= 0 && tokens <= 0) return;
      if (this.tenants.size >= this.maxTenants) this.tenants.delete(this.tenants.keys().next().value!);
      e = { weight, rate: new RecentRate(this.windowMs, this.slotMs) };
      this.tenants.set(tenant, e);
    }
    e.weight = weight;
    e.rate.add(now, requests, tokens);
  }

  /**
   * The tenant's share of `capacity` now (same dimensions, each > 0). Recomputed every
   * `recomputeEveryMs`, when the capacity changed, or when a tenant without a share asks.
   */
  share(tenant: string, weight: number, capacity: Capacity, now: number): Capacity {
    const changed =
      capacity.requestsPerMinute !== this.computedFor.requestsPerMinute ||
      capacity.tokensPerMinute !== this.computedFor.tokensPerMinute;
    let s = this.shares.get(tenant);
    if (
      changed ||
      now - this.computedAt >= this.everyMs ||
      (!s && now - this.computedAt >= this.minRecomputeMs)
    ) {
      this.recompute(capacity, now);
      s = this.shares.get(tenant);
    }
    if (s) return s;
    // Not seen at the last recompute, and one happened just now: the share of a saturated newcomer.
    const w = weight > 0 ? weight : 1;
    const part = w / (this.activeWeight + w);
    const out: Capacity = {};
    if (capacity.requestsPerMinute !== undefined) out.requestsPerMinute = capacity.requestsPerMinute * part;
    if (capacity.tokensPerMinute !== undefined) out.tokensPerMinute = capacity.tokensPerMinute * part;
    return out;
  }

  /** Tenants with demand in the window (for tests and metrics). */
  activeTenants(now: number): string[] {
    return [...this.tenants].filter(([, e]) => e.rate.active(now)).map(([id]) => id);
  }

  private recompute(capacity: Capacity, now: number): void {
    const reqs: TenantDemand[] = [];
    const toks: TenantDemand[] = [];
    let weight = 0;
    for (const [id, e] of this.tenants) {
      if (!e.rate.active(now)) {
        this.tenants.delete(id);
        continue;
      }
      const [r, t] = e.rate.perMinute(now);
      const k = this.headroom * this.scale;
      reqs.push({ id, weight: e.weight, demand: r * k });
      toks.push({ id, weight: e.weight, demand: t * k });
      weight += e.weight;
    }
    const shares = new Map<string, Capacity>();
    const fill = (cap: number | undefined, list: TenantDemand[], key: keyof Capacity) => {
      if (cap === undefined) return;
      const floor = cap * MIN_SHARE_FRACTION;
      for (const [id, v] of shareLimits(cap, list)) {
        const s = shares.get(id) ?? {};
        s[key] = Math.max(floor, v);
        shares.set(id, s);
      }
    };
    fill(capacity.requestsPerMinute, reqs, 'requestsPerMinute');
    fill(capacity.tokensPerMinute, toks, 'tokensPerMinute');
    this.shares = shares;
    this.activeWeight = weight;
    this.computedAt = now;
    this.computedFor = { ...capacity };
  }
}
