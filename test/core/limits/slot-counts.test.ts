/**
 * SlotCounts (the sliding window's slot → count map with its first slot inline) behaves exactly as a
 * Map for any sequence of sets, deletes and clears.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotCounts } from '../../../src/core/limits/sliding-window.js';

type Op = { op: 'set'; slot: number; value: number } | { op: 'delete'; slot: number } | { op: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('set' as const),
      slot: fc.integer({ min: -2, max: 8 }),
      value: fc.integer({ min: 1, max: 99 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('delete' as const), slot: fc.integer({ min: -2, max: 8 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const) }) },
);

describe('SlotCounts', () => {
  it('agrees with a Map after every operation', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const a = new SlotCounts();
        const m = new Map<number, number>();
        for (const o of ops) {
          if (o.op === 'set') {
            a.set(o.slot, o.value);
            m.set(o.slot, o.value);
          } else if (o.op === 'delete') {
            a.delete(o.slot);
            m.delete(o.slot);
          } else {
            a.clear();
            m.clear();
          }
          expect(a.size).toBe(m.size);
          expect([...a.keys()].sort()).toEqual([...m.keys()].sort());
          for (let j = -2; j <= 8; j++) {
            expect(a.get(j)).toBe(m.get(j));
            expect(a.has(j)).toBe(m.has(j));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
