/**
 * A per-upstream circuit breaker: a pure state machine over a Clock (no timers).
 *
 *   closed    --(N consecutive failures, or failure ratio >= R over >= M calls in the window)--> open
 *   open      --(cooldown elapsed)-->                                                           half-open
 *   half-open --(the one probe succeeds)--> closed;  --(it fails)--> open (cooldown restarts)
 *
 * Outcomes of calls that were admitted in an earlier state (a slow call admitted while closed
 * that finishes after the breaker opened) do not move the state: only closed-state calls count
 * toward opening, and only the probe decides a half-open breaker.
 */
import type { Clock } from '../core/ports.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** Failure ratio (0..1] over the window that opens the breaker once `minCalls` calls were seen. */
  failureRatio: number;
  /** Calls in the window before the ratio is trusted. */
  minCalls: number;
  /** Length of the sliding window for the ratio, in ms. */
  windowMs: number;
  /** Time an open breaker waits before letting one probe through, in ms. */
  cooldownMs: number;
}

/**
 * Defaults: 5 consecutive failures, or half of at least 20 calls in 30 s, open the breaker for 15 s.
 * A flapping upstream is cut off within seconds; one that fails now and then never is.
 */
export const DEFAULT_BREAKER: BreakerOptions = {
  failureThreshold: 5,
  failureRatio: 0.5,
  minCalls: 20,
  windowMs: 30_000,
  cooldownMs: 15_000,
};

/** The decision to let a call through. A refusal is a value carrying the time until the next probe. */
export type BreakerPermit = { ok: true; probe: boolean } | { ok: false; retryAfterMs: number };

/** 10 buckets: the ratio window slides in tenths, so an old burst of failures ages out smoothly. */
const BUCKETS = 10;

export class CircuitBreaker {
  readonly options: BreakerOptions;
  private st: BreakerState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  private probeInFlight = false;
  /** Per-bucket [calls, failures]; `bucketEpoch[i]` is the bucket index (time / width) the counts belong to. */
  private readonly calls = new Array<number>(BUCKETS).fill(0);
  private readonly failures = new Array<number>(BUCKETS).fill(0);
  private readonly bucketEpoch = new Array<number>(BUCKETS).fill(-1);

  constructor(
    private readonly clock: Clock,
    options: Partial<BreakerOptions> = {},
  ) {
    this.options = { ...DEFAULT_BREAKER, ...options };
  }

  /** The state now (an open breaker whose cooldown elapsed reads as half-open). */
  state(): BreakerState {
    if (this.st === 'open' && this.clock.now() - this.openedAt >= this.options.cooldownMs)
      this.st = 'half-open';
    return this.st;
  }

  /**
   * Asks to make a call. Closed: always ok. Half-open: ok for exactly one caller (the probe) until
   * it reports. Open: refused with the time left in the cooldown.
   */
  acquire(): BreakerPermit {
    const s = this.state();
    if (s === 'closed') return { ok: true, probe: false };
    if (s === 'half-open' && !this.probeInFlight) {
      this.probeInFlight = true;
      return { ok: true, probe: true };
    }
    const left = this.openedAt + this.options.cooldownMs - this.clock.now();
    return { ok: false, retryAfterMs: Math.max(0, left) };
  }

  /** The call admitted by `acquire` succeeded. */
  success(probe: boolean): void {
    if (probe) {
      this.probeInFlight = false;
      this.close();
      return;
    }
    if (this.state() !== 'closed') return;
    this.consecutive = 0;
    this.record(false);
  }

  /** The call admitted by `acquire` failed (transport error, 5xx, broken stream). */
  failure(probe: boolean): void {
    if (probe) {
      this.probeInFlight = false;
      this.open();
      return;
    }
    if (this.state() !== 'closed') return;
    this.consecutive++;
    const { calls, failures } = this.record(true);
    const o = this.options;
    if (
      this.consecutive >= o.failureThreshold ||
      (calls >= o.minCalls && failures / calls >= o.failureRatio)
    ) {
      this.open();
    }
  }

  /** The call ended with no verdict on the upstream (the client went away): frees the probe slot. */
  cancel(probe: boolean): void {
    if (probe) this.probeInFlight = false;
  }

  private open(): void {
    this.st = 'open';
    this.openedAt = this.clock.now();
    this.consecutive = 0;
  }

  private close(): void {
    this.st = 'closed';
    this.consecutive = 0;
    this.calls.fill(0);
    this.failures.fill(0);
    this.bucketEpoch.fill(-1);
  }

  /** Adds one outcome to the current bucket and returns the totals over the window. */
  private record(failed: boolean): { calls: number; failures: number } {
    const width = Math.max(1, this.options.windowMs / BUCKETS);
    const epoch = Math.floor(this.clock.now() / width);
    const i = epoch % BUCKETS;
    if (this.bucketEpoch[i] !== epoch) {
      this.bucketEpoch[i] = epoch;
      this.calls[i] = 0;
      this.failures[i] = 0;
    }
    this.calls[i]++;
    if (failed) this.failures[i]++;
    let calls = 0;
    let failures = 0;
    for (let j = 0; j < BUCKETS; j++) {
      if (epoch - this.bucketEpoch[j] < BUCKETS) {
        calls += this.calls[j];
        failures += this.failures[j];
      }
    }
    return { calls, failures };
  }
}
