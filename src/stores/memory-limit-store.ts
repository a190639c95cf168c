/**
 * In-memory LimitStore: the default for a single instance, and the local fallback of the resilient
 * store. All-or-none: every bucket is checked before any is charged, in one synchronous step.
 *
 * Bounded memory: at most `maxKeys` bucket states. A state only ever leaves memory when it is AT REST,
 * i.e. identical to an absent one (GCRA allowance full, window empty, no live lease), so eviction can
 * never hand a key a fresh allowance it did not already have. When every stored state is active and a
 * request needs a new one, `reserve` throws {@link LimitStoreFullError} (a store failure: the caller
 * applies `onStoreFailure`), and requests on keys already stored keep working. A settle that must
 * create a state to carry a debt (its bucket refilled and was dropped meanwhile) may use a headroom of
 * 1% above `maxKeys` (at least 1,024), so a debt is not forgotten because new keys filled the store;
 * only past that headroom is it dropped (counted in `stats().droppedDebts`). Open reservations (see
 * SETTLE_WINDOW_MS) are bounded by `maxKeys` too: past it, the oldest are forgotten and their settles
 * ignored (a lost refund errs on the safe side).
 *
 * Memory: a GCRA state (the common per-key rate limit) is packed into three Float64Array columns and
 * the key map holds only its row number (a small integer, stored inline), about 130 B per key all in
 * (the key string itself included); window and lease states are objects (a few per tenant).
 */
import {
  type BucketUnits,
  bucketUnits,
  marksOf,
  NOT_CHARGED,
  SETTLE_WINDOW_MS,
  settleDelta,
  toBucketState,
} from '../core/limits/buckets.js';
import {
  type GcraState,
  gcraAhead,
  gcraCheck,
  gcraRemaining,
  gcraResetMs,
  gcraSettle,
  gcraStateFor,
} from '../core/limits/gcra.js';
import {
  type LeaseState,
  leaseCheck,
  leasePrune,
  leaseRemaining,
  leaseResetMs,
} from '../core/limits/lease.js';
import {
  newWindowState,
  WINDOW_SLOTS,
  WindowState,
  windowAdvance,
  windowCharge,
  windowCheck,
  windowRemaining,
  windowResetMs,
  windowSettle,
} from '../core/limits/sliding-window.js';
import { costUnits } from '../core/limits/units.js';
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
import { claimTtlMs, hasOpenRecord, needsOpenRecord, storeMeta } from './settle-records.js';

export interface MemoryLimitStoreOptions {
  /** Time source; tests pass a fake clock. Default: the system clock. */
  clock?: Clock;
  /** Most bucket states kept (and most settle markers). Default 1,000,000 (cfg.limits.maxKeys). */
  maxKeys?: number;
}

/** Thrown by `reserve` when a new bucket is needed and every stored one is still active. */
export class LimitStoreFullError extends Error {
  readonly code = 'LIMIT_STORE_FULL';
  constructor(maxKeys: number) {
    super(`limit store is full: all ${maxKeys} bucket states are active`);
    this.name = 'LimitStoreFullError';
  }
}

/** Entries scanned for an at-rest victim before a full pass is considered. */
const EVICT_SCAN = 64;
/** A full pass over every entry is O(n): allow one per second of clock at most. */
const FULL_SWEEP_EVERY_MS = 1000;

/**
 * A GCRA state is its row in the packed columns (a number); window and lease states are stored
 * themselves (no wrapper object: told apart by their fields).
 */
type Entry = number | WindowState | LeaseState;

function isWindow(e: Entry | undefined): e is WindowState {
  return e instanceof WindowState;
}

function isLease(e: Entry | undefined): e is LeaseState {
  return typeof e === 'object' && 'leases' in e;
}

function algorithmOf(e: Entry): 'gcra' | 'window' | 'lease' {
  return typeof e === 'number' ? 'gcra' : isWindow(e) ? 'window' : 'lease';
}

/**
 * The key as one flat string. A key built by concatenation is a tree of V8 cons strings (about 32 B a
 * node, five or more per bucket key) until something flattens it, and a Map keeps its key as given; a
 * RegExp match flattens its subject in place, and the GC then drops the tree. Once per new state only.
 */
