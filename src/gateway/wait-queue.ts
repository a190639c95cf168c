/**
 * The admission wait queue's timing: a binary min-heap of waiters on their `wakeAt`, and ONE timer
 * armed for the earliest. When it fires, every waiter due (and not done) is handed to `onDue` at
 * once; what to do with them (priority, grouping by bucket, retrying) is the admission's business.
 */

/** Timer functions (tests pass a fake scheduler). */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface Waiting {
  wakeAt: number;
  done: boolean;
}

export class WaitQueue<W extends Waiting> {
  private readonly heap: W[] = [];
  private timer: unknown = null;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly timers: Timers,
    private readonly now: () => number,
    private readonly onDue: (due: W[]) => void,
  ) {}

  /** Adds a waiter (or puts one back with a new `wakeAt`). */
  push(w: W): void {
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.wakeAt <= w.wakeAt) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = w;
    this.arm();
  }

  /** Removes every waiter and the timer; returns the waiters. */
  drain(): W[] {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    return this.heap.splice(0);
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const due: W[] = [];
    while (this.heap.length > 0 && this.heap[0]!.wakeAt <= now) {
      const w = this.pop()!;
      if (!w.done) due.push(w);
    }
    if (due.length > 0) this.onDue(due);
    this.arm();
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0]!.done) this.pop();
    const top = this.heap[0];
    if (!top) {
      if (this.timer !== null) this.timers.clear(this.timer);
      this.timer = null;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timer !== null && this.timerAt <= top.wakeAt) return;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timerAt = top.wakeAt;
    this.timer = this.timers.set(() => this.fire(), Math.max(1, top.wakeAt - this.now()));
  }

  private pop(): W | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mv = last.wakeAt;
        if (l < h.length && h[l]!.wakeAt < mv) {
          m = l;
          mv = h[l]!.wakeAt;
        }
        if (r < h.length && h[r]!.wakeAt < mv) m = r;
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}
