/**
 * LimitStore on Redis Cluster (issue 18). A script call may only touch keys of one hash slot, so a
 * request's buckets are grouped by hash tag (see src/core/limits/plan.ts):
 *
 *   phase 1  the principal's group, `{t:<tenant>}`: key, project, tenant and end-user limits — one
 *            slot, one script call, all or none (exactly as on a single Redis);
 *   phase 2  every other group — tier `{r:..}`, IP `{i:..}`, global `{g}`, fair share — one call
 *            each, in a fixed order, each all or none within itself.
 *
 * If a later group denies (or fails), every group already reserved is COMPENSATED: settled to zero
 * and its leases released, so the request costs nothing anywhere, as on a single Redis. Guarantees,
 * per shape (also in docs/scaling.md):
 *   - only phase-1 buckets (the common case): exact, identical to a single Redis;
 *   - with phase-2 buckets: no over-admission (a request is admitted only after every group admitted
 *     it, and nothing is ever admitted on a guess). Between a phase-1 reservation and its
 *     compensation (one round trip), other requests may see that capacity as used: a transient
 *     over-count that errs on refusing. If the process dies between phases, the phase-1 reservation
 *     is not compensated: the request counts as made (refusing, never admitting, too much).
 *   - a store error in any phase throws after compensating what it can: the resilient store then
 *     applies each limit's `onStoreFailure` (documented degraded behaviour).
 * A request whose buckets share one tag costs one round trip; each extra tag costs one more.
 */
import type { Cluster, Redis } from 'ioredis';
import { bucketUnits, toBucketState } from '../../core/limits/buckets.js';
import type {
  BucketState,
  LimitBucket,
  LimitStore,
  Reservation,
  ReserveInput,
  ReserveResult,
} from '../../core/ports.js';
import { hashTag, RedisLimitStore, type RedisLimitStoreOptions, withTimeout } from '../redis-limit-store.js';

interface Part {
  /** Indexes of the part's buckets in the request. */
  idx: number[];
  meta: unknown;
}

interface ClusterMeta {
  parts: Part[];
}

function isClusterMeta(m: unknown): m is ClusterMeta {
  return typeof m === 'object' && m !== null && Array.isArray((m as ClusterMeta).parts);
}

/** Bucket indexes grouped by hash tag, the group of bucket 0 first, the others in tag order. */
export function groupsOf(buckets: readonly LimitBucket[]): number[][] {
  const by = new Map<string, number[]>();
  buckets.forEach((b, i) => {
    const tag = hashTag(b.key);
    const g = by.get(tag);
    if (g) g.push(i);
    else by.set(tag, [i]);
  });
  const first = buckets.length > 0 ? hashTag(buckets[0]!.key) : '';
  // A fixed order for the rest: two requests never wait on each other's groups in opposite orders.
  const rest = [...by.keys()].filter((t) => t !== first).sort();
  return [...(by.has(first) ? [by.get(first)!] : []), ...rest.map((t) => by.get(t)!)];
}

export class ClusterLimitStore implements LimitStore {
  private readonly inner: RedisLimitStore;
  private readonly redis: Redis | Cluster;
  private readonly counters = { compensations: 0, compensationFailures: 0 };

  constructor(opts: RedisLimitStoreOptions & { redis: Redis | Cluster }) {
    this.inner = new RedisLimitStore(opts);
    this.redis = opts.redis;
  }

  /** The inner store's counters, plus compensations made (and failed) after a later group denied. */
  stats() {
    return { ...this.inner.stats(), ...this.counters };
  }

