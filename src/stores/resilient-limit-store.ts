/**
 * Degraded mode for a remote LimitStore (Redis). A slow store is not a down store:
 *
 *  - The store turns DEGRADED only when the remote is KNOWN unreachable: its connection is not up
 *    (`isConnected()`, for ioredis `status === 'ready'`), a call failed with a connection error while
 *    it was down, or a call failed with an error that says the connection is gone (refused, reset,
 *    closed, a cluster that cannot reach a slot's master: `isConnectionLost`) — a cluster client stays
 *    'ready' while one master is lost. Without `isConnected`, any failure except a timeout counts as
 *    unreachable.
 *  - A call that takes longer than `timeoutMs` (cfg.limits.timeout, default 50 ms) on a LIVE
 *    connection is slow, not down: it keeps waiting for the real answer, up to `slowCallMaxMs`
 *    (default 2 s; both bounds count only time this process was responsive, see `withTimeout`). If
 *    the answer comes, it is used. If not, or the call failed on a live connection (a script error),
 *    THAT request is refused as store-unavailable (503 SLUICE_STORE_UNAVAILABLE with Retry-After,
 *    `closedRetryAfterMs`) whatever its `onStoreFailure`, and the store stays on the remote. So a busy
 *    instance, or a busy Redis, never answers from a local share and never over-admits.
 *
 * While degraded, until a probe finds the remote healthy again, each bucket follows its
 * `onStoreFailure`:
 *   open    admitted, not counted;
 *   closed  denied: the result carries `storeUnavailable: true` (→ SLUICE_STORE_UNAVAILABLE) and a
 *           short `retryAfterMs`;
 *   local   counted by an in-memory store on this instance, with 1/expectedInstances of the limit and
 *           burst (at least 1 for whole units, so no limit becomes unusable).
 * Shadow buckets never deny, so `closed` treats them as `open`.
 *
 * Recovery is automatic: while degraded a probe (the remote's `ping()`, else a `peek`) runs every
 * `probeIntervalMs`; the first success (with the connection up) returns to the remote store. Remote
 * state is then authoritative again: usage counted locally during the outage is not copied back (if
 * Redis restarted empty, its buckets start full).
 *
 * Reservations remember where they were made: settles and releases of local reservations go to the
 * local store; those of remote ones go to the remote store and are dropped (counted in `stats()`) if
 * it fails — a lost refund only errs on the safe side, a lost lease expires with its TTL. A remote
 * call abandoned after `slowCallMaxMs` may still land later; its reservation is then simply never
 * settled (conservative: it counts, it is never handed out twice).
 */
import { toBucketState } from '../core/limits/buckets.js';
import type { PlannedBucket, StoreFailureMode } from '../core/limits/plan.js';
import {
  type BucketState,
  type Clock,
  type LimitBucket,
  type LimitStore,
  type Reservation,
  type ReserveInput,
  type ReserveResult,
  systemClock,
} from '../core/ports.js';
import { MemoryLimitStore } from './memory-limit-store.js';
import { LimitCallTimeoutError, withTimeout } from './redis-limit-store.js';
import { isConnectionLost } from './store-errors.js';

/** A remote store; `ping` (RedisLimitStore has one) makes recovery probes cheap. */
export type RemoteLimitStore = LimitStore & { ping?(): Promise<void> };

