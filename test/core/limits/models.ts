/**
 * Reference models for the property tests, written differently from the code under test:
 *  - rate: a token bucket (capacity N + B, refilled at N per W) in exact scaled integers, instead of
 *    GCRA's theoretical arrival time;
 *  - window: a list of booked records (time, slot, amount) summed on demand, instead of slot counters;
 *  - lease: a plain map of lease expiries.
 * Each model also records what it charged and when, so tests can check the accuracy bounds directly.
 */
import type { LimitBucket } from '../../../src/core/ports.js';

export interface ModelDecision {
  ok: boolean;
  retryAfterMs: number;
}

export interface BucketModel {
  check(cost: number, rid: string, now: number): ModelDecision;
  charge(cost: number, rid: string, now: number): void;
  /** `delta` = actual − reserved; `rid` names the reservation whose booking it corrects. */
  settle(delta: number, rid: string, now: number): void;
  release(rid: string, now: number): void;
  remaining(now: number): number;
}

/** Token bucket: tokens·W kept as an integer; refills N per ms; capped at (N + B)·W. */
export class TokenBucketModel implements BucketModel {
  private scaled: number;
  private last: number;
  /** Every charge (reserve +c, settle ±Δ) with its time, for the interval bound. */
  readonly charges: { t: number; amount: number }[] = [];
  /** Index in `charges` of each admission that charged something (order matters: a settle at the
   * same millisecond but after an admission is not bounded by it). */
  readonly admissions: number[] = [];

  constructor(
    readonly n: number,
    readonly b: number,
    readonly w: number,
    now: number,
  ) {
    this.scaled = (n + b) * w;
    this.last = now;
  }

  private refill(now: number): void {
    this.scaled = Math.min((this.n + this.b) * this.w, this.scaled + (now - this.last) * this.n);
    this.last = now;
  }

  check(cost: number, _rid: string, now: number): ModelDecision {
    this.refill(now);
    if (cost <= 0 || this.scaled >= cost * this.w) return { ok: true, retryAfterMs: 0 };
    if (cost > this.n + this.b) return { ok: false, retryAfterMs: Number.POSITIVE_INFINITY };
    return { ok: false, retryAfterMs: Math.ceil((cost * this.w - this.scaled) / this.n) };
  }

  charge(cost: number, _rid: string, now: number): void {
    this.refill(now);
    if (cost <= 0) return;
    this.scaled -= cost * this.w;
    this.admissions.push(this.charges.length);
    this.charges.push({ t: now, amount: cost });
  }

  settle(delta: number, _rid: string, now: number): void {
    this.refill(now);
    if (delta === 0) return;
    this.scaled = Math.min((this.n + this.b) * this.w, this.scaled - delta * this.w);
    this.charges.push({ t: now, amount: delta });
  }

  release(): void {}

  remaining(now: number): number {
    this.refill(now);
    return Math.max(0, Math.floor(this.scaled / this.w));
  }
}

/** Booked records, counted while the newest booking of their slot is within the window. */
export class WindowModel implements BucketModel {
  readonly k = 60;
  readonly g: number;
  readonly records: { t: number; slot: number; amount: number; rid: string | null }[] = [];
  /**
   * At each admission: usage booked in (t − W, t] as it stood then (must stay ≤ limit). Open at
   * t − W: usage leaves at its slot's newest booking + W, so a booking made exactly W before has
   * left (the closed interval counted it, and failed one run in a few hundred: a reserve exactly one
   * window after another).
   */
  readonly windowTotalsAtAdmission: number[] = [];

  constructor(
    readonly limit: number,
    readonly w: number,
  ) {
    this.g = Math.ceil(w / this.k);
  }

  private slot(t: number): number {
    return Math.floor(t / this.g);
  }

  /** When a slot's usage leaves: its newest booking + W. */
  private leavesAt(slot: number): number {
    let last = Number.NEGATIVE_INFINITY;
    for (const r of this.records) if (r.slot === slot && r.t > last) last = r.t;
    return last + this.w;
  }

  private usedAt(t: number): number {
    let s = 0;
    for (const r of this.records) if (this.leavesAt(r.slot) > t) s += r.amount;
    return s;
  }

  check(cost: number, _rid: string, now: number): ModelDecision {
    const used = this.usedAt(now);
    if (cost <= 0 || used + cost <= this.limit) return { ok: true, retryAfterMs: 0 };
    if (cost > this.limit) return { ok: false, retryAfterMs: Number.POSITIVE_INFINITY };
    // The first instant a slot leaves at which the cost fits.
    const slots = [...new Set(this.records.filter((r) => r.amount > 0).map((r) => r.slot))].sort(
      (a, b) => a - b,
    );
    for (const j of slots) {
      const at = this.leavesAt(j);
      if (at <= now) continue;
      if (this.usedAt(at) + cost <= this.limit) return { ok: false, retryAfterMs: at - now };
    }
    throw new Error('window model: no instant fits');
  }

  charge(cost: number, rid: string, now: number): void {
    if (cost <= 0) return;
    this.records.push({ t: now, slot: this.slot(now), amount: cost, rid });
    let inWindow = 0;
    for (const r of this.records) if (r.t > now - this.w && r.t <= now) inWindow += r.amount;
    this.windowTotalsAtAdmission.push(inWindow);
  }

  settle(delta: number, rid: string, now: number): void {
    if (delta > 0) {
      this.records.push({ t: now, slot: this.slot(now), amount: delta, rid: null });
      return;
    }
    const rec = this.records.find((r) => r.rid === rid);
    if (!rec || delta === 0 || this.leavesAt(rec.slot) <= now) return;
    rec.amount -= Math.min(rec.amount, -delta);
  }

  release(): void {}

  remaining(now: number): number {
    return Math.max(0, this.limit - this.usedAt(now));
  }
}

export class LeaseModel implements BucketModel {
  readonly leases = new Map<string, number>();
  /** Live leases after every operation (must stay ≤ cap). */
  readonly liveCounts: number[] = [];

  constructor(
    readonly cap: number,
    readonly ttl: number,
  ) {}

  private prune(now: number): void {
    for (const [id, exp] of this.leases) if (exp <= now) this.leases.delete(id);
  }

  check(cost: number, rid: string, now: number): ModelDecision {
    this.prune(now);
    if (cost <= 0 || this.leases.has(rid) || this.leases.size < this.cap)
      return { ok: true, retryAfterMs: 0 };
    // The wait is unknowable (it depends on when a request ends); the documented hint is the time
    // until the oldest lease would expire, at most 1 s.
    const first = Math.min(...this.leases.values());
    return { ok: false, retryAfterMs: Math.min(1000, Math.max(1, first - now)) };
  }

  charge(cost: number, rid: string, now: number): void {
    if (cost <= 0) return;
    this.leases.set(rid, now + this.ttl);
    this.liveCounts.push(this.leases.size);
  }

  settle(): void {}

  release(rid: string, now: number): void {
    this.leases.delete(rid);
    this.prune(now);
    this.liveCounts.push(this.leases.size);
  }

  remaining(now: number): number {
    this.prune(now);
    return Math.max(0, this.cap - this.leases.size);
  }
}

export function modelFor(b: LimitBucket, now: number): BucketModel {
  switch (b.algorithm) {
    case 'gcra':
      return new TokenBucketModel(b.limit, b.burst, b.windowMs, now);
    case 'window':
      return new WindowModel(b.limit, b.windowMs);
    case 'lease':
      return new LeaseModel(b.limit, b.windowMs);
  }
}
