/**
 * Redis LimitStore for many instances sharing limits. One Lua script call per reserve covers every
 * bucket of the request, all or none (`redis/limits.lua`, same arithmetic as `src/core/limits/`),
 * with time from the server's `TIME`, so instances with skewed clocks agree. The script is called
 * with EVALSHA and sent again (EVAL, which also caches it) when Redis answers NOSCRIPT, e.g. after a
 * restart or SCRIPT FLUSH (Redis 5 or later: scripts must replicate by effects to call TIME). Settle
 * and release are one call each; neither is made when there is nothing to change. Settle is applied
 * at most once (see `settle-records.ts`): a reservation with usage-settled buckets (tokens, money)
 * leaves an open-reservation record that its settle always deletes; a requests-only reservation
 * leaves none, and a refund claims one for at most the bucket's window.
 *
 * Bounded state (every key expires; nothing is left per request once it is settled):
 * `<prefix><bucket key>` — GCRA: a string, expiring when the allowance is full again (at most
 * window × (1 + burst/limit), plus the time to repay a debt); window: a hash of slot counters,
 * expiring one window (+ one slot) after its newest slot; lease: a sorted set, expiring with the
 * newest lease (lease TTL). `<prefix><hash tag>:open:<request id>` — the open record (until the
 * settle, at most SETTLE_WINDOW_MS) or a refund claim (the longest window, at most SETTLE_WINDOW_MS).
 *
 * Local deny cache: when Redis denies a request, the bound bucket is remembered on this instance
 * until the time it said the request would fit (at most `denyCacheMaxMs`), so a client hammering an
 * exhausted limit costs no Redis round trip. A cached denial applies to requests of the same or a
 * larger cost on that bucket only. Not cached: concurrency (a slot frees whenever a request ends).
 * Trade-off: a refund settled by ANOTHER instance in the meantime is not seen until the entry
 * expires (refunds settled by this instance drop the entry at once); headers on a cached denial
 * show the states seen when Redis denied.
 *
 * Redis Cluster: a request's key, project, tenant and end-user buckets share the `{t:<tenant>}` hash
 * tag; tier, ip and global buckets have their own tags. This store sends all of a request's buckets
 * in one script call (refused with CROSSSLOT on a cluster when they span slots); `ClusterLimitStore`
 * (redis/cluster-limit-store.ts) splits such a request into one call per hash tag.
 *
 * Errors (connection, timeout, script errors) throw: the resilient store turns them into
 * `onStoreFailure`. Build the client with `limitRedisOptions()` so commands fail fast while Redis is
 * down instead of queueing and landing, late, after the gateway has moved on.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import {
  bucketUnits,
  marksOf,
  NOT_CHARGED,
  SETTLE_WINDOW_MS,
  settleDelta,
  toBucketState,
} from '../core/limits/buckets.js';
import { WINDOW_SLOTS } from '../core/limits/sliding-window.js';
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
import { claimTtlMs, hasOpenRecord, needsOpenRecord, type StoreMeta, storeMeta } from './settle-records.js';

/** The script, read beside this module (the build copies it next to the compiled file). */
export const LIMITS_LUA = readFileSync(new URL('./redis/limits.lua', import.meta.url), 'utf8');
const LIMITS_SHA = createHash('sha1').update(LIMITS_LUA).digest('hex');

const ALG = { gcra: 'g', window: 'w', lease: 'l' } as const;

export interface RedisLimitStoreOptions {
  /**
   * An ioredis client (see {@link limitRedisOptions}), or a Cluster client (see
   * {@link limitClusterOptions}; use `ClusterLimitStore` so requests spanning slots work). The store
   * never closes it.
   */
  redis: Redis | Cluster;
  /** Prepended to every key. Default `sluice:l:`. */
  prefix?: string;
  /** Each call fails after this long (0: no timeout here; the resilient store applies its own). */
  timeoutMs?: number;
  /** Local clock, only for the deny cache. */
  clock?: Clock;
  /** Longest a denial is remembered locally (0 disables the cache). Default 60 s. */
  denyCacheMaxMs?: number;
  /** Most buckets remembered as denied. Default 10,000. */
  denyCacheSize?: number;
}

