/**
 * Accuracy properties of the limit engine (GCRA, sliding window, leases, all-or-none across buckets,
 * settle and release), driven through MemoryLimitStore with a fake clock and compared with the
 * independent reference models in ./models.ts. For any configuration and any interleaving:
 *  1. every decision equals the model's: nothing that fits is denied, nothing that does not fit is
 *     admitted, and the wait is the model's exact wait (leases: the documented hint);
 *  2. rates: for each admission at t and any s ≤ t, the net cost charged in [s, t] is at most
 *     N + B + (t − s)·N/W (the GCRA bound: the allowance plus what refilled);
 *  3. windows: at each admission, the usage booked in the preceding W is at most the limit;
 *  4. leases: live leases never exceed the cap;
 *  5. settle is applied once per reservation (the first one, if it comes within SETTLE_WINDOW_MS;
 *     later ones change nothing, so nothing is left behind per request), and what remains
 *     after settles equals the model's remaining;
 *  6. a denied request charges nothing anywhere.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SETTLE_WINDOW_MS } from '../../../src/core/limits/buckets.js';
import type { LimitBucket, Reservation } from '../../../src/core/ports.js';
import { MemoryLimitStore } from '../../../src/stores/memory-limit-store.js';
import { type BucketModel, LeaseModel, modelFor, TokenBucketModel, WindowModel } from './models.js';

const HOUR = 3_600_000;

const bucketArb = (i: number): fc.Arbitrary<LimitBucket> =>
  fc.oneof(
    fc
      .record({
        limit: fc.integer({ min: 1, max: 40 }),
        burst: fc.integer({ min: 0, max: 15 }),
        windowMs: fc.integer({ min: 1000, max: HOUR - 1 }),
        shadow: fc.boolean(),
      })
      .map(
        (r): LimitBucket => ({
          id: `r${i}`,
          key: `k:r${i}`,
          kind: 'tokens',
          algorithm: 'gcra',
          per: 'key',
          ...r,
        }),
      ),
    fc
      .record({
        limit: fc.integer({ min: 1, max: 60 }),
        windowMs: fc.integer({ min: HOUR, max: 30 * 24 * HOUR }),
        shadow: fc.boolean(),
      })
      .map(
        (r): LimitBucket => ({
          id: `w${i}`,
          key: `k:w${i}`,
          kind: 'tokens',
          algorithm: 'window',
          burst: 0,
          per: 'key',
          ...r,
        }),
      ),
    fc
      .record({
        limit: fc.integer({ min: 1, max: 4 }),
        windowMs: fc.integer({ min: 1000, max: 20_000 }),
      })
      .map(
        (r): LimitBucket => ({
          id: `l${i}`,
          key: `k:l${i}`,
          kind: 'concurrent',
          algorithm: 'lease',
          burst: 0,
          shadow: false,
          per: 'key',
          ...r,
        }),
      ),
  );

const configArb = fc
  .integer({ min: 1, max: 3 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => bucketArb(i))));

type Op =
  | { t: 'advance'; frac: number; scale: number }
  | { t: 'reserve'; costs: number[] }
  | { t: 'settle'; which: number; actual: number[] }
  | { t: 'release'; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      // Steps scaled to one bucket's window: from a millisecond to past a whole window.
      // (unbiased: the interesting instants are slot boundaries just past a window, not 0 or the max).
      frac: fc.oneof(
        fc.noBias(fc.integer({ min: 0, max: 1100 })).map((n) => n / 1000),
        fc.noBias(fc.integer({ min: 0, max: 1000 })).map((n) => n / 20_000),
        fc.noBias(fc.integer({ min: 950, max: 1050 })).map((n) => n / 1000),
      ),
      scale: fc.noBias(fc.nat({ max: 2 })),
    }),
  },
  {
    weight: 5,
    // Per mille of each bucket's allowance, up to 130% (so most fit, some never can).
    arbitrary: fc.record({
      t: fc.constant('reserve' as const),
      costs: fc.array(fc.noBias(fc.integer({ min: 0, max: 1300 })), { minLength: 3, maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      which: fc.nat(),
      actual: fc.array(fc.noBias(fc.integer({ min: 0, max: 1600 })), { minLength: 3, maxLength: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('release' as const), which: fc.nat() }) },
);

/** A per-mille fraction of a bucket's allowance, in whole units. */
function scaled(b: LimitBucket, perMille: number): number {
  return Math.floor(((b.limit + b.burst) * perMille) / 1000);
}

function checkRateBound(m: TokenBucketModel): void {
  // Worst s for an interval ending at an admission is an event time: check every pair.
  const { charges, admissions, n, b, w } = m;
  for (const at of admissions) {
    const t = charges[at]!.t;
    let sum = 0;
    for (let i = at; i >= 0; i--) {
      const c = charges[i]!;
      sum += c.amount;
      // sum·W ≤ (N + B)·W + (t − s)·N, all integers.
      expect(sum * w).toBeLessThanOrEqual((n + b) * w + (t - c.t) * n);
    }
  }
}

