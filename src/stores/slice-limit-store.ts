/**
 * Hot-key slices (Doorman / Envoy RLQS style, issue 18): an instance reserves a slice of `slice`
 * requests of a busy key's allowance in one round trip to the shared store, then admits from it
 * locally until it is spent or its TTL passes; the unused part is refunded to the shared store when
 * the slice is retired. Round trips per request on a hot key fall to about 2 / slice (one reserve,
 * one refund).
 *
 * Only requests whose every bucket opts in (`slice` > 0 on a non-shadow, requests-counting GCRA
 * limit) are served from slices; every other request goes to the inner store unchanged, so with no
 * limit opting in (the default) this store only forwards.
 *
 * The guarantee. The shared store charges a slice before any of it is used, and exactly, so at any
 * instant the total charged is within the limit. A unit is used at most `ttlMs` after its slice was
 * charged, so in any window a used unit was either charged in that window or belongs to a slice
 * outstanding when the window began. Over-admission in any window is therefore at most
 * **instances × slice** requests (each instance holds at most one slice per key), and 0 when all
 * requests arrive together (a slice the shared store cannot grant in full falls back to an exact
 * one-request reservation). The price on the other side: units held in another instance's slice are
 * refused here until that slice is spent or retired (at most `ttlMs`).
 */
import type {
  BucketState,
  Clock,
  LimitBucket,
  LimitStore,
  Reservation,
  ReserveInput,
  ReserveResult,
} from '../core/ports.js';
import { systemClock } from '../core/ports.js';

/** 1 s: long enough to serve a hot key many times, short enough that held units come back soon. */
export const SLICE_TTL_MS = 1000;

export interface SliceLimitStoreOptions {
  inner: LimitStore;
  clock?: Clock;
  /** How long a slice may be used before its unused part is refunded. Default {@link SLICE_TTL_MS}. */
  ttlMs?: number;
  /** Prefix of the request ids under which slices are reserved (unique per instance). */
  instanceId?: string;
  /** Retire expired slices on a timer every TTL (default true; tests drive `sweep()` instead). */
  timer?: boolean;
}

interface Slice {
  size: number;
  left: number;
  expires: number;
  /** The shared store's reservation of the whole slice (settled with the used amount at retirement). */
  reservation: Reservation;
  states: BucketState[];
  /** Set while the slice is being reserved: concurrent requests for the key wait for it. */
  pending?: Promise<void>;
}

interface SliceMeta {
  sliceOf: string;
  reservation: Reservation;
  done?: 1;
}

function sliceable(b: LimitBucket, cost: number): boolean {
  return (b.slice ?? 0) > 1 && b.kind === 'requests' && b.algorithm === 'gcra' && !b.shadow && cost === 1;
}

export class SliceLimitStore implements LimitStore {
  private readonly inner: LimitStore;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly slices = new Map<string, Slice>();
  /**
   * A key whose slice and whose single request were both refused: refused here, without a round
   * trip, until the shared store said one request would fit (never admits: errs on refusing).
   */
  private readonly denied = new Map<string, { until: number; result: ReserveResult }>();
  private readonly timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private lastSweep = 0;
  /** Reservations sent to the inner store (whole requests and slices) and requests served locally. */
  private counts = { innerReserves: 0, local: 0 };

  constructor(opts: SliceLimitStoreOptions) {
    this.inner = opts.inner;
    this.clock = opts.clock ?? systemClock;
    this.ttlMs = opts.ttlMs ?? SLICE_TTL_MS;
    this.prefix = `slice:${opts.instanceId ?? Math.random().toString(36).slice(2, 10)}`;
    if (opts.timer !== false) {
      this.timer = setInterval(() => this.sweep(this.clock.now()), this.ttlMs);
      this.timer.unref();
    }
  }

  stats(): { innerReserves: number; local: number; slices: number } {
    return { ...this.counts, slices: this.slices.size };
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    const { buckets, costs } = input;
    const now = this.clock.now();
    if (now - this.lastSweep >= this.ttlMs) this.sweep(now);
    if (buckets.length === 0 || !buckets.every((b, i) => sliceable(b, costs[i] ?? 0)))
      return this.direct(input);
    const key = buckets.map((b) => `${b.key}\u0000${b.limit}\u0000${b.windowMs}`).join('\u0001');
    for (;;) {
      const s = this.slices.get(key);
      if (s?.pending) {
        await s.pending;
        continue;
      }
      const t = this.clock.now();
      const d = this.denied.get(key);
      if (d) {
        if (d.until > t && !d.result.ok) {
          this.counts.local++;
          return { ...d.result, retryAfterMs: d.until - t };
        }
        this.denied.delete(key);
      }
      if (s && s.expires > t && s.left >= 1) {
        s.left--;
        this.counts.local++;
        const meta: SliceMeta = { sliceOf: key, reservation: s.reservation };
        return {
          ok: true,
          reservation: { requestId: input.requestId, buckets, costs: costs.slice(0, buckets.length), meta },
          states: s.states.map((st) => ({ ...st, remaining: st.remaining + s.left })),
          shadowDenied: [],
        };
      }
      if (s) this.retire(key, s);
      const size = Math.min(...buckets.map((b) => b.slice!));
      const r = await this.acquire(key, input, size, t);
      if (r) return r;
    }
  }

