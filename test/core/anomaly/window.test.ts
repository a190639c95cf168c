import { describe, expect, it } from 'vitest';
import { capMap, RecentSet } from '../../../src/core/anomaly/window.js';
import { prng } from '../../helpers/prng.js';

/** What capMap did before its eviction iterator was kept: a fresh `keys().next()` per dropped entry. */
function referenceCap<K, V>(m: Map<K, V>, cap: number): void {
  while (m.size > cap) m.delete(m.keys().next().value as K);
}

describe('capped maps and recent sets', () => {
  it('capMap drops the oldest insertions exactly as a fresh keys().next() would, whatever else changes the map', () => {
    const rnd = prng(11);
    for (let round = 0; round < 100; round++) {
      const cap = 1 + Math.floor(rnd() * 30);
      const a = new Map<number, number>();
      const b = new Map<number, number>();
      for (let i = 0; i < 300; i++) {
        const op = rnd();
        const k = Math.floor(rnd() * 70);
        if (op < 0.6) {
          // 1. New or updated entries, then the cap.
          a.set(k, i);
          b.set(k, i);
          referenceCap(a, cap);
          capMap(b, cap);
        } else if (op < 0.8) {
          // 2. Deletions elsewhere in the map.
          a.delete(k);
          b.delete(k);
        } else if (op < 0.82) {
          // 3. A clear: the kept iterator must start again.
          a.clear();
          b.clear();
        } else {
          // 4. A tighter cap for once (several entries dropped in one call).
          const c = Math.max(1, cap - 4);
          referenceCap(a, c);
          capMap(b, c);
        }
        if (JSON.stringify([...b]) !== JSON.stringify([...a])) expect([...b]).toEqual([...a]);
      }
      expect([...b]).toEqual([...a]);
    }
  });

  it('RecentSet evicts its oldest member first when full, and keeps first/last sightings', () => {
    const rnd = prng(5);
    const cap = 8;
    const set = new RecentSet<number>(cap);
    const ref = new Map<number, { first: number; last: number }>();
    for (let now = 0; now < 2000; now++) {
      const k = Math.floor(rnd() * 20);
      const e = ref.get(k);
      const expected = e ? e.last : Number.NEGATIVE_INFINITY;
      if (e) e.last = now;
      else {
        if (ref.size >= cap) ref.delete(ref.keys().next().value as number);
        ref.set(k, { first: now, last: now });
      }
      expect(set.touch(k, now)).toBe(expected);
      expect(set.size).toBe(ref.size);
    }
    expect(set.membersSeenSince(0, 100)).toEqual([...ref.keys()]);
    expect(set.countNewSince(1990)).toBe([...ref.values()].filter((e) => e.first >= 1990).length);
  });

  it('RecentSet answers as a plain map lookup when sightings repeat the last member (its one-entry cache)', () => {
    // Runs of the same member (the cache's hits), members evicted while they were the last one seen
    // and sighted again at once, and equal strings that are different objects.
    const rnd = prng(23);
    for (let round = 0; round < 40; round++) {
      const cap = 1 + Math.floor(rnd() * 6);
      const set = new RecentSet<string>(cap);
      const ref = new Map<string, { first: number; last: number }>();
      let k = 'm0';
      for (let now = 0; now < 600; now++) {
        const r = rnd();
        // 1. Mostly the same member again; 2. another one (a fresh string, sometimes of the same text).
        if (r >= 0.55) k = `m${Math.floor(rnd() * (cap + 3))}`;
        else if (r < 0.1) k = `${k.slice(0, 1)}${k.slice(1)}`;
        const e = ref.get(k);
        const expected = e ? e.last : Number.NEGATIVE_INFINITY;
        if (e) e.last = now;
        else {
          if (ref.size >= cap) ref.delete(ref.keys().next().value as string);
          ref.set(k, { first: now, last: now });
        }
        expect(set.touch(k, now)).toBe(expected);
        expect(set.size).toBe(ref.size);
        expect(set.lastSeen(k)).toBe(now);
        const since = now - Math.floor(rnd() * 20);
        expect(set.membersSeenSince(since, 100)).toEqual(
          [...ref].filter(([, v]) => v.last >= since).map(([m]) => m),
        );
        expect(set.countNewSince(since)).toBe([...ref.values()].filter((v) => v.first >= since).length);
      }
    }
  });

  it('RecentSet numbers members as the map does (0 and -0 one member, NaN one member)', () => {
    const rnd = prng(29);
    const pool = [0, -0, Number.NaN, 1, 2, 0.5, 2 ** 40];
    const set = new RecentSet<number>(4);
    const ref = new Map<number, { first: number; last: number }>();
    let k = 0;
    for (let now = 0; now < 3000; now++) {
      if (rnd() < 0.5) k = pool[Math.floor(rnd() * pool.length)]!;
      const e = ref.get(k);
      const expected = e ? e.last : Number.NEGATIVE_INFINITY;
      if (e) e.last = now;
      else {
        if (ref.size >= 4) ref.delete(ref.keys().next().value as number);
        ref.set(k, { first: now, last: now });
      }
      expect(set.touch(k, now)).toBe(expected);
      expect(set.membersSeenSince(0, 100)).toEqual([...ref.keys()]);
    }
  });

  it('a full map keeps evicting in insertion order through long churn (the eviction iterator survives rebuilds)', () => {
    const m = new Map<number, number>();
    for (let i = 0; i < 50_000; i++) {
      m.set(i, i);
      capMap(m, 1000);
    }
    expect(m.size).toBe(1000);
    expect(m.keys().next().value).toBe(49_000);
    expect([...m.keys()].at(-1)).toBe(49_999);
  });
});