function flatKey(key: string): string {
  FLATTEN.test(key);
  return key;
}
const FLATTEN = /^/;

/**
 * GCRA states in columns: row i is (a, f, d) of GcraState; a = -Infinity marks a row at rest.
 * Rows are reused through a free list; the columns grow by doubling.
 */
class GcraColumns {
  a = new Float64Array(1024);
  f = new Float64Array(1024);
  d = new Float64Array(1024);
  private used = 0;
  private free: number[] = [];

  alloc(): number {
    const r = this.free.pop();
    if (r !== undefined) return r;
    if (this.used === this.a.length) {
      const grow = (x: Float64Array) => {
        const y = new Float64Array(x.length * 2);
        y.set(x);
        return y;
      };
      this.a = grow(this.a);
      this.f = grow(this.f);
      this.d = grow(this.d);
    }
    return this.used++;
  }

  release(row: number): void {
    this.free.push(row);
  }

  get(row: number): GcraState | undefined {
    const a = this.a[row]!;
    return a === Number.NEGATIVE_INFINITY ? undefined : { a, f: this.f[row]!, d: this.d[row]! };
  }

  set(row: number, s: GcraState | undefined): void {
    this.a[row] = s ? s.a : Number.NEGATIVE_INFINITY;
    this.f[row] = s ? s.f : 0;
    this.d[row] = s ? s.d : 1;
  }

  clear(): void {
    this.a = new Float64Array(1024);
    this.f = new Float64Array(1024);
    this.d = new Float64Array(1024);
    this.used = 0;
    this.free = [];
  }
}

/** One bucket's decision, computed before anything is charged. */
interface Check {
  ok: boolean;
  retryAfterMs: number;
  /** State before this request (what a denial reports). */
  remaining: number;
  resetMs: number;
  /** GCRA: ahead after admission. */
  ahead: number;
  /** The stored state, looked up once per reserve; undefined when the bucket has none yet. */
  entry: Entry | undefined;
  units: BucketUnits;
  cost: number;
}

export class MemoryLimitStore implements LimitStore {
  private readonly clock: Clock;
  private readonly maxKeys: number;
  /** Extra states a settle may create to carry a debt: see the header. */
  private readonly debtHeadroom: number;
  /** Insertion order; scans for eviction start at the oldest. */
  private readonly entries = new Map<string, Entry>();
  private readonly gcra = new GcraColumns();
  private droppedDebts = 0;
  /** Open reservations (request id → expiry), in time order: see SETTLE_WINDOW_MS. */
  private readonly open = new Map<string, number>();
  private lastFullSweep = Number.NEGATIVE_INFINITY;

  constructor(opts: MemoryLimitStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.maxKeys = Math.max(1, opts.maxKeys ?? 1_000_000);
    this.debtHeadroom = Math.max(1024, Math.ceil(this.maxKeys / 100));
  }

  /** Debts that could not be kept (the store was full beyond its headroom). */
  stats(): { size: number; droppedDebts: number } {
    return { size: this.entries.size, droppedDebts: this.droppedDebts };
  }

