/**
 * Admission around the limit store: the upstream's capacity and the tenant's fair share of it added
 * to the request's reserve, waiting in a priority queue instead of refusing, and the upstream's
 * answers fed back into the capacity handed out.
 *
 *  - Capacity and fair share (`upstreams[].capacity`): two GCRA buckets per capacity dimension join
 *    the request's own buckets in its ONE reserve (all or none): `upstream:<name>` (everyone on that
 *    upstream; key `{u:<name>}:upstream:g:<r|t>`) at the capacity, and `fair-share:<name>` (the
 *    tenant; key `{t:<tenant>}:fair-share:<name>:g:<r|t>`) at the tenant's share, computed by
 *    weighted water-filling over recent demand (`src/core/limits/fair-share.ts`). The token
 *    dimensions add `:tokens` to the ids. Each bucket holds about `burstMs` of its rate, so neither
 *    the upstream nor a share is handed out in bursts; a request larger than that is still admitted
 *    once its bucket has drained (its burst is raised to its cost).
 *  - Feedback (`src/core/limits/feedback.ts`): an upstream 429, or its remaining allowance below 5%,
 *    cuts the capacity handed out for it; quiet time restores it step by step. An upstream with no
 *    declared capacity gets one derived from the rate admitted to it when the first 429 arrives.
 *  - Queue (tier `queue.maxWait`): a denied request whose exact retry time still falls within its
 *    tier's maxWait (counted from its first attempt) waits and tries again, instead of a 429. Waiting
 *    requests are served in priority order: higher tier weight first, first come first served within
 *    a weight; among requests held by the same bucket, the first to fail holds back the rest until
 *    its new retry time (no thundering herd). At most `maxWaiters` wait; a client that goes away
 *    leaves the queue. Requests arriving meanwhile try at once (they are not ordered behind waiters).
 *
 * Demand is local to this instance (scaled by `demandScale`); the buckets live in the limit store, so
 * with Redis the upstream's capacity is shared by every instance.
 */
import { type Capacity, FairShare, type FairShareOptions } from '../core/limits/fair-share.js';
import { type FeedbackEvent, type FeedbackOptions, UpstreamFeedback } from '../core/limits/feedback.js';
import { keyPart } from '../core/limits/plan.js';
import {
  type BucketState,
  type Clock,
  type CostKind,
  type LimitBucket,
  type LimitStore,
  type Reservation,
  type ReserveResult,
  systemClock,
} from '../core/ports.js';

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

/** Timer functions (tests pass a fake scheduler). */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

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

interface Planned {
  buckets: LimitBucket[];
  costs: number[];
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

/** GCRA bucket for `perMinute` units holding about `burstMs` of them; a cost above that raises its burst. */
function rateBucket(
  id: string,
  key: string,
  kind: CostKind,
  per: string,
  perMinute: number,
  burstMs: number,
  cost: number,
): LimitBucket {
  const depth = Math.max(1, Math.round((perMinute * burstMs) / 60_000));
  return {
    id,
    key,
    kind,
    algorithm: 'gcra',
    limit: depth,
    burst: Math.max(0, Math.ceil(cost) - depth),
    windowMs: Math.max(1, Math.round((depth * 60_000) / perMinute)),
    shadow: false,
    per,
  };
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
  private readonly heap: Waiter[] = [];
  private live = 0;
  private seq = 0;
  private timer: unknown = null;
  private timerAt = Number.POSITIVE_INFINITY;
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
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    for (const w of this.heap.splice(0)) if (!w.done) this.finish(w, this.denied(w));
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
    const own = req.buckets as LimitBucket[];
    const costs = req.costs as number[];
    if (!cap) return { buckets: own, costs };
    const share = up.fair.share(req.tenantId, req.weight, cap, now);
    const buckets = own.slice();
    const out = costs.slice(0, own.length);
    const u = keyPart(req.upstream);
    const t = keyPart(req.tenantId);
    const add = (dim: 'r' | 't', total: number | undefined, mine: number | undefined) => {
      if (total === undefined || !(total > 0)) return;
      const kind: CostKind = dim === 'r' ? 'requests' : 'tokens';
      const cost = dim === 'r' ? 1 : req.tokens;
      const suffix = dim === 'r' ? '' : ':tokens';
      buckets.push(
        rateBucket(
          `upstream:${req.upstream}${suffix}`,
          `{u:${u}}:upstream:g:${dim}`,
          kind,
          'upstream',
          total,
          this.burstMs,
          cost,
        ),
      );
      out.push(cost);
      if (mine !== undefined && mine > 0) {
        buckets.push(
          rateBucket(
            `fair-share:${req.upstream}${suffix}`,
            `{t:${t}}:fair-share:${u}:g:${dim}`,
            kind,
            'tenant',
            Math.min(total, mine),
            this.burstMs,
            cost,
          ),
        );
        out.push(cost);
      }
    };
    add('r', cap.requestsPerMinute, share.requestsPerMinute);
    add('t', cap.tokensPerMinute, share.tokensPerMinute);
    return { buckets, costs: out };
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

  private fire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    const due: Waiter[] = [];
    while (this.heap.length > 0 && this.heap[0]!.wakeAt <= now) {
      const w = this.pop()!;
      if (!w.done) due.push(w);
    }
    due.sort((a, b) => b.req.weight - a.req.weight || a.seq - b.seq);
    const groups = new Map<string, Waiter[]>();
    for (const w of due) {
      const g = groups.get(w.blockKey);
      if (g) g.push(w);
      else groups.set(w.blockKey, [w]);
    }
    for (const [key, g] of groups) void this.runGroup(key, g);
    this.arm();
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

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0]!.done) this.pop();
    const top = this.heap[0];
    if (!top) {
      if (this.timer !== null) this.timers.clear(this.timer);
      this.timer = null;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timer !== null && this.timerAt <= top.wakeAt) return;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timerAt = top.wakeAt;
    this.timer = this.timers.set(() => this.fire(), Math.max(1, top.wakeAt - this.clock.now()));
  }

  // Binary min-heap on wakeAt (a helper beside its only user).
  private push(w: Waiter): void {
    if (this.closed) {
      this.finish(w, this.denied(w));
      return;
    }
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.wakeAt <= w.wakeAt) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = w;
    this.arm();
  }

  private pop(): Waiter | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mv = last.wakeAt;
        if (l < h.length && h[l]!.wakeAt < mv) {
          m = l;
          mv = h[l]!.wakeAt;
        }
        if (r < h.length && h[r]!.wakeAt < mv) m = r;
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}