  /**
   * Resolves when EVERY master of the slot map answers (a cluster client stays 'ready' while one
   * master is lost, and a ping to any one node would then report a cluster that cannot serve that
   * master's slots as healthy). Used by the resilient store's recovery probe.
   */
  async ping(): Promise<void> {
    const c = this.redis as Cluster;
    if (!Array.isArray(c.slots) || typeof c.nodes !== 'function') return this.inner.ping();
    const masters = new Set<string>();
    for (const owners of c.slots) if (owners?.[0]) masters.add(owners[0]);
    const byKey = new Map(c.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
    await Promise.all(
      [...masters].map(async (key) => {
        const node = byKey.get(key);
        if (!node) {
          // A master whose connection ended is dropped from the client's pool and only comes back
          // when the slot map is refreshed, which no command triggers while degraded: ask for it.
          (c as Cluster & { refreshSlotsCache?(cb?: () => void): void }).refreshSlotsCache?.(() => {});
          throw new Error(`cluster master ${key} is not connected`);
        }
        await withTimeout(node.ping(), 250);
      }),
    );
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    const groups = groupsOf(input.buckets);
    if (groups.length <= 1) return this.inner.reserve(input);
    const { buckets, costs, requestId } = input;
    const n = buckets.length;
    const states: (BucketState | undefined)[] = new Array(n);
    const shadowDenied: string[] = [];
    const done: { part: Part; res: Reservation }[] = [];
    for (const idx of groups) {
      let r: ReserveResult;
      try {
        r = await this.inner.reserve({
          buckets: idx.map((i) => buckets[i]!),
          costs: idx.map((i) => costs[i] ?? 0),
          requestId,
        });
      } catch (err) {
        await this.compensate(done.map((d) => d.res));
        throw err;
      }
      r.states.forEach((s, j) => {
        states[idx[j]!] = s;
      });
      if (!r.ok) {
        await this.compensate(done.map((d) => d.res));
        return {
          ok: false,
          bucketIndex: idx[r.bucketIndex]!,
          retryAfterMs: r.retryAfterMs,
          // Groups not reached are reported as their policy allowance (not read: it saves round trips).
          states: buckets.map((b, i) => states[i] ?? fullState(b)),
        };
      }
      shadowDenied.push(...r.shadowDenied);
      done.push({ part: { idx, meta: r.reservation.meta }, res: r.reservation });
    }
    return {
      ok: true,
      reservation: {
        requestId,
        buckets,
        costs: costs.slice(0, n),
        meta: { parts: done.map((d) => d.part) } satisfies ClusterMeta,
      },
      states: states.map((s, i) => s ?? fullState(buckets[i]!)),
      shadowDenied,
    };
  }

  async settle(reservation: Reservation, actualCosts: number[]): Promise<void> {
    const meta = reservation.meta;
    if (!isClusterMeta(meta)) return this.inner.settle(reservation, actualCosts);
    await Promise.all(
      meta.parts.map((p) =>
        this.inner.settle(
          partOf(reservation, p),
          p.idx.map((i) => actualCosts[i]!),
        ),
      ),
    );
  }

  async release(reservation: Reservation): Promise<void> {
    const meta = reservation.meta;
    if (!isClusterMeta(meta)) return this.inner.release(reservation);
    await Promise.all(meta.parts.map((p) => this.inner.release(partOf(reservation, p))));
  }

  async peek(buckets: LimitBucket[]): Promise<BucketState[]> {
    const groups = groupsOf(buckets);
    if (groups.length <= 1) return this.inner.peek(buckets);
    const out: BucketState[] = new Array(buckets.length);
    await Promise.all(
      groups.map(async (idx) => {
        const s = await this.inner.peek(idx.map((i) => buckets[i]!));
        s.forEach((x, j) => {
          out[idx[j]!] = x;
        });
      }),
    );
    return out;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Undoes reservations of earlier groups: settled to zero (a refund), leases released. */
  private async compensate(reservations: Reservation[]): Promise<void> {
    await Promise.all(
      reservations.map(async (res) => {
        this.counters.compensations++;
        try {
          await this.inner.settle(
            res,
            res.buckets.map(() => 0),
          );
          await this.inner.release(res);
        } catch {
          // Left charged: the request counts as made there (errs on refusing) until the state expires.
          this.counters.compensationFailures++;
        }
      }),
    );
  }
}

function partOf(r: Reservation, p: Part): Reservation {
  return {
    requestId: r.requestId,
    buckets: p.idx.map((i) => r.buckets[i]!),
    costs: p.idx.map((i) => r.costs[i] ?? 0),
    meta: p.meta,
  };
}

function fullState(b: LimitBucket): BucketState {
  const u = bucketUnits(b);
  return toBucketState(b, u.limit + u.burst, 0);
}
