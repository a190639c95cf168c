/**
 * Sliding-window counters for windows of one hour and longer (daily and monthly caps).
 *
 * The window W is cut into sub-buckets ("slots") of g = ⌈W / K⌉ ms, K = {@link WINDOW_SLOTS}, aligned
 * on multiples of g since the epoch. Slot j holds the cost booked while ⌊now / g⌋ = j. At time now,
 * with cur = ⌊now / g⌋, the counted usage is the sum of the slots whose LAST booking (`last`, the
 * time of the newest charge into the slot) lies within the window: last_j > now − W. Such a slot is
 * one of cur − K … cur (K + 1 slots); its older bookings count whole until its last one leaves. The
 * rule:
 *
 *   fits(c) ⇔ c = 0  or  used + c ≤ limit        (used = sum of counted slots)
 *
 * Guarantee (tested as a property): every booking admitted at t' ≤ last_j of its slot, so one within
 * (t − W, t] keeps its slot counted at t: at each admission everything admitted in the preceding W is
 * counted and the amount admitted in ANY window of length W never exceeds the limit. The price is
 * being conservative by at most one slot's spread (W/60: 24 minutes of a day, 12 hours of a month).
 *
 * Slot j stops counting at last_j + W, so retryAfter is exact and never longer than the window: the
 * first such instant at which enough old slots have left for the cost to fit (issue #15: it used to
 * be the slot's end + W, up to one slot more). Settling refunds into the slot the reservation was
 * booked in (if it is still counted: a refund of usage that already left changes nothing); an
 * overrun is booked in the current slot, as debt that later requests wait out.
 */
import { ceilDiv, floorDiv } from './units.js';

/** Slots per window: 60 keeps the Redis hash small and the over-count under 1/60 of the window. */
export const WINDOW_SLOTS = 60;

/** Slot length for a window. */
export function slotMs(windowMs: number): number {
  return ceilDiv(windowMs, WINDOW_SLOTS);
}

/**
 * Slot → count, the part of a Map that the window needs. Most states only ever hold one slot (a
 * tenant's or end user's day cap touched within one slot length), so the first slot is kept inline and
 * a Map is made only for a second one. Slots are ≥ 0 (time since the epoch), so −1 marks the inline
 * slot empty (a negative slot goes to the Map) and every field stays a small integer (no boxed doubles).
 */
export class SlotCounts {
  private j = -1;
  private v = 0;
  private more: Map<number, number> | undefined = undefined;

  get size(): number {
    return (this.j >= 0 ? 1 : 0) + (this.more?.size ?? 0);
  }

  get(slot: number): number | undefined {
    return slot === this.j && slot >= 0 ? this.v : this.more?.get(slot);
  }

  has(slot: number): boolean {
    return (slot === this.j && slot >= 0) || (this.more?.has(slot) ?? false);
  }

  set(slot: number, value: number): void {
    if (slot >= 0 && (slot === this.j || (this.j < 0 && !this.more?.has(slot)))) {
      this.j = slot;
      this.v = value;
    } else {
      this.more ??= new Map();
      this.more.set(slot, value);
    }
  }

  delete(slot: number): void {
    if (slot === this.j && slot >= 0) this.j = -1;
    else this.more?.delete(slot);
  }

  clear(): void {
    this.j = -1;
    this.more = undefined;
  }

  *keys(): IterableIterator<number> {
    if (this.j >= 0) yield this.j;
    if (this.more) yield* this.more.keys();
  }
}

/**
 * Counts per slot. `lo` is the oldest slot that may be non-zero (every slot below it is gone);
 * `sum` is the total of `slots`; `last` holds, per slot in `slots`, the time of its newest charge
 * (increasing with the slot). Mutated in place by the functions below. The state is its own slot
 * map (`slots` returns `this`): one object of seven small fields plus, once charged, a second small
 * one for `last` — about 80 B per tracked window key.
 */
export class WindowState extends SlotCounts {
  constructor(
    public g: number,
    public sum: number,
    public lo: number,
  ) {
    super();
  }

  get slots(): SlotCounts {
    return this;
  }

  private lastTimes: SlotCounts | undefined = undefined;

  /** Per slot, the time of its newest charge (made on the first charge: an untouched state has none). */
  get last(): SlotCounts {
    this.lastTimes ??= new SlotCounts();
    return this.lastTimes;
  }
}

export function newWindowState(windowMs: number, now: number): WindowState {
  const g = slotMs(windowMs);
  return new WindowState(g, 0, floorDiv(now, g));
}

/** When slot j's usage leaves the window: its newest charge + W (its end + W if unknown). */
export function slotLeavesAt(s: WindowState, j: number, windowMs: number): number {
  return (s.last.get(j) ?? (j + 1) * s.g - 1) + windowMs;
}

