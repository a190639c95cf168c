/**
 * Admission around the limit store: the upstream's capacity and the tenant's fair share of it added
 * to the request's reserve, waiting in a priority queue instead of refusing, and the upstream's
 * answers fed back into the capacity handed out.
 *
 *  - Capacity and fair share (`upstreams[].capacity`): two GCRA buckets per capacity dimension join
 *    the request's own buckets in its ONE reserve (all or none), planned by the pure
 *    `src/core/limits/capacity.ts` at the capacity and at the tenant's share, computed by weighted
 *    water-filling over recent demand (`src/core/limits/fair-share.ts`).
 *  - Feedback (`src/core/limits/feedback.ts`): an upstream 429, or its remaining allowance below 5%,
 *    cuts the capacity handed out for it; quiet time restores it step by step. An upstream with no
 *    declared capacity gets one derived from the rate admitted to it when the first 429 arrives.
 *  - Queue (tier `queue.maxWait`): a denied request whose exact retry time still falls within its
 *    tier's maxWait (counted from its first attempt) waits and tries again, instead of a 429. Waiting
 *    requests are served in priority order: higher tier weight first, first come first served within
 *    a weight; among requests held by the same bucket, the first to fail holds back the rest until
 *    its new retry time (no thundering herd). At most `maxWaiters` wait; a client that goes away
 *    leaves the queue (timing and heap: `wait-queue.ts`). Requests arriving meanwhile try at once (they are not ordered behind waiters).
 *
 * Demand is local to this instance (scaled by `demandScale`); the buckets live in the limit store, so
 * with Redis the upstream's capacity is shared by every instance.
 */

import { type PlannedBuckets as Planned, planCapacity } from '../core/limits/capacity.js';
import { type Capacity, FairShare, type FairShareOptions } from '../core/limits/fair-share.js';
import { type FeedbackEvent, type FeedbackOptions, UpstreamFeedback } from '../core/limits/feedback.js';
import {
  type BucketState,
  type Clock,
  type LimitBucket,
  type LimitStore,
  type Reservation,
  type ReserveResult,
  systemClock,
} from '../core/ports.js';
import { realTimers, type Timers, WaitQueue } from './wait-queue.js';

export type { Timers };

/** A denied reserve (the store's deny value). */
export type DeniedReserve = Extract<ReserveResult, { ok: false }>;

export interface AdmissionRequest {
  /** The request's own buckets and costs (from the limit plan); never mutated. */
  buckets: readonly LimitBucket[];
  costs: readonly number[];
  requestId: string;
  tenantId: string;
  /** Tier weight: priority in the queue and share of an upstream. */
  weight: number;
  /** The tier's `queue.maxWait`; undefined or 0: a denied request is refused at once. */
  maxWaitMs?: number;
  /** Name of the upstream the request goes to. */
  upstream: string;
  /** The upstream's declared `capacity`, if any. */
  capacity?: Capacity;
  /** Estimated tokens (input + output): the request's cost against token capacity. */
  tokens: number;
  /** Aborted when the client goes away: a waiting request leaves the queue. */
  signal?: AbortSignal;
}

/**
 * The outcome of `admit`. `buckets`/`costs` are what was reserved (or checked): the request's own,
 * in order, followed by any capacity buckets; settle and release the reservation with them.
 */
export type AdmissionResult =
  | {
      ok: true;
      /** Undefined when no bucket applied (nothing to settle). */
      reservation: Reservation | undefined;
      buckets: LimitBucket[];
      costs: number[];
      states: BucketState[];
      waitedMs: number;
      /** Shadow limits this request would have been refused by (never enforced). */
      shadowDenied?: string[];
    }
  | {
      ok: false;
      aborted: false;
      denial: DeniedReserve;
      buckets: LimitBucket[];
      costs: number[];
      waitedMs: number;
    }
  | { ok: false; aborted: true; waitedMs: number };