  /**
   * Reserves a new slice (resolves undefined: take from it). When the shared store cannot grant a full
   * slice, this request takes the exact one-request path instead (its result is returned), and a
   * refusal is remembered until it expires; other requests for the key wait meanwhile.
   */
  private acquire(
    key: string,
    input: ReserveInput,
    size: number,
    now: number,
  ): Promise<ReserveResult | undefined> {
    const { buckets } = input;
    const slice: Slice = {
      size,
      left: 0,
      expires: now + this.ttlMs,
      reservation: { requestId: '', buckets, costs: [] },
      states: [],
    };
    let done!: () => void;
    slice.pending = new Promise<void>((r) => {
      done = r;
    });
    this.slices.set(key, slice);
    this.counts.innerReserves++;
    const requestId = `${this.prefix}:${++this.seq}`;
    return this.inner
      .reserve({ buckets, costs: buckets.map(() => size), requestId })
      .then(
        async (r) => {
          if (!r.ok) {
            const one = await this.direct(input);
            this.slices.delete(key);
            if (!one.ok && Number.isFinite(one.retryAfterMs))
              this.denied.set(key, { until: this.clock.now() + one.retryAfterMs, result: one });
            return one;
          }
          slice.reservation = r.reservation;
          slice.states = r.states;
          slice.left = size;
          slice.expires = this.clock.now() + this.ttlMs;
          return undefined;
        },
        (err) => {
          this.slices.delete(key);
          throw err;
        },
      )
      .finally(() => {
        slice.pending = undefined;
        done();
      });
  }

  /** Ends a slice: the shared store keeps what was used and gets the rest back. */
  private retire(key: string, s: Slice): void {
    if (this.slices.get(key) === s) this.slices.delete(key);
    const used = s.size - s.left;
    s.left = 0;
    if (used < s.size)
      this.inner
        .settle(
          s.reservation,
          s.reservation.buckets.map(() => used),
        )
        .catch(() => {}); // a refund lost errs on refusing: the units stay counted until the bucket refills
  }

  /** Retires every expired slice (and forgets expired refusals), so idle keys give their units back. */
  sweep(now = this.clock.now()): void {
    this.lastSweep = now;
    for (const [key, s] of this.slices) if (!s.pending && s.expires <= now) this.retire(key, s);
    for (const [key, d] of this.denied) if (d.until <= now) this.denied.delete(key);
  }

  private direct(input: ReserveInput): Promise<ReserveResult> {
    this.counts.innerReserves++;
    return this.inner.reserve(input);
  }

  async settle(reservation: Reservation, actualCosts: number[]): Promise<void> {
    const meta = reservation.meta as SliceMeta | undefined;
    if (meta?.sliceOf === undefined) return this.inner.settle(reservation, actualCosts);
    if (meta.done) return;
    meta.done = 1;
    // A refunded request (a failed call) gives its unit back to the slice it came from, if still live.
    const refund = actualCosts.every((c) => c === 0);
    const s = this.slices.get(meta.sliceOf);
    if (refund && s && !s.pending && s.reservation === meta.reservation && s.expires > this.clock.now())
      s.left++;
  }

  async release(reservation: Reservation): Promise<void> {
    const meta = reservation.meta as SliceMeta | undefined;
    if (meta?.sliceOf === undefined) return this.inner.release(reservation);
  }

  /** The inner store's health check, when it has one (the resilient store probes through it). */
  ping(): Promise<void> {
    const inner = this.inner as LimitStore & { ping?(): Promise<void> };
    return inner.ping ? inner.ping() : this.inner.peek([]).then(() => undefined);
  }

  peek(buckets: LimitBucket[]): Promise<BucketState[]> {
    return this.inner.peek(buckets);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const [key, s] of this.slices) if (!s.pending) this.retire(key, s);
    await this.inner.close();
  }
}
