/**
 * Bounded, time-bucketed state for the detectors. Pure: every method takes `now` (ms).
 */

/** Counters over fixed slots (e.g. 60 slots of 10 s = the last 10 minutes), several series at once. */
export class SlotRing {
  readonly ids: Float64Array;
  readonly data: Float64Array;

  constructor(
    readonly slots: number,
    readonly slotMs: number,
    readonly series: number,
  ) {
    this.ids = new Float64Array(slots).fill(-1);
    this.data = new Float64Array(slots * series);
  }

  /** Adds `v` to series `s` in the slot of `now`. O(series) when a slot is reused, O(1) otherwise. */
  add(now: number, s: number, v: number): void {
    const id = Math.floor(now / this.slotMs);
    const i = id % this.slots;
    if (this.ids[i] !== id) {
      this.ids[i] = id;
      this.data.fill(0, i * this.series, (i + 1) * this.series);
    }
    this.data[i * this.series + s]! += v;
  }

  /** Sum of series `s` over the last `n` slots including the current one. */
  sum(now: number, s: number, n: number): number {
    const cur = Math.floor(now / this.slotMs);
    let total = 0;
    for (let k = 0; k < n && k < this.slots; k++) {
      const id = cur - k;
      const i = id % this.slots;
      if (this.ids[i] === id) total += this.data[i * this.series + s]!;
    }
    return total;
  }

  /** Value of series `s` in the slot with absolute id `id` (0 if that slot is gone). */
  at(id: number, s: number): number {
    const i = id % this.slots;
    return this.ids[i] === id ? this.data[i * this.series + s]! : 0;
  }
}

/** First- and last-seen times of distinct members, capped: the oldest insertion is dropped first. */
export class RecentSet<K> {
  private readonly m = new Map<K, { first: number; last: number }>();
  /** Kept at the oldest member (see `oldestOf`). */
  private readonly oldest: Oldest<K> = { it: null };

  constructor(readonly cap: number) {
    // Strings and numbers (credential and text hashes) are members: the field holds both kinds from
    // the first set on. Holding only strings at first, it changed representation at the first
    // number, and every optimized function that had touched a set was thrown away.
    this.lastKey = 0 as K;
    this.lastKey = undefined;
  }

  /** Records a sighting; returns true if the member was new (or had been evicted). */
  see(k: K, now: number): boolean {
    return this.touch(k, now) === Number.NEGATIVE_INFINITY;
  }

  /**
   * The member of the last `touch` and its entry. Most sightings repeat the previous one (a key's
   * network, address and client; a network's fingerprint): compared with `Object.is`, that costs no
   * hash lookup. Still valid while the member is in `m`: a member only leaves by eviction, in
   * `touch`, which then sets these to the member it inserted. (`Object.is`, not `===`: it agrees
   * with the map's SameValueZero wherever it says "same", and the optimizing compiler does not
   * specialise it on the members seen first, strings, to throw that code away at the first number.)
   */
  private lastKey: K | undefined = undefined;
  private lastEntry: { first: number; last: number } | undefined = undefined;

  /** Records a sighting; returns when the member was last seen before (-Infinity if new). One lookup. */
  touch(k: K, now: number): number {
    let e = this.lastEntry;
    if (e === undefined || !Object.is(this.lastKey, k)) e = this.m.get(k);
    if (e) {
      this.lastKey = k;
      this.lastEntry = e;
      const prev = e.last;
      // (sightings dated by when a request was sent can come out of order: the latest stays)
      if (now > prev) e.last = now;
      return prev;
    }
    if (this.m.size >= this.cap) this.m.delete(oldestOf(this.m, this.oldest));
    e = { first: now, last: now };
    this.m.set(k, e);
    this.lastKey = k;
    this.lastEntry = e;
    return Number.NEGATIVE_INFINITY;
  }

  /** When `k` was first seen (-Infinity if it is not a member). */
  firstSeenOf(k: K): number {
    return this.m.get(k)?.first ?? Number.NEGATIVE_INFINITY;
  }

  /** Members first seen since `since` (`fresh`) and before it. */
  membersSplitAt(since: number): { fresh: K[]; before: K[] } {
    const fresh: K[] = [];
    const before: K[] = [];
    for (const [k, e] of this.m) (e.first >= since ? fresh : before).push(k);
    return { fresh, before };
  }

  /** Members seen since `since`. */
  countSeenSince(since: number): number {
    let n = 0;
    for (const e of this.m.values()) if (e.last >= since) n++;
    return n;
  }

  /** Members first seen since `since`. */
  countNewSince(since: number): number {
    let n = 0;
    for (const e of this.m.values()) if (e.first >= since) n++;
    return n;
  }

  /** Members first seen before `firstBefore` and seen since `lastSince` (in use then, not new since). */
  countActiveBefore(firstBefore: number, lastSince: number): number {
    let n = 0;
    for (const e of this.m.values()) if (e.first < firstBefore && e.last >= lastSince) n++;
    return n;
  }

  /**
   * Of the members first seen in [from, to], how many were seen again at least `gap` ms after their
   * first sighting (0: seen again at all), and how many were seen again only within `gap` of it
   * (`burstOnly`).
   */
  returnedOf(from: number, to: number, gap = 0): { first: number; returned: number; burstOnly: number } {
    let first = 0;
    let returned = 0;
    let burstOnly = 0;
    for (const e of this.m.values())
      if (e.first >= from && e.first <= to) {
        first++;
        if (e.last > e.first) {
          if (e.last - e.first >= gap) returned++;
          // Seen again, but only within `gap` of its first sighting.
          else burstOnly++;
        }
      }
    return { first, returned, burstOnly };
  }

  membersSeenSince(since: number, max = 50): K[] {
    const out: K[] = [];
    for (const [k, e] of this.m) {
      if (e.last >= since) out.push(k);
      if (out.length >= max) break;
    }
    return out;
  }

  /** When `k` was last seen (undefined if unknown). */
  lastSeen(k: K): number | undefined {
    return this.m.get(k)?.last;
  }

  get size(): number {
    return this.m.size;
  }
}

/** An iterator over a capped map's keys, kept where the last eviction left it. */
interface Oldest<K> {
  it: Iterator<K> | null;
}

/**
 * The oldest key of `m` (which must not be empty), from an iterator that stays where the last
 * eviction left it: everything before it was evicted, so its next key is the oldest. A fresh
 * `m.keys().next()` would step over every entry deleted since the map's table was last rebuilt —
 * up to half its capacity, evicted in order at its front — making a full map's eviction O(cap)
 * (15 µs at 20,000 entries) instead of O(1).
 */
function oldestOf<K>(m: Map<K, unknown>, o: Oldest<K>): K {
  let r = o.it?.next();
  // Done: the iterator had reached the end (a done iterator never sees later insertions).
  if (!r || r.done) {
    o.it = m.keys();
    r = o.it.next();
  }
  return r.value as K;
}

/** The eviction iterator of each map `capMap` caps. */
const capped = new WeakMap<Map<unknown, unknown>, Oldest<unknown>>();

/** Caps a Map by dropping its oldest insertion; returns the map for chaining. O(1) per dropped entry. */
export function capMap<K, V>(m: Map<K, V>, cap: number): Map<K, V> {
  if (m.size <= cap) return m;
  let o = capped.get(m) as Oldest<K> | undefined;
  if (!o) {
    o = { it: null };
    capped.set(m, o as Oldest<unknown>);
  }
  while (m.size > cap) m.delete(oldestOf(m, o));
  return m;
}