  /** Drops a key's state, returning a GCRA row to the free list. */
  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    if (typeof e === 'number') this.gcra.release(e);
  }

  /** Bucket states held right now (for metrics and tests). */
  size(): number {
    return this.entries.size;
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    return this.reserveNow(input);
  }

  /** Synchronous `reserve` (the resilient store and benchmarks use it to skip a promise hop). */
  reserveNow(input: ReserveInput): ReserveResult {
    const now = this.clock.now();
    const { buckets, costs, requestId } = input;
    const n = buckets.length;
    const checks: Check[] = new Array(n);
    let denyAt = -1;
    let denyWait = -1;
    let fresh = 0;
    for (let i = 0; i < n; i++) {
      const b = buckets[i]!;
      const c = this.check(b, costs[i] ?? 0, requestId, now);
      checks[i] = c;
      if (!c.ok) {
        if (!b.shadow && c.retryAfterMs > denyWait) {
          denyAt = i;
          denyWait = c.retryAfterMs;
        }
      } else if (c.cost > 0 && c.entry === undefined) fresh++;
    }
    const states: BucketState[] = new Array(n);
    if (denyAt >= 0) {
      for (let i = 0; i < n; i++)
        states[i] = toBucketState(buckets[i]!, checks[i]!.remaining, checks[i]!.resetMs);
      return { ok: false, bucketIndex: denyAt, retryAfterMs: denyWait, states };
    }
    // Room for every new state first, so that a full store refuses before anything is charged.
    // Eviction only takes states at rest, but one of those may be a bucket of this request: re-add it.
    const evicted = fresh > 0 && this.makeRoom(fresh, now);
    const marks: number[] = new Array(n);
    const shadowDenied: string[] = [];
    for (let i = 0; i < n; i++) {
      const b = buckets[i]!;
      const c = checks[i]!;
      if (!c.ok) {
        // Only shadow buckets get here: they never deny, and are not charged for what they would refuse.
        shadowDenied.push(b.id);
        marks[i] = NOT_CHARGED;
        states[i] = toBucketState(b, c.remaining, c.resetMs);
        continue;
      }
      if (evicted && c.entry !== undefined && this.entries.get(b.key) !== c.entry) {
        // A GCRA row at rest is the same as no state (and its row may be reused): start afresh.
        if (typeof c.entry === 'number') c.entry = undefined;
        else this.entries.set(flatKey(b.key), c.entry);
      }
      marks[i] = this.charge(b, c, requestId, now);
      states[i] = c.cost > 0 ? this.stateAfterCharge(b, c, now) : toBucketState(b, c.remaining, c.resetMs);
    }
    const record = needsOpenRecord(buckets);
    if (record) this.openReservation(requestId, now + SETTLE_WINDOW_MS, now);
    const reservation: Reservation = {
      requestId,
      buckets,
      costs: costs.slice(0, n),
      meta: { v: marks, r: record ? 1 : 0, at: now },
    };
    return { ok: true, reservation, states, shadowDenied };
  }

  async settle(reservation: Reservation, actualCosts: number[]): Promise<void> {
    const now = this.clock.now();
    const meta = storeMeta(reservation);
    if (meta?.done) return; // this very reservation was settled already
    const marks = marksOf(reservation);
    const { buckets } = reservation;
    const deltas = buckets.map((b, i) =>
      b.algorithm === 'lease' || marks?.[i] === NOT_CHARGED ? 0 : settleDelta(reservation, actualCosts, i),
    );
    const unchanged = deltas.every((d) => d === 0);
    const expiry = this.open.get(reservation.requestId);
    // The first settle is the one applied, whether or not it changes anything (see settle-records).
    if (meta) meta.done = 1;
    if (hasOpenRecord(reservation)) {
      // No open record: settled already, too late, or not made here. Ignored: never applied twice.
      if (expiry === undefined) return;
      this.open.delete(reservation.requestId); // consumed, whether or not anything changes
      if (expiry <= now || unchanged) return;
    } else {
      // Request counts only: nothing to do unless refunded; a refund claims the record.
      if (unchanged) return;
      if (meta?.at !== undefined && now - meta.at >= SETTLE_WINDOW_MS) return; // too late
      if (expiry !== undefined && expiry > now) return; // a duplicate
      this.openReservation(reservation.requestId, now + claimTtlMs(buckets), now);
    }
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      const mark = marks ? marks[i]! : 0;
      const delta = deltas[i]!;
      if (delta === 0) continue;
      const u = bucketUnits(b);
      let e = this.entries.get(b.key);
      if (e === undefined || algorithmOf(e) !== b.algorithm) {
        // A missing state is a full allowance: a refund changes nothing, an overrun starts a debt.
        if (delta < 0) continue;
        if (!this.tryMakeRoom(1, now, this.debtHeadroom)) {
          this.droppedDebts++; // only past the headroom: a settle never throws
          continue;
        }
        if (e !== undefined) this.drop(b.key, e);
        if (b.algorithm === 'gcra') {
          e = this.gcra.alloc();
          this.gcra.set(e, undefined);
        } else e = newWindowState(u.windowMs, now);
        this.entries.set(flatKey(b.key), e);
      }
      if (typeof e === 'number') {
        const ahead = gcraSettle(u, gcraAhead(this.gcra.get(e), u.limit, now), delta);
        const next = gcraStateFor(ahead, u.limit, now);
        if (next) this.gcra.set(e, next);
        else this.drop(b.key, e);
      } else if (isWindow(e)) {
        windowAdvance(e, u.windowMs, now);
        // Without marks (a foreign reservation) the slot is unknown: refunds are skipped, overruns booked.
        windowSettle(e, marks ? mark : Number.NEGATIVE_INFINITY, delta, now);
        if (e.sum <= 0) this.entries.delete(b.key);
      }
    }
  }

  async release(reservation: Reservation): Promise<void> {
    const marks = marksOf(reservation);
    for (let i = 0; i < reservation.buckets.length; i++) {
      const b = reservation.buckets[i]!;
      if (b.algorithm !== 'lease' || marks?.[i] === NOT_CHARGED) continue;
      const e = this.entries.get(b.key);
      if (!isLease(e)) continue;
      // An empty lease set is at rest: eviction may take it, but keeping it spares a re-allocation.
      e.leases.delete(reservation.requestId);
    }
  }

  async peek(buckets: LimitBucket[]): Promise<BucketState[]> {
    const now = this.clock.now();
    return buckets.map((b) => this.stateOf(b, bucketUnits(b), this.entries.get(b.key), now));
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.gcra.clear();
    this.open.clear();
  }

  private check(b: LimitBucket, amount: number, requestId: string, now: number): Check {
    const u = bucketUnits(b);
    const cost = b.algorithm === 'lease' ? (amount > 0 ? 1 : 0) : costUnits(b.kind, amount);
    const e = this.entries.get(b.key);
    switch (b.algorithm) {
      case 'gcra': {
        const entry = typeof e === 'number' ? e : undefined;
        const ahead = entry !== undefined ? gcraAhead(this.gcra.get(entry), u.limit, now) : 0;
        const d = gcraCheck(u, ahead, cost);
        return {
          ok: d.ok,
          retryAfterMs: d.retryAfterMs,
          remaining: gcraRemaining(u, ahead),
          resetMs: gcraResetMs(u, ahead),
          ahead: d.ahead,
          entry,
          units: u,
          cost,
        };
      }
      case 'window': {
        if (!isWindow(e)) {
          const d = cost > u.limit ? Number.POSITIVE_INFINITY : 0;
          return {
            ok: d === 0,
            retryAfterMs: d,
            remaining: u.limit,
            resetMs: 0,
            ahead: 0,
            entry: undefined,
            units: u,
            cost,
          };
        }
        windowAdvance(e, u.windowMs, now);
        const d = windowCheck(e, u.limit, cost, now, u.windowMs);
        return {
          ok: d.ok,
          retryAfterMs: d.retryAfterMs,
          remaining: windowRemaining(e, u.limit),
          resetMs: windowResetMs(e, now, u.windowMs),
          ahead: 0,
          entry: e,
          units: u,
          cost,
        };
      }
      case 'lease': {
        if (!isLease(e)) {
          const ok = cost <= 0 || u.limit >= 1;
          return {
            ok,
            retryAfterMs: ok ? 0 : Number.POSITIVE_INFINITY,
            remaining: u.limit,
            resetMs: 0,
            ahead: 0,
            entry: undefined,
            units: u,
            cost,
          };
        }
        leasePrune(e, now);
        const d =
          u.limit < 1 && cost > 0
            ? { ok: false, retryAfterMs: Number.POSITIVE_INFINITY }
            : leaseCheck(e, u.limit, requestId, cost, now);
        return {
          ok: d.ok,
          retryAfterMs: d.retryAfterMs,
          remaining: leaseRemaining(e, u.limit),
          resetMs: leaseResetMs(e, u.limit, now),
          ahead: 0,
          entry: e,
          units: u,
          cost,
        };
      }
    }
  }

  /** Charges a bucket that passed its check (creating its state if needed); returns its reservation mark. */
  private charge(b: LimitBucket, c: Check, requestId: string, now: number): number {
    if (c.cost <= 0) return 0;
    const u = c.units;
    let e = c.entry;
    switch (b.algorithm) {
      case 'gcra': {
        const s = gcraStateFor(c.ahead, u.limit, now);
        if (typeof e === 'number') this.gcra.set(e, s);
        else {
          if (e !== undefined) this.drop(b.key, e); // another algorithm's state under this key
          const row = this.gcra.alloc();
          this.gcra.set(row, s);
          c.entry = row;
          this.entries.set(flatKey(b.key), row);
        }
        return 0;
      }
      case 'window': {
        if (!isWindow(e)) {
          e = newWindowState(u.windowMs, now);
          this.entries.set(flatKey(b.key), e);
          c.entry = e;
        }
        return windowCharge(e, c.cost, now);
      }
      case 'lease': {
        if (!isLease(e)) {
          e = { leases: new Map() };
          this.entries.set(flatKey(b.key), e);
          c.entry = e;
        }
        e.leases.set(requestId, now + u.windowMs);
        return 0;
      }
    }
  }

  /** The state right after `charge` (the entry is already advanced and pruned). */
  private stateAfterCharge(b: LimitBucket, c: Check, now: number): BucketState {
    const u = c.units;
    const e = c.entry!;
    if (typeof e === 'number') return toBucketState(b, gcraRemaining(u, c.ahead), gcraResetMs(u, c.ahead));
    if (isWindow(e)) return toBucketState(b, windowRemaining(e, u.limit), windowResetMs(e, now, u.windowMs));
    return toBucketState(b, leaseRemaining(e, u.limit), leaseResetMs(e, u.limit, now));
  }

  /** The state of a bucket from its stored entry. */
  private stateOf(b: LimitBucket, u: BucketUnits, e: Entry | undefined, now: number): BucketState {
    if (e === undefined || algorithmOf(e) !== b.algorithm) return toBucketState(b, u.limit + u.burst, 0);
    if (typeof e === 'number') {
      const ahead = gcraAhead(this.gcra.get(e), u.limit, now);
      return toBucketState(b, gcraRemaining(u, ahead), gcraResetMs(u, ahead));
    }
    if (isWindow(e)) {
      windowAdvance(e, u.windowMs, now);
      return toBucketState(b, windowRemaining(e, u.limit), windowResetMs(e, now, u.windowMs));
    }
    leasePrune(e, now);
    return toBucketState(b, leaseRemaining(e, u.limit), leaseResetMs(e, u.limit, now));
  }

  /** True when the entry is indistinguishable from an absent one, so dropping it changes nothing. */
  private atRest(e: Entry, now: number): boolean {
    if (typeof e === 'number') {
      const a = this.gcra.a[e]!;
      return a < now || (a === now && this.gcra.f[e] === 0);
    }
    if (isWindow(e)) {
      // Advance with the entry's own slot length: the window length is not known here.
      windowAdvance(e, e.g * WINDOW_SLOTS, now);
      return e.sum <= 0;
    }
    leasePrune(e, now);
    return e.leases.size === 0;
  }

  /** Makes room or throws; true when something was evicted. */
  private makeRoom(needed: number, now: number): boolean {
    const before = this.entries.size;
    if (before + needed <= this.maxKeys) return false;
    if (!this.tryMakeRoom(needed, now)) throw new LimitStoreFullError(this.maxKeys);
    return true;
  }

  /** Evicts at-rest states until `needed` new ones fit. Active states are moved to the back, never dropped. */
  private tryMakeRoom(needed: number, now: number, headroom = 0): boolean {
    const target = this.maxKeys + headroom - needed;
    if (this.entries.size <= target) return true;
    let budget = EVICT_SCAN * needed;
    if (now - this.lastFullSweep >= FULL_SWEEP_EVERY_MS) budget = Math.max(budget, this.entries.size);
    let scanned = 0;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= target || scanned >= budget) break;
      scanned++;
      if (this.atRest(e, now)) this.drop(key, e);
      else {
        this.entries.delete(key);
        this.entries.set(key, e);
      }
    }
    if (scanned > EVICT_SCAN * needed) this.lastFullSweep = now;
    return this.entries.size <= target;
  }

  /** Records an open reservation or refund claim; expired records (and, past maxKeys, the oldest) are dropped first. */
  private openReservation(requestId: string, expiry: number, now: number): void {
    // Inserted in time order, so the oldest are at the front (claims expire sooner than records: a
    // claim behind a live record waits for it, still bounded by maxKeys).
    for (const [id, exp] of this.open) {
      if (exp > now && this.open.size < this.maxKeys) break;
      this.open.delete(id);
    }
    this.open.set(requestId, expiry);
  }
}