/**
 * ioredis options for a limit store client: fail fast while disconnected, reconnect forever.
 * Auto-pipelining: the calls made during one event-loop turn (the reserves and settles of every
 * request the turn handled) leave in one socket write at its end (ioredis defers to `setImmediate`)
 * instead of one write each; each call still gets its own reply or error. A socket write was the
 * largest single cost of the Redis store per request (bench/README.md, "Redis store").
 */
export function limitRedisOptions(): RedisOptions {
  return {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
}

/** ioredis Cluster options for a limit store: the same fail-fast behaviour on every node. */
export function limitClusterOptions(): ClusterOptions {
  return {
    // One write per node per event-loop turn, as for a single Redis (see limitRedisOptions).
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    // A failover moves slots: follow MOVED/ASK and retry on a refreshed slot map, a few times only.
    maxRedirections: 8,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    redisOptions: { maxRetriesPerRequest: 0, connectTimeout: 2000 },
  };
}

export class LimitCallTimeoutError extends Error {
  readonly code = 'LIMIT_STORE_TIMEOUT';
  constructor(ms: number) {
    super(`limit store call timed out after ${ms}ms`);
    this.name = 'LimitCallTimeoutError';
  }
}

/**
 * Rejects with LimitCallTimeoutError if `p` has not settled within `ms` of responsive time (ms ≤ 0: no limit).
 * A timer that fires late means this process was busy (event-loop lag), not that the store was slow, and
 * the reply may already be waiting in the socket: the store is given its time again, up to 20 times,
 * so a loaded instance does not drop into degraded mode (and over-admit locally) while Redis is fine.
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  if (!(ms > 0)) return p;
  return new Promise<T>((resolve, reject) => {
    let deadline = performance.now() + ms;
    let rearms = 0;
    let settled = false;
    let timer: NodeJS.Timeout;
    const onFire = () => {
      const now = performance.now();
      if (now - deadline > Math.max(10, ms / 2) && rearms < 20) {
        rearms++;
        deadline = now + ms;
        timer = setTimeout(onFire, ms);
        timer.unref?.();
        return;
      }
      // One more I/O pass first: a reply already in the socket is read in the poll phase, which runs
      // after timers; setImmediate runs after that phase.
      setImmediate(() => {
        if (!settled) reject(new LimitCallTimeoutError(ms));
      });
    };
    timer = setTimeout(onFire, ms);
    timer.unref?.();
    p.then(
      (v) => {
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        settled = true;
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

interface DenyEntry {
  /** Local ms until which the bucket is known to refuse `cost` or more. */
  until: number;
  cost: number;
  at: number;
  states: Map<string, BucketState>;
  /** The bucket's limit and burst when denied: a bucket raised since (policy, exception) asks Redis again. */
  limit: number;
  burst: number;
}

export class RedisLimitStore implements LimitStore {
  private readonly redis: Redis | Cluster;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly denyMaxMs: number;
  private readonly denySize: number;
  private readonly denied = new Map<string, DenyEntry>();
  private readonly counters = { calls: 0, cachedDenials: 0, scriptLoads: 0 };
  private serverNow = 0;

  constructor(opts: RedisLimitStoreOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? 'sluice:l:';
    this.timeoutMs = opts.timeoutMs ?? 0;
    this.clock = opts.clock ?? systemClock;
    this.denyMaxMs = opts.denyCacheMaxMs ?? 60_000;
    this.denySize = opts.denyCacheSize ?? 10_000;
  }

  /** Calls made to Redis, denials answered from the local cache, script (re)loads after NOSCRIPT. */
  stats(): { calls: number; cachedDenials: number; scriptLoads: number } {
    return { ...this.counters };
  }

  /** Redis server time (ms) seen by the last script call: the `now` of that decision. */
  lastServerTime(): number {
    return this.serverNow;
  }