export interface ResilientLimitStoreOptions {
  remote: RemoteLimitStore;
  /** For buckets that do not say (PlannedBucket.onStoreFailure). Default `local`. */
  onStoreFailure?: StoreFailureMode;
  /** Instances sharing the remote store; the local fallback gets 1/expectedInstances of each limit. Default 1. */
  expectedInstances?: number;
  /** Per remote call: after this long the connection is checked. Default 50 ms. */
  timeoutMs?: number;
  /**
   * Whether the remote's connection is up now (ioredis: `() => redis.status === 'ready'`). A call that
   * fails or times out while it says true is slow, not down. Without it: any failure but a timeout is down.
   */
  isConnected?: () => boolean;
  /** How long a call that outlived `timeoutMs` on a live connection waits for its answer. Default 2000 ms. */
  slowCallMaxMs?: number;
  /** Probe period while degraded. Default 1000 ms. */
  probeIntervalMs?: number;
  /** `retryAfterMs` of a `closed` denial. Default 1000 ms. */
  closedRetryAfterMs?: number;
  clock?: Clock;
  /** Bound of the local fallback store. Default 100,000. */
  maxKeys?: number;
  /** Called on every change; `err` is the failure that started a degraded period. */
  onDegradedChange?: (degraded: boolean, err?: unknown) => void;
}

/** The deny a `closed` bucket gives while the store is unavailable. */
export type StoreUnavailableDenial = Extract<ReserveResult, { ok: false }> & { storeUnavailable: true };

interface LocalMeta {
  src: 'l';
  /** Indexes (into the reservation's buckets) counted locally. */
  idx: number[];
  inner: unknown;
}
interface RemoteMeta {
  src: 'r';
  inner: unknown;
}

export interface ResilientStats {
  degraded: boolean;
  /** When the current degraded period began (clock ms), or null. */
  degradedSince: number | null;
  remoteFailures: number;
  localReserves: number;
  openAdmits: number;
  closedDenials: number;
  droppedSettles: number;
  /** Calls that outlived `timeoutMs` on a live connection (answered late, or refused). */
  slowCalls: number;
  /** Requests refused as store-unavailable because their call failed on a live connection. */
  slowDenials: number;
}

export class ResilientLimitStore implements LimitStore {
  readonly local: MemoryLimitStore;
  private readonly remote: RemoteLimitStore;
  private readonly mode: StoreFailureMode;
  private readonly instances: number;
  private readonly timeoutMs: number;
  private readonly slowMaxMs: number;
  private readonly isConnected?: () => boolean;
  private readonly probeMs: number;
  private readonly closedRetryMs: number;
  private readonly clock: Clock;
  private readonly onChange?: (degraded: boolean, err?: unknown) => void;
  private readonly shares = new WeakMap<LimitBucket, LimitBucket>();
  private isDegraded = false;
  private since: number | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  private readonly counters = {
    remoteFailures: 0,
    localReserves: 0,
    openAdmits: 0,
    closedDenials: 0,
    droppedSettles: 0,
    slowCalls: 0,
    slowDenials: 0,
  };

  constructor(opts: ResilientLimitStoreOptions) {
    this.remote = opts.remote;
    this.mode = opts.onStoreFailure ?? 'local';
    this.instances = Math.max(1, opts.expectedInstances ?? 1);
    this.timeoutMs = opts.timeoutMs ?? 50;
    this.slowMaxMs = Math.max(this.timeoutMs, opts.slowCallMaxMs ?? 2000);
    this.isConnected = opts.isConnected;
    this.probeMs = opts.probeIntervalMs ?? 1000;
    this.closedRetryMs = opts.closedRetryAfterMs ?? 1000;
    this.clock = opts.clock ?? systemClock;
    this.onChange = opts.onDegradedChange;
    this.local = new MemoryLimitStore({ clock: this.clock, maxKeys: opts.maxKeys ?? 100_000 });
  }

  /** True while the remote store is considered unavailable. */
  degraded(): boolean {
    return this.isDegraded;
  }

  stats(): ResilientStats {
    return { degraded: this.isDegraded, degradedSince: this.since, ...this.counters };
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    if (!this.isDegraded && this.isConnected && !this.isConnected())
      this.fail(new Error('limit store not connected'));
    if (!this.isDegraded) {
      try {
        const r = await this.call(this.remote.reserve(input));
        if (!r.ok) return r;
        const meta: RemoteMeta = { src: 'r', inner: r.reservation.meta };
        return { ...r, reservation: { ...r.reservation, meta } };
      } catch (err) {
        if (!this.unreachable(err)) return this.refuseSlow(input);
        this.fail(err);
      }
    }
    return this.fallback(input);
  }