export interface AdmissionOptions {
  store: LimitStore;
  clock?: Clock;
  timers?: Timers;
  /** Most requests waiting at once; beyond, a request that would wait is refused. Default 10,000. */
  maxWaiters?: number;
  /** How much of its rate a capacity or share bucket holds. Default 1000 ms. */
  burstMs?: number;
  /** A request held by a concurrency limit polls this often (a slot frees whenever a request ends). Default 50 ms. */
  concurrencyPollMs?: number;
  /** Local demand × this ≈ demand on all instances (limits.expectedInstances with a shared store). Default 1. */
  demandScale?: number;
  fairShare?: FairShareOptions;
  feedback?: FeedbackOptions;
  /** Called when an upstream's answer changed its capacity. */
  onFeedback?: (upstream: string, e: FeedbackEvent) => void;
  /** Aborted on a forced shutdown: every waiting request is refused at once. */
  shutdown?: AbortSignal;
}

export interface AdmissionStats {
  waiting: number;
  /** Requests that waited, by outcome. */
  queued: number;
  admittedAfterWait: number;
  refusedAfterWait: number;
  aborted: number;
  /** Requests refused without waiting because the queue was full. */
  overflow: number;
}

interface UpstreamState {
  fair: FairShare;
  feedback: UpstreamFeedback;
}

interface Waiter {
  req: AdmissionRequest;
  seq: number;
  startedAt: number;
  deadline: number;
  wakeAt: number;
  /** Storage key of the bucket that held it last. */
  blockKey: string;
  last: DeniedReserve;
  lastPlan: Planned;
  /** Whether its demand was recorded on its upstream's fair share. */
  demanded: boolean;
  done: boolean;
  resolve: (r: AdmissionResult) => void;
  reject: (err: unknown) => void;
  onAbort?: () => void;
}

export class Admission {
  private readonly store: LimitStore;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly maxWaiters: number;
  private readonly burstMs: number;
  private readonly pollMs: number;
  private readonly fairOpts: FairShareOptions;
  private readonly feedbackOpts: FeedbackOptions;
  private readonly onFeedback?: (upstream: string, e: FeedbackEvent) => void;
  private readonly upstreams = new Map<string, UpstreamState>();
  private readonly queue: WaitQueue<Waiter>;
  private live = 0;
  private seq = 0;
  private closed = false;
  private readonly counters = {
    queued: 0,
    admittedAfterWait: 0,
    refusedAfterWait: 0,
    aborted: 0,
    overflow: 0,
  };

