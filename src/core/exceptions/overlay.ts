/**
 * The overlay of approved exceptions on the limit plan and the authorizer. Built once per set of
 * records (on load), asked per request with `now`: a record applies only while `isActive(record, now)`,
 * so an exception ends at `expiresAt` on every instance without anyone writing anything.
 *
 * Limits: a bucket whose policy id an active exception names gets the exception's amount when that
 * is higher (an exception never lowers a limit). The bucket's storage key is unchanged, so usage
 * counted under the exception still counts after it ends.
 * Access: the extra scopes and models are matchers the authorizer ORs with the policy's layers.
 */
import { compileGlobs, type StringMatcher } from '../authz/glob.js';
import type { LimitBucket } from '../ports.js';
import { type ExceptionRecord, isActive } from './model.js';

export interface AccessGrant {
  scopes: StringMatcher;
  models: StringMatcher;
}

interface Compiled {
  record: ExceptionRecord;
  limits: Map<string, number>;
  access: AccessGrant | null;
}

export class ExceptionOverlay {
  /** Records per tenant, only those that were approved when loaded (others can never apply). */
  private readonly byTenant = new Map<string, Compiled[]>();
  /** Number of approved records loaded. */
  readonly size: number;

  constructor(records: readonly ExceptionRecord[]) {
    let n = 0;
    for (const r of records) {
      if (r.status !== 'approved' || r.granted === null || r.expiresAt === null) continue;
      const g = r.granted;
      const c: Compiled = {
        record: r,
        limits: new Map(g.limits.map((l) => [l.id, l.limit])),
        access:
          g.models.length + g.scopes.length > 0
            ? { scopes: compileGlobs(g.scopes), models: compileGlobs(g.models) }
            : null,
      };
      const list = this.byTenant.get(r.tenantId) ?? [];
      list.push(c);
      this.byTenant.set(r.tenantId, list);
      n++;
    }
    this.size = n;
  }

  static readonly empty = new ExceptionOverlay([]);

  private active(tenantId: string, keyId: string, now: number): Compiled[] | null {
    const list = this.byTenant.get(tenantId);
    if (!list) return null;
    let out: Compiled[] | null = null;
    for (const c of list) {
      if ((c.record.keyId === null || c.record.keyId === keyId) && isActive(c.record, now)) {
        out ??= [];
        out.push(c);
      }
    }
    return out;
  }

  /** True when nothing can apply to this tenant (the hot path's fast exit). */
  none(tenantId: string): boolean {
    return !this.byTenant.has(tenantId);
  }

  /** The buckets with raised limits where an active exception names them; the same array when none applies. */
  buckets<B extends LimitBucket>(
    tenantId: string,
    keyId: string,
    now: number,
    buckets: readonly B[],
  ): readonly B[] {
    const act = this.active(tenantId, keyId, now);
    if (!act) return buckets;
    let out: B[] | null = null;
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      let raised = b.limit;
      for (const c of act) {
        const v = c.limits.get(b.id);
        if (v !== undefined && v > raised) raised = v;
      }
      if (raised !== b.limit) {
        out ??= buckets.slice();
        out[i] = Object.freeze({ ...b, limit: raised });
      }
    }
    return out ?? buckets;
  }

  /** Extra scopes and models active for this key now, or null. */
  access(tenantId: string, keyId: string, now: number): AccessGrant | null {
    const act = this.active(tenantId, keyId, now);
    if (!act) return null;
    const grants = act.map((c) => c.access).filter((a): a is AccessGrant => a !== null);
    if (grants.length === 0) return null;
    if (grants.length === 1) return grants[0]!;
    return {
      scopes: (s) => grants.some((g) => g.scopes(s)),
      models: (m) => grants.some((g) => g.models(m)),
    };
  }
}