  async settle(reservation: Reservation, actualCosts: number[]): Promise<void> {
    const meta = reservation.meta as LocalMeta | RemoteMeta | undefined;
    if (meta?.src === 'l') {
      await this.local.settle(
        this.localReservation(reservation, meta),
        meta.idx.map((i) => actualCosts[i]!),
      );
    } else if (meta?.src === 'r') {
      try {
        await this.call(this.remote.settle({ ...reservation, meta: meta.inner }, actualCosts));
      } catch (err) {
        this.counters.droppedSettles++;
        if (this.unreachable(err)) this.fail(err);
      }
    }
  }

  async release(reservation: Reservation): Promise<void> {
    const meta = reservation.meta as LocalMeta | RemoteMeta | undefined;
    if (meta?.src === 'l') {
      await this.local.release(this.localReservation(reservation, meta));
    } else if (meta?.src === 'r') {
      try {
        await this.call(this.remote.release({ ...reservation, meta: meta.inner }));
      } catch (err) {
        this.counters.droppedSettles++;
        if (this.unreachable(err)) this.fail(err);
      }
    }
  }

  /** Remote states; while degraded, the local shares of `local` buckets (others shown full). */
  async peek(buckets: LimitBucket[]): Promise<BucketState[]> {
    if (!this.isDegraded) {
      try {
        return await this.call(this.remote.peek(buckets));
      } catch (err) {
        if (!this.unreachable(err)) throw err;
        this.fail(err);
      }
    }
    const states = await this.local.peek(buckets.map((b) => this.share(b)));
    return states.map((s, i) =>
      this.modeOf(buckets[i]!) === 'local'
        ? s
        : toBucketState(buckets[i]!, buckets[i]!.limit + buckets[i]!.burst, 0),
    );
  }

  /** Stops probing and closes the local store (not the remote one: its owner closes it). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopProbe();
    await this.local.close();
  }

  /**
   * One remote call: its answer within `timeoutMs`; past that, while the connection is up, its answer
   * within `slowCallMaxMs`. Rejects with the call's error or a LimitCallTimeoutError.
   */
  private async call<T>(p: Promise<T>): Promise<T> {
    try {
      return await withTimeout(p, this.timeoutMs);
    } catch (err) {
      if (!(err instanceof LimitCallTimeoutError) || this.unreachable(err)) throw err;
      this.counters.slowCalls++;
      return await withTimeout(p, this.slowMaxMs - this.timeoutMs);
    }
  }

  /** Whether a failed call means the remote is unreachable (degraded mode) rather than slow or erring. */
  private unreachable(err: unknown): boolean {
    if (this.isConnected) return !this.isConnected() || isConnectionLost(err);
    return !(err instanceof LimitCallTimeoutError);
  }

  /** A request whose call failed on a live connection: refused as store-unavailable, never admitted uncounted. */
  private refuseSlow(input: ReserveInput): ReserveResult {
    const { buckets } = input;
    const at = buckets.findIndex((b) => !b.shadow);
    if (at < 0) return this.fallback(input, 'open');
    this.counters.slowDenials++;
    const deny: StoreUnavailableDenial = {
      ok: false,
      bucketIndex: at,
      retryAfterMs: this.closedRetryMs,
      states: buckets.map((b) =>
        b.shadow ? toBucketState(b, b.limit + b.burst, 0) : toBucketState(b, 0, this.closedRetryMs),
      ),
      storeUnavailable: true,
    };
    return deny;
  }

  private modeOf(b: LimitBucket): StoreFailureMode {
    return (b as Partial<PlannedBucket>).onStoreFailure ?? this.mode;
  }