  constructor(opts: AdmissionOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? realTimers;
    this.maxWaiters = opts.maxWaiters ?? 10_000;
    this.burstMs = opts.burstMs ?? 1000;
    this.pollMs = opts.concurrencyPollMs ?? 50;
    this.fairOpts = { ...opts.fairShare, demandScale: opts.fairShare?.demandScale ?? opts.demandScale };
    this.feedbackOpts = opts.feedback ?? {};
    this.onFeedback = opts.onFeedback;
    this.queue = new WaitQueue<Waiter>(
      this.timers,
      () => this.clock.now(),
      (due) => this.runDue(due),
    );
    if (opts.shutdown) {
      if (opts.shutdown.aborted) this.closed = true;
      else opts.shutdown.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /**
   * Reserves the request's buckets plus its upstream's capacity buckets, in one store call; when
   * denied and its tier may wait, waits (see the module comment). A deny is a value; store
   * failures reject (the caller answers as for any store failure).
   */
  async admit(req: AdmissionRequest): Promise<AdmissionResult> {
    const now = this.clock.now();
    const up = this.upstream(req.upstream);
    const cap = up.feedback.capacity(req.capacity, now);
    let demanded = false;
    if (cap) {
      up.fair.demand(req.tenantId, req.weight, 1, req.tokens, now);
      demanded = true;
    }
    const plan = this.plan(req, up, cap, now);
    if (plan.buckets.length === 0) {
      up.feedback.admitted(1, req.tokens, now);
      return {
        ok: true,
        reservation: undefined,
        buckets: plan.buckets,
        costs: plan.costs,
        states: [],
        waitedMs: 0,
      };
    }
    const r = await this.store.reserve({
      buckets: plan.buckets,
      costs: plan.costs,
      requestId: req.requestId,
    });
    if (r.ok) {
      up.feedback.admitted(1, req.tokens, this.clock.now());
      return {
        ok: true,
        reservation: r.reservation,
        ...plan,
        states: r.states,
        waitedMs: 0,
        shadowDenied: r.shadowDenied,
      };
    }
    // Held by one of the caller's own limits: that is no demand on the upstream (yet).
    if (demanded && r.bucketIndex < req.buckets.length) {
      up.fair.demand(req.tenantId, req.weight, -1, -req.tokens, now);
      demanded = false;
    }
    const at = this.clock.now();
    if (!this.mayWait(req, r, now, at)) return { ok: false, aborted: false, denial: r, ...plan, waitedMs: 0 };
    if (this.live >= this.maxWaiters) {
      this.counters.overflow++;
      return { ok: false, aborted: false, denial: r, ...plan, waitedMs: 0 };
    }
    return this.enqueue(req, r, plan, now, at, demanded);
  }

  /**
   * An upstream's answer to a request admitted at `admittedAt`: a 429 or low remaining headers cut
   * the capacity handed out for it. Returns what changed, or null.
   */
  observe(
    upstream: string,
    declared: Capacity | undefined,
    res: { status: number; rateHeaders: Readonly<Record<string, string>> },
    admittedAt: number,
  ): FeedbackEvent | null {
    const e = this.upstream(upstream).feedback.response(
      res.status,
      res.rateHeaders,
      admittedAt,
      declared,
      this.clock.now(),
    );
    if (e) this.onFeedback?.(upstream, e);
    return e;
  }

  /** The capacity handed out for an upstream now (declared or derived, after feedback); undefined: unlimited. */
  capacity(upstream: string, declared: Capacity | undefined): Capacity | undefined {
    return this.upstream(upstream).feedback.capacity(declared, this.clock.now());
  }

  /** Requests waiting now. */
  waiting(): number {
    return this.live;
  }

  stats(): AdmissionStats {
    return { waiting: this.live, ...this.counters };
  }

  /** Refuses every waiting request now (with its last denial) and refuses to queue more. */
  close(): void {
    this.closed = true;
    for (const w of this.queue.drain()) if (!w.done) this.finish(w, this.denied(w));
  }

  private upstream(name: string): UpstreamState {
    let s = this.upstreams.get(name);
    if (!s) {
      s = { fair: new FairShare(this.fairOpts), feedback: new UpstreamFeedback(this.feedbackOpts) };
      this.upstreams.set(name, s);
    }
    return s;
  }

  /** The request's own buckets, then the capacity and share buckets of its upstream. */
  private plan(req: AdmissionRequest, up: UpstreamState, cap: Capacity | undefined, now: number): Planned {
    if (!cap) return { buckets: req.buckets as LimitBucket[], costs: req.costs as number[] };
    return planCapacity(req, cap, up.fair.share(req.tenantId, req.weight, cap, now), this.burstMs);
  }

  private mayWait(req: AdmissionRequest, r: DeniedReserve, startedAt: number, now: number): boolean {
    if (this.closed || req.signal?.aborted) return false;
    const max = req.maxWaitMs;
    if (max === undefined || !(max > 0)) return false;
    if ((r as { storeUnavailable?: boolean }).storeUnavailable) return false;
    return Number.isFinite(r.retryAfterMs) && now + this.delayOf(r) <= startedAt + max;
  }

  /** When to try again after a denial: its exact retry time; a concurrency limit is polled. */
  private delayOf(r: DeniedReserve): number {
    const kind = r.states[r.bucketIndex]?.kind;
    const d = kind === 'concurrent' ? Math.min(r.retryAfterMs, this.pollMs) : r.retryAfterMs;
    return Math.max(1, Math.ceil(d));
  }

  private enqueue(
    req: AdmissionRequest,
    r: DeniedReserve,
    plan: Planned,
    startedAt: number,
    now: number,
    demanded: boolean,
  ): Promise<AdmissionResult> {
    this.counters.queued++;
    return new Promise<AdmissionResult>((resolve, reject) => {
      const w: Waiter = {
        req,
        seq: this.seq++,
        startedAt,
        deadline: startedAt + req.maxWaitMs!,
        wakeAt: now + this.delayOf(r),
        blockKey: plan.buckets[r.bucketIndex]?.key ?? '',
        last: r,
        lastPlan: plan,
        demanded,
        done: false,
        resolve,
        reject,
      };
      this.live++;
      if (req.signal) {
        w.onAbort = () => {
          if (w.done) return;
          this.counters.aborted++;
          this.finish(w, { ok: false, aborted: true, waitedMs: this.clock.now() - w.startedAt });
        };
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.push(w);
    });
  }

  private finish(w: Waiter, result: AdmissionResult | { error: unknown }): void {
    if (w.done) return;
    w.done = true;
    this.live--;
    if (w.onAbort) w.req.signal?.removeEventListener('abort', w.onAbort);
    if ('error' in result) w.reject(result.error);
    else w.resolve(result);
  }

  private denied(w: Waiter): AdmissionResult {
    this.counters.refusedAfterWait++;
    return {
      ok: false,
      aborted: false,
      denial: w.last,
      ...w.lastPlan,
      waitedMs: this.clock.now() - w.startedAt,
    };
  }

  // ------------------------------------------------------------------ the queue

  /** Waiters due: highest weight first, first come first served; grouped by the bucket that held them. */
  private runDue(due: Waiter[]): void {
    due.sort((a, b) => b.req.weight - a.req.weight || a.seq - b.seq);
    const groups = new Map<string, Waiter[]>();
    for (const w of due) {
      const g = groups.get(w.blockKey);
      if (g) g.push(w);
      else groups.set(w.blockKey, [w]);
    }
    for (const [key, g] of groups) void this.runGroup(key, g);
  }

  /** Waiters held by one bucket, in priority order: once one is refused, the rest wait for its new time. */
  private async runGroup(key: string, group: Waiter[]): Promise<void> {
    let blockedUntil = Number.NEGATIVE_INFINITY;
    for (const w of group) {
      if (w.done) continue;
      if (blockedUntil > this.clock.now() && blockedUntil <= w.deadline) {
        w.wakeAt = blockedUntil;
        this.push(w);
        continue;
      }
      const next = await this.attempt(w);
      if (next !== null && w.blockKey === key) blockedUntil = next;
    }
  }

  /** One retry; returns the waiter's next wake time when it keeps waiting, else null. */
  private async attempt(w: Waiter): Promise<number | null> {
    const { req } = w;
    const up = this.upstream(req.upstream);
    const now = this.clock.now();
    const cap = up.feedback.capacity(req.capacity, now);
    const plan = this.plan(req, up, cap, now);
    let r: ReserveResult;
    try {
      r = await this.store.reserve({ buckets: plan.buckets, costs: plan.costs, requestId: req.requestId });
    } catch (err) {
      this.finish(w, { error: err });
      return null;
    }
    const at = this.clock.now();
    if (r.ok) {
      if (w.done) {
        // The client left (or shutdown refused it) while the store answered: give it all back.
        void this.giveBack(r.reservation);
        return null;
      }
      if (!w.demanded && cap) up.fair.demand(req.tenantId, req.weight, 1, req.tokens, at);
      up.feedback.admitted(1, req.tokens, at);
      this.counters.admittedAfterWait++;
      this.finish(w, {
        ok: true,
        reservation: r.reservation,
        ...plan,
        states: r.states,
        waitedMs: at - w.startedAt,
        shadowDenied: r.shadowDenied,
      });
      return null;
    }
    if (w.done) return null;
    w.last = r;
    w.lastPlan = plan;
    if (!this.mayWait(req, r, w.startedAt, at)) {
      this.finish(w, this.denied(w));
      return null;
    }
    w.wakeAt = at + this.delayOf(r);
    w.blockKey = plan.buckets[r.bucketIndex]?.key ?? '';
    this.push(w);
    return w.wakeAt;
  }

  private async giveBack(reservation: Reservation): Promise<void> {
    try {
      await this.store.settle(
        reservation,
        reservation.costs.map(() => 0),
      );
    } catch {}
    try {
      await this.store.release(reservation);
    } catch {}
  }

  private push(w: Waiter): void {
    if (this.closed) this.finish(w, this.denied(w));
    else this.queue.push(w);
  }
}
