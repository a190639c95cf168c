/**
 * OutputSketch keeps its histograms in per-key maps with a recency list (issue 11: `sluice simulate`
 * speed) instead of one map of `key + model` strings re-inserted on every observation. It must answer
 * exactly as that plain implementation did, evictions included: the reference below is the code it
 * replaced, and random sequences of observations and reads on small caps are compared step by step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutputSketch } from '../../../src/core/limits/output-estimate.js';

const STEPS = 8;
const BUCKETS = 21 * STEPS + 1;
const HALVE_AT = 2000;
const bucketOf = (t: number) => (t <= 0 ? 0 : Math.min(BUCKETS - 1, Math.ceil(STEPS * Math.log2(t + 1))));
const edgeOf = (b: number) => Math.ceil(2 ** (b / STEPS) - 1);

/** The implementation before: one Map in recency order, an entry deleted and set again when observed. */
class ReferenceSketch {
  private readonly hists = new Map<string, { n: number; counts: Uint32Array }>();
  constructor(private readonly maxKeys: number) {}
  get size(): number {
    return this.hists.size;
  }
  observe(keyId: string, model: string, outputTokens: number): void {
    if (!Number.isFinite(outputTokens) || outputTokens < 0) return;
    const b = bucketOf(outputTokens);
    this.add(`k\u0000${keyId}\u0000${model}`, b);
    this.add(`m\u0000${model}`, b);
  }
  private add(id: string, b: number): void {
    let h = this.hists.get(id);
    if (h) this.hists.delete(id);
    else {
      h = { n: 0, counts: new Uint32Array(BUCKETS) };
      while (this.hists.size >= this.maxKeys) this.hists.delete(this.hists.keys().next().value as string);
    }
    this.hists.set(id, h);
    h.counts[b]! += 1;
    h.n++;
    if (h.n >= HALVE_AT) {
      let n = 0;
      for (let i = 0; i < BUCKETS; i++) {
        h.counts[i] = h.counts[i]! >>> 1;
        n += h.counts[i]!;
      }
      h.n = n;
    }
  }
  quantile(keyId: string | null, model: string, q: number, minSamples: number): number | undefined {
    const h = this.hists.get(keyId === null ? `m\u0000${model}` : `k\u0000${keyId}\u0000${model}`);
    if (!h || h.n < Math.max(1, minSamples)) return undefined;
    const rank = Math.ceil(Math.min(1, Math.max(0, q)) * h.n);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += h.counts[i]!;
      if (seen >= rank && seen > 0) return edgeOf(i);
    }
    return edgeOf(BUCKETS - 1);
  }
}

const KEYS = ['a', 'b', 'c', 'd', 'e'];
const MODELS = ['m1', 'm2', 'm3'];

describe('OutputSketch against the implementation it replaced', () => {
  it('answers every key and model alike after any sequence of observations, evictions included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(
          fc.record({
            key: fc.constantFrom(...KEYS),
            model: fc.constantFrom(...MODELS),
            tokens: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.constant(Number.NaN)),
          }),
          { maxLength: 200 },
        ),
        (cap, ops) => {
          const fast = new OutputSketch(cap);
          const ref = new ReferenceSketch(cap);
          for (const op of ops) {
            fast.observe(op.key, op.model, op.tokens);
            ref.observe(op.key, op.model, op.tokens);
            expect(fast.size).toBe(ref.size);
            for (const m of MODELS) {
              expect(fast.quantile(null, m, 0.95, 1)).toBe(ref.quantile(null, m, 0.95, 1));
              for (const k of KEYS) expect(fast.quantile(k, m, 0.5, 2)).toBe(ref.quantile(k, m, 0.5, 2));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('halves the counts of a busy histogram as before', () => {
    const fast = new OutputSketch(3);
    const ref = new ReferenceSketch(3);
    for (let i = 0; i < 5000; i++) {
      const tokens = i < 2500 ? 4000 : 50 + (i % 7);
      fast.observe('k', 'm', tokens);
      ref.observe('k', 'm', tokens);
    }
    for (const q of [0.05, 0.5, 0.95, 1])
      expect(fast.quantile('k', 'm', q, 10)).toBe(ref.quantile('k', 'm', q, 10));
  });
});