function clear(s: WindowState, lo: number): void {
  s.slots.clear();
  s.last.clear();
  s.sum = 0;
  s.lo = lo;
}

/**
 * Drops slots that left the window and moves `lo` to the oldest non-empty slot. A state written with
 * another slot length (the window was changed in the policy) is collapsed into the current slot:
 * conservative, the old usage keeps counting for one whole new window.
 */
export function windowAdvance(s: WindowState, windowMs: number, now: number): void {
  const g = slotMs(windowMs);
  if (s.g !== g) {
    const total = s.sum;
    s.g = g;
    clear(s, floorDiv(now, g));
    s.sum = total;
    if (total > 0) {
      s.slots.set(s.lo, total);
      s.last.set(s.lo, now);
    }
    return;
  }
  const cur = floorDiv(now, g);
  if (s.sum <= 0) {
    clear(s, cur);
    return;
  }
  const min = cur - WINDOW_SLOTS;
  if (min - s.lo > WINDOW_SLOTS + 1) {
    // Everything written is older than the window: no need to walk slot by slot.
    let newest = Number.NEGATIVE_INFINITY;
    for (const j of s.slots.keys()) if (j > newest) newest = j;
    if (newest < min) {
      clear(s, cur);
      return;
    }
  }
  while (s.lo < min) {
    const v = s.slots.get(s.lo);
    if (v !== undefined) {
      s.sum -= v;
      s.slots.delete(s.lo);
      s.last.delete(s.lo);
    }
    s.lo++;
  }
  // Skip empty slots so that `lo` names the oldest usage (for the reset time), and drop the oldest
  // slots whose newest charge has left the window; bounded by the newest slot.
  const stop = cur + WINDOW_SLOTS + 1;
  while (s.sum > 0 && s.lo < stop) {
    const v = s.slots.get(s.lo);
    if (v !== undefined) {
      if (slotLeavesAt(s, s.lo, windowMs) > now) break;
      s.sum -= v;
      s.slots.delete(s.lo);
      s.last.delete(s.lo);
    }
    s.lo++;
  }
  if (s.sum <= 0) clear(s, cur);
}

export interface WindowDecision {
  ok: boolean;
  /** 0 when ok; exact ms until the cost fits; Infinity when it never can. */
  retryAfterMs: number;
}

/** The window rule, on an advanced state. */
export function windowCheck(
  s: WindowState,
  limit: number,
  cost: number,
  now: number,
  windowMs: number,
): WindowDecision {
  if (cost <= 0 || s.sum + cost <= limit) return { ok: true, retryAfterMs: 0 };
  if (cost > limit) return { ok: false, retryAfterMs: Number.POSITIVE_INFINITY };
  let left = s.sum;
  // Walk the slots oldest first until enough of them have left. Bounded: slots span at most K + 1.
  for (let j = s.lo, end = s.lo + 2 * WINDOW_SLOTS + 2; j <= end; j++) {
    const v = s.slots.get(j);
    if (v === undefined) continue;
    left -= v;
    if (left + cost <= limit)
      return { ok: false, retryAfterMs: Math.max(1, slotLeavesAt(s, j, windowMs) - now) };
  }
  // Unreachable with a consistent state (left reaches 0); stay safe.
  return { ok: false, retryAfterMs: windowMs };
}

/** Books `cost` in the current slot; returns the slot (the reservation keeps it for a refund). */
export function windowCharge(s: WindowState, cost: number, now: number): number {
  const cur = floorDiv(now, s.g);
  if (cost <= 0) return cur;
  s.slots.set(cur, (s.slots.get(cur) ?? 0) + cost);
  s.last.set(cur, now);
  if (s.sum <= 0 || cur < s.lo) s.lo = cur;
  s.sum += cost;
  return cur;
}

/**
 * Replaces a reserved cost booked in `slot` by the actual one (`delta = actual − reserved`): a refund
 * comes out of that slot if it still counts; an overrun is booked now. State must be advanced.
 */
export function windowSettle(s: WindowState, slot: number, delta: number, now: number): void {
  if (delta > 0) {
    windowCharge(s, delta, now);
    return;
  }
  if (delta === 0 || slot < s.lo) return;
  const v = s.slots.get(slot);
  if (v === undefined) return;
  const take = Math.min(v, -delta);
  if (v - take <= 0) {
    s.slots.delete(slot);
    s.last.delete(slot);
  } else s.slots.set(slot, v - take);
  s.sum -= take;
}

export function windowRemaining(s: WindowState, limit: number): number {
  return Math.max(0, limit - s.sum);
}

/** Milliseconds until the oldest counted usage leaves the window (0 when nothing is counted). */
export function windowResetMs(s: WindowState, now: number, windowMs: number): number {
  return s.sum > 0 ? Math.max(0, slotLeavesAt(s, s.lo, windowMs) - now) : 0;
}