describe('limit accuracy (memory store, fake clock, reference models)', () => {
  it('matches the models and keeps every bound under any interleaving of reserve, settle and release', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        async (buckets, ops, offset) => {
          let now = 1_700_000_000_000 + offset;
          const clock = { now: () => now };
          const store = new MemoryLimitStore({ clock });
          const models: BucketModel[] = buckets.map((b) => modelFor(b, now));
          const held: { res: Reservation; settled: boolean; at: number }[] = [];
          let rid = 0;
          for (const op of ops) {
            if (op.t === 'advance') {
              now += Math.floor(op.frac * buckets[op.scale % buckets.length]!.windowMs);
            } else if (op.t === 'reserve') {
              const costs = buckets.map((b, i) =>
                b.algorithm === 'lease' ? (op.costs[i]! > 0 ? 1 : 0) : scaled(b, op.costs[i]!),
              );
              const id = `q${++rid}`;
              const before = buckets.map((_, i) => models[i]!.remaining(now));
              const decisions = buckets.map((_, i) => models[i]!.check(costs[i]!, id, now));
              let bound = -1;
              let wait = -1;
              decisions.forEach((d, i) => {
                if (!d.ok && !buckets[i]!.shadow && d.retryAfterMs > wait) {
                  bound = i;
                  wait = d.retryAfterMs;
                }
              });
              const r = await store.reserve({ buckets, costs, requestId: id });
              expect(r.ok).toBe(bound < 0);
              if (!r.ok) {
                expect(r.bucketIndex).toBe(bound);
                expect(r.retryAfterMs).toBe(decisions[bound]!.retryAfterMs);
                // 6. nothing charged anywhere
                const after = await store.peek(buckets);
                expect(after.map((s) => s.remaining)).toEqual(before);
                continue;
              }
              const shadowDenied: string[] = [];
              decisions.forEach((d, i) => {
                if (d.ok) models[i]!.charge(costs[i]!, id, now);
                else shadowDenied.push(buckets[i]!.id);
              });
              expect(r.shadowDenied).toEqual(shadowDenied);
              held.push({ res: r.reservation, settled: false, at: now });
            } else if (op.t === 'settle') {
              if (held.length === 0) continue;
              const h = held[op.which % held.length]!;
              const marks = (h.res.meta as { v: number[] }).v;
              const actual = buckets.map((b, i) => scaled(b, op.actual[i]!));
              await store.settle(h.res, actual);
              // The first settle is applied (whether or not it changes something); later ones are ignored.
              const deltas = buckets.map((b, i) =>
                b.algorithm === 'lease' || marks[i] === -1 ? 0 : actual[i]! - h.res.costs[i]!,
              );
              // Settles come at most SETTLE_WINDOW_MS after the reservation; later ones are refused.
              const late = now - h.at >= SETTLE_WINDOW_MS;
              const first = !h.settled;
              h.settled = true;
              if (first && !late) {
                deltas.forEach((d, i) => {
                  models[i]!.settle(d, h.res.requestId, now);
                });
              }
            } else {
              if (held.length === 0) continue;
              const h = held[op.which % held.length]!;
              await store.release(h.res);
              for (const m of models) m.release(h.res.requestId, now);
            }
            // 5. the store's remaining equals the model's after every operation
            const states = await store.peek(buckets);
            expect(states.map((s) => s.remaining)).toEqual(models.map((m) => m.remaining(now)));
          }
          for (const m of models) {
            if (m instanceof TokenBucketModel) checkRateBound(m);
            if (m instanceof WindowModel)
              for (const total of m.windowTotalsAtAdmission) expect(total).toBeLessThanOrEqual(m.limit);
            if (m instanceof LeaseModel)
              for (const live of m.liveCounts) expect(live).toBeLessThanOrEqual(m.cap);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('lets usage booked exactly one window ago leave (the counterexample of a run in the seventh session)', async () => {
    // limit 15 per hour; 3 booked at t0, then 6 and 7 at t0 + 1 h: the 3 has left, so 13 are in use.
    const t0 = 1_700_000_000_000;
    let now = t0;
    const store = new MemoryLimitStore({ clock: { now: () => now } });
    const buckets: LimitBucket[] = [
      {
        id: 'w0',
        key: 'k:w0',
        kind: 'tokens',
        algorithm: 'window',
        burst: 0,
        per: 'key',
        limit: 15,
        windowMs: 3_600_000,
        shadow: false,
      } as LimitBucket,
    ];
    const model = new WindowModel(15, 3_600_000);
    for (const [cost, at] of [
      [3, t0],
      [6, t0 + 3_600_000],
      [7, t0 + 3_600_000],
    ] as const) {
      now = at;
      const r = await store.reserve({ buckets, costs: [cost], requestId: `r${cost}` });
      expect(r.ok).toBe(model.check(cost, `r${cost}`, now).ok);
      model.charge(cost, `r${cost}`, now);
    }
    expect(model.windowTotalsAtAdmission).toEqual([3, 6, 13]);
    expect((await store.peek(buckets))[0]!.remaining).toBe(2);
  });
});