  /** This instance's share of a bucket: 1/expectedInstances of limit and burst. */
  private share(b: LimitBucket): LimitBucket {
    if (this.instances === 1) return b;
    let s = this.shares.get(b);
    if (!s) {
      const whole = b.kind !== 'usd';
      const part = (x: number, min: number) =>
        whole ? Math.max(min, Math.floor(x / this.instances)) : x / this.instances;
      s = { ...b, limit: part(b.limit, 1), burst: part(b.burst, 0) };
      this.shares.set(b, s);
    }
    return s;
  }

  private localReservation(r: Reservation, meta: LocalMeta): Reservation {
    return {
      requestId: r.requestId,
      buckets: meta.idx.map((i) => this.share(r.buckets[i]!)),
      costs: meta.idx.map((i) => r.costs[i]!),
      meta: meta.inner,
    };
  }

  private fallback(input: ReserveInput, force?: StoreFailureMode): ReserveResult {
    const { buckets, costs, requestId } = input;
    const n = buckets.length;
    const idx: number[] = [];
    let closedAt = -1;
    for (let i = 0; i < n; i++) {
      const b = buckets[i]!;
      const m = force ?? this.modeOf(b);
      if (m === 'local') idx.push(i);
      else if (m === 'closed' && !b.shadow && closedAt < 0) closedAt = i;
    }
    const neutral = (i: number) => toBucketState(buckets[i]!, buckets[i]!.limit + buckets[i]!.burst, 0);
    if (closedAt >= 0) {
      this.counters.closedDenials++;
      const states = buckets.map((b, i) =>
        this.modeOf(b) === 'closed' && !b.shadow ? toBucketState(b, 0, this.closedRetryMs) : neutral(i),
      );
      const deny: StoreUnavailableDenial = {
        ok: false,
        bucketIndex: closedAt,
        retryAfterMs: this.closedRetryMs,
        states,
        storeUnavailable: true,
      };
      return deny;
    }
    const states: BucketState[] = buckets.map((_, i) => neutral(i));
    let shadowDenied: string[] = [];
    let inner: unknown;
    if (idx.length > 0) {
      this.counters.localReserves++;
      const r = this.local.reserveNow({
        buckets: idx.map((i) => this.share(buckets[i]!)),
        costs: idx.map((i) => costs[i]!),
        requestId,
      });
      idx.forEach((i, j) => {
        states[i] = r.states[j]!;
      });
      if (!r.ok) return { ok: false, bucketIndex: idx[r.bucketIndex]!, retryAfterMs: r.retryAfterMs, states };
      shadowDenied = r.shadowDenied;
      inner = r.reservation.meta;
    }
    if (idx.length < n) this.counters.openAdmits++;
    const meta: LocalMeta = { src: 'l', idx, inner };
    return {
      ok: true,
      reservation: { requestId, buckets, costs: costs.slice(0, n), meta },
      states,
      shadowDenied,
    };
  }

  private fail(err: unknown): void {
    this.counters.remoteFailures++;
    if (this.isDegraded || this.closed) return;
    this.isDegraded = true;
    this.since = this.clock.now();
    this.startProbe();
    this.onChange?.(true, err);
  }

  private recover(): void {
    if (!this.isDegraded) return;
    this.isDegraded = false;
    this.since = null;
    this.stopProbe();
    this.onChange?.(false);
  }

  private startProbe(): void {
    if (this.probeTimer) return;
    this.probeTimer = setInterval(() => void this.probe(), this.probeMs);
    this.probeTimer.unref?.();
  }

  private stopProbe(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }

  /** One recovery probe; overlapping probes are skipped. */
  async probe(): Promise<boolean> {
    if (this.probing || this.closed) return false;
    this.probing = true;
    try {
      if (this.isConnected && !this.isConnected()) return false;
      const check = this.remote.ping ? this.remote.ping() : this.remote.peek([]).then(() => undefined);
      await withTimeout(check, Math.max(this.timeoutMs, 250));
      this.recover();
      return true;
    } catch {
      return false;
    } finally {
      this.probing = false;
    }
  }
}
