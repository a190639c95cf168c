/**
 * Which limits a request pushed past 80% or 100% of their capacity, so the gateway raises an alert
 * on the crossing only, not on every request while a limit stays high.
 *
 * Edge-triggered with hysteresis: a bucket is remembered (by its storage key) once it reaches 80%,
 * reported again only when it climbs to a higher level, and re-armed when its use falls back under
 * 70% (window rolled over, GCRA refilled). Memory holds only buckets at or above 80%, capped.
 * Because it compares against what it saw last rather than against this request's cost, a jump made
 * by a settle (reserved estimate replaced by real usage) is caught on the next request.
 */
import type { BucketState, LimitBucket } from '../core/ports.js';
import type { AlertEvent } from './alerts.js';

export type LimitLevel = 0 | 80 | 100;

/** A bucket that reached a threshold with this request. */
export interface LimitCrossing {
  /** Index into the buckets/states given to `crossings`. */
  index: number;
  threshold: 80 | 100;
  /** Policy limit id, e.g. `rpm`. */
  id: string;
  /** Scope as written in the policy: `key`, `tenant`, ... */
  per: string;
  kind: BucketState['kind'];
  limit: number;
  remaining: number;
  windowMs: number;
  shadow: boolean;
}

/** Fraction of a bucket's capacity (limit plus GCRA burst) in use; 0 for a zero-capacity bucket. */
export function usedRatio(bucket: LimitBucket, state: BucketState): number {
  const capacity = bucket.limit + (bucket.algorithm === 'gcra' ? bucket.burst : 0);
  if (!(capacity > 0)) return 0;
  if (state.remaining <= 0) return 1;
  return (capacity - state.remaining) / capacity;
}

function levelOf(ratio: number): LimitLevel {
  return ratio >= 1 ? 100 : ratio >= 0.8 ? 80 : 0;
}

const NONE: readonly LimitCrossing[] = Object.freeze([]);

export interface LimitWatchOptions {
  /** Most buckets remembered at once; the oldest is forgotten first (default 100,000). */
  maxTracked?: number;
  /** Use fraction under which a bucket is re-armed (default 0.7). */
  rearmBelow?: number;
}

/** Remembers which buckets already crossed a threshold. One per process; not shared between instances. */
export class LimitWatch {
  private readonly levels = new Map<string, LimitLevel>();
  private readonly maxTracked: number;
  private readonly rearmBelow: number;

  constructor(opts: LimitWatchOptions = {}) {
    this.maxTracked = Math.max(1, opts.maxTracked ?? 100_000);
    this.rearmBelow = opts.rearmBelow ?? 0.7;
  }

  /**
   * Call with a reservation's buckets and the states the store returned (allowed or denied, same
   * order). Returns the crossings, 80 before 100 when a request jumps both; an empty frozen array
   * (no allocation) when there are none, which is nearly always.
   */
  crossings(buckets: readonly LimitBucket[], states: readonly BucketState[]): readonly LimitCrossing[] {
    let out: LimitCrossing[] | undefined;
    const n = Math.min(buckets.length, states.length);
    for (let i = 0; i < n; i++) {
      const b = buckets[i];
      const s = states[i];
      const ratio = usedRatio(b, s);
      const level = levelOf(ratio);
      if (level === 0) {
        if (ratio < this.rearmBelow && this.levels.size > 0) this.levels.delete(b.key);
        continue;
      }
      const prev = this.levels.get(b.key) ?? 0;
      if (level <= prev) continue;
      // Re-insert so the Map's order is least recently raised first (what the cap evicts).
      this.levels.delete(b.key);
      this.levels.set(b.key, level);
      if (this.levels.size > this.maxTracked) {
        const oldest = this.levels.keys().next().value;
        if (oldest !== undefined) this.levels.delete(oldest);
      }
      out ??= [];
      if (prev < 80) out.push(crossing(i, 80, b, s));
      if (level === 100) out.push(crossing(i, 100, b, s));
    }
    return out ?? NONE;
  }

  /** Buckets remembered at 80% or more. */
  get tracked(): number {
    return this.levels.size;
  }
}

function crossing(index: number, threshold: 80 | 100, b: LimitBucket, s: BucketState): LimitCrossing {
  return {
    index,
    threshold,
    id: b.id,
    per: b.per,
    kind: b.kind,
    limit: b.limit,
    remaining: s.remaining,
    windowMs: b.windowMs,
    shadow: b.shadow,
  };
}

const FIVE_MINUTES = 300_000;
const ONE_DAY = 86_400_000;

function windowText(ms: number): string {
  if (ms % ONE_DAY === 0) return `${ms / ONE_DAY}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * The alert for a crossing. Deduplicated per type, tenant, key (for per-key limits) and limit id,
 * once per limit window (at least 5 minutes, at most a day).
 */
export function crossingAlert(
  c: LimitCrossing,
  who: { tenantId: string | null; keyId?: string | null },
): AlertEvent {
  const perKey = c.per === 'key';
  const subject =
    perKey && who.keyId ? `key ${who.keyId}` : who.tenantId ? `tenant ${who.tenantId}` : 'caller';
  const cap =
    c.kind === 'concurrent' ? `${c.limit} concurrent` : `${c.limit} ${c.kind} per ${windowText(c.windowMs)}`;
  return {
    type: c.threshold === 100 ? 'limit.100' : 'limit.80',
    tenantId: who.tenantId,
    keyId: perKey ? (who.keyId ?? null) : null,
    limitId: c.id,
    message: `${subject} reached ${c.threshold}% of limit "${c.id}" (${cap}, per ${c.per})${c.shadow ? ' [shadow]' : ''}`,
    details: {
      limit: c.limit,
      remaining: c.remaining,
      kind: c.kind,
      per: c.per,
      windowMs: c.windowMs,
      shadow: c.shadow,
    },
    dedupeMs: Math.min(ONE_DAY, Math.max(FIVE_MINUTES, c.windowMs)),
  };
}
