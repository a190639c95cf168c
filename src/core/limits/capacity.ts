/**
 * Pure planning of an upstream's capacity and a tenant's fair share of it as limit buckets (no I/O,
 * no clock): for each capacity dimension, an `upstream:<name>` bucket (everyone on that upstream; key
 * `{u:<name>}:upstream:g:<r|t>`) at the capacity, and a `fair-share:<name>` bucket (the tenant; key
 * `{t:<tenant>}:fair-share:<name>:g:<r|t>`) at the tenant's share (`fair-share.ts`). The token
 * dimension adds `:tokens` to the ids. Each bucket holds about `burstMs` of its rate; a request larger
 * than that is still admitted once its bucket has drained (its burst is raised to its cost).
 */
import type { CostKind, LimitBucket } from '../ports.js';
import type { Capacity } from './fair-share.js';
import { keyPart } from './plan.js';

/** GCRA bucket for `perMinute` units holding about `burstMs` of them; a cost above that raises its burst. */
export function rateBucket(
  id: string,
  key: string,
  kind: CostKind,
  per: string,
  perMinute: number,
  burstMs: number,
  cost: number,
): LimitBucket {
  const depth = Math.max(1, Math.round((perMinute * burstMs) / 60_000));
  return {
    id,
    key,
    kind,
    algorithm: 'gcra',
    limit: depth,
    burst: Math.max(0, Math.ceil(cost) - depth),
    windowMs: Math.max(1, Math.round((depth * 60_000) / perMinute)),
    shadow: false,
    per,
  };
}

export interface CapacityPlanInput {
  /** The request's own buckets and costs; never mutated. */
  buckets: readonly LimitBucket[];
  costs: readonly number[];
  upstream: string;
  tenantId: string;
  /** Estimated tokens: the request's cost against token capacity. */
  tokens: number;
}

export interface PlannedBuckets {
  buckets: LimitBucket[];
  costs: number[];
}

/**
 * The request's own buckets, then its upstream's capacity buckets and its tenant's share buckets.
 * Without a capacity, the request's own arrays are returned as they are.
 */
export function planCapacity(
  req: CapacityPlanInput,
  cap: Capacity | undefined,
  share: Capacity,
  burstMs: number,
): PlannedBuckets {
  const own = req.buckets as LimitBucket[];
  const costs = req.costs as number[];
  if (!cap) return { buckets: own, costs };
  const buckets = own.slice();
  const out = costs.slice(0, own.length);
  const u = keyPart(req.upstream);
  const t = keyPart(req.tenantId);
  const add = (dim: 'r' | 't', total: number | undefined, mine: number | undefined) => {
    if (total === undefined || !(total > 0)) return;
    const kind: CostKind = dim === 'r' ? 'requests' : 'tokens';
    const cost = dim === 'r' ? 1 : req.tokens;
    const suffix = dim === 'r' ? '' : ':tokens';
    buckets.push(
      rateBucket(
        `upstream:${req.upstream}${suffix}`,
        `{u:${u}}:upstream:g:${dim}`,
        kind,
        'upstream',
        total,
        burstMs,
        cost,
      ),
    );
    out.push(cost);
    if (mine !== undefined && mine > 0) {
      buckets.push(
        rateBucket(
          `fair-share:${req.upstream}${suffix}`,
          `{t:${t}}:fair-share:${u}:g:${dim}`,
          kind,
          'tenant',
          Math.min(total, mine),
          burstMs,
          cost,
        ),
      );
      out.push(cost);
    }
  };
  add('r', cap.requestsPerMinute, share.requestsPerMinute);
  add('t', cap.tokensPerMinute, share.tokensPerMinute);
  return { buckets, costs: out };
}