  /** Resolves when Redis answers (used by the resilient store to probe for recovery). */
  async ping(): Promise<void> {
    await withTimeout(this.redis.ping(), this.timeoutMs);
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    const { buckets, costs, requestId } = input;
    const n = buckets.length;
    if (n === 0)
      return {
        ok: true,
        reservation: { requestId, buckets, costs: [], meta: { v: [] } },
        states: [],
        shadowDenied: [],
      };
    const cost = buckets.map((b, i) =>
      b.algorithm === 'lease' ? ((costs[i] ?? 0) > 0 ? 1 : 0) : costUnits(b.kind, costs[i] ?? 0),
    );
    const cached = this.cachedDenial(buckets, cost);
    if (cached) return cached;
    const keys = buckets.map((b) => this.prefix + b.key);
    const args = this.argsFor('r', requestId, buckets, cost);
    const record = needsOpenRecord(buckets);
    if (record) {
      keys.push(this.recordKey(buckets, requestId));
      args.push(SETTLE_WINDOW_MS);
    }
    const out = await this.script(keys, args);
    const ok = out[0] === 1;
    const states: BucketState[] = new Array(n);
    const marks: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      states[i] = toBucketState(buckets[i]!, out[4 + 3 * i]!, out[5 + 3 * i]!);
      marks[i] = out[6 + 3 * i]!;
    }
    if (!ok) {
      const bucketIndex = out[1]!;
      const retryAfterMs = out[2]! < 0 ? Number.POSITIVE_INFINITY : out[2]!;
      this.rememberDenial(buckets, bucketIndex, cost[bucketIndex]!, retryAfterMs, states);
      return { ok: false, bucketIndex, retryAfterMs, states };
    }
    const shadowDenied: string[] = [];
    for (let i = 0; i < n; i++) if (marks[i] === NOT_CHARGED) shadowDenied.push(buckets[i]!.id);
    return {
      ok: true,
      reservation: {
        requestId,
        buckets,
        costs: costs.slice(0, n),
        meta: { v: marks, r: record ? 1 : 0, at: out[3]! },
      },
      states,
      shadowDenied,
    };
  }

  async settle(reservation: Reservation, actualCosts: number[]): Promise<void> {
    const { buckets } = reservation;
    const meta = storeMeta(reservation);
    if (meta?.done) return; // this very reservation was settled already
    const marks = marksOf(reservation);
    const record = hasOpenRecord(reservation);
    const args: (string | number)[] = [record ? 's' : 'c', buckets.length, WINDOW_SLOTS];
    let changes = 0;
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      const u = bucketUnits(b);
      // A window reservation without marks has no slot: a slot below any real one makes refunds no-ops.
      const mark = marks ? marks[i]! : b.algorithm === 'window' ? Number.MIN_SAFE_INTEGER : 0;
      const delta =
        b.algorithm === 'lease' || mark === NOT_CHARGED ? 0 : settleDelta(reservation, actualCosts, i);
      if (delta !== 0) changes++;
      if (delta < 0) this.denied.delete(this.prefix + b.key);
      args.push(ALG[b.algorithm], u.limit, u.burst, u.windowMs, mark, delta);
    }
    // The first settle is the one applied, whether or not it changes anything (see settle-records).
    if (meta) (meta as StoreMeta).done = 1;
    // With an open record the call is made even when nothing changes: it deletes the record.
    if (changes === 0 && !record) return;
    // A claim is refused past the settle window (server time of the reserve vs. now, both Redis TIME).
    if (!record) args.push(claimTtlMs(buckets), meta?.at ?? 0, SETTLE_WINDOW_MS);
    const keys = buckets.map((b) => this.prefix + b.key);
    keys.push(this.recordKey(buckets, reservation.requestId));
    await this.script(keys, args);
  }

  async release(reservation: Reservation): Promise<void> {
    const marks = marksOf(reservation);
    const keys: string[] = [];
    reservation.buckets.forEach((b, i) => {
      if (b.algorithm === 'lease' && marks?.[i] !== NOT_CHARGED) keys.push(this.prefix + b.key);
    });
    if (keys.length === 0) return;
    await this.script(keys, ['l', reservation.requestId]);
  }

  async peek(buckets: LimitBucket[]): Promise<BucketState[]> {
    if (buckets.length === 0) return [];
    const zero = buckets.map(() => 0);
    const out = await this.script(
      buckets.map((b) => this.prefix + b.key),
      this.argsFor('r', '', buckets, zero),
    );
    return buckets.map((b, i) => toBucketState(b, out[4 + 3 * i]!, out[5 + 3 * i]!));
  }

  async close(): Promise<void> {
    this.denied.clear();
  }

  /** The open-reservation record (see SETTLE_WINDOW_MS), in the hash slot of the first bucket. */
  private recordKey(buckets: readonly LimitBucket[], requestId: string): string {
    return `${this.prefix}${hashTag(buckets[0]!.key)}:open:${requestId}`;
  }

  private argsFor(
    op: string,
    requestId: string,
    buckets: readonly LimitBucket[],
    cost: readonly number[],
  ): (string | number)[] {
    const args: (string | number)[] = [op, requestId, buckets.length, WINDOW_SLOTS];
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      const u = bucketUnits(b);
      args.push(ALG[b.algorithm], u.limit, u.burst, u.windowMs, b.shadow ? 1 : 0, cost[i]!);
    }
    return args;
  }

  private async script(keys: string[], args: (string | number)[]): Promise<number[]> {
    this.counters.calls++;
    const call = async (): Promise<unknown> => {
      try {
        return await this.redis.evalsha(LIMITS_SHA, keys.length, ...keys, ...args);
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        this.counters.scriptLoads++;
        return await this.redis.eval(LIMITS_LUA, keys.length, ...keys, ...args);
      }
    };
    const out = (await withTimeout(call(), this.timeoutMs)) as number[];
    // Every op answers an array; reserve has the time at [3], settle and release at [1].
    this.serverNow = args[0] === 'r' ? out[3]! : out[1]!;
    return out;
  }

  private cachedDenial(buckets: readonly LimitBucket[], cost: readonly number[]): ReserveResult | undefined {
    if (this.denied.size === 0) return undefined;
    const now = this.clock.now();
    let at = -1;
    let wait = 0;
    let entry: DenyEntry | undefined;
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      if (b.shadow) continue;
      const key = this.prefix + b.key;
      const e = this.denied.get(key);
      if (!e) continue;
      if (e.until <= now) {
        this.denied.delete(key);
        continue;
      }
      if (b.limit > e.limit || b.burst > e.burst) continue;
      if (cost[i]! >= e.cost && e.until - now > wait) {
        at = i;
        wait = e.until - now;
        entry = e;
      }
    }
    if (at < 0 || !entry) return undefined;
    this.counters.cachedDenials++;
    const elapsed = now - entry.at;
    const states = buckets.map((b) => {
      const s = entry.states.get(this.prefix + b.key);
      return s
        ? { ...s, resetMs: Math.max(0, s.resetMs - elapsed) }
        : toBucketState(b, bucketUnits(b).limit + bucketUnits(b).burst, 0);
    });
    return { ok: false, bucketIndex: at, retryAfterMs: wait, states };
  }

  private rememberDenial(
    buckets: readonly LimitBucket[],
    i: number,
    cost: number,
    retryAfterMs: number,
    states: BucketState[],
  ): void {
    const b = buckets[i]!;
    if (this.denyMaxMs <= 0 || b.algorithm === 'lease' || !(retryAfterMs > 0)) return;
    const now = this.clock.now();
    const key = this.prefix + b.key;
    if (!this.denied.has(key) && this.denied.size >= this.denySize)
      this.denied.delete(this.denied.keys().next().value as string);
    const byKey = new Map<string, BucketState>();
    for (let j = 0; j < buckets.length; j++) byKey.set(this.prefix + buckets[j]!.key, states[j]!);
    this.denied.set(key, {
      until: now + Math.min(retryAfterMs, this.denyMaxMs),
      cost,
      at: now,
      states: byKey,
      limit: b.limit,
      burst: b.burst,
    });
  }
}

/** The `{...}` hash tag of a bucket key, or `{}`-less key itself when it has none. */
export function hashTag(key: string): string {
  const m = /\{[^}]*\}/.exec(key);
  return m ? m[0] : `{${key}}`;
}
