/**
 * The request path's view of the policy with approved exceptions laid over it: `withExceptions(rt)`
 * returns a Runtime whose limit plan raises the limits and whose authorizer adds the scopes and
 * models that active exceptions grant. One wrapper per compiled runtime (cached); the overlay is
 * read on every call, so a reload, a revocation or an expiry applies to the next request.
 * Tenants without any approved exception pay one Map lookup.
 */
import type { ExceptionOverlay } from '../../core/exceptions/overlay.js';
import type { Clock, LimitBucket } from '../../core/ports.js';
import type { Principal } from '../auth.js';
import type { Runtime } from '../runtime.js';

export function exceptionRuntime(overlay: () => ExceptionOverlay, clock: Clock): (rt: Runtime) => Runtime {
  const cache = new WeakMap<Runtime, Runtime>();
  const granted = (p: Principal, now: number): Principal => {
    const o = overlay();
    if (o.none(p.tenantId)) return p;
    const g = o.access(p.tenantId, p.keyId, now);
    return g ? { ...p, exceptionGrant: g } : p;
  };
  return (rt) => {
    let w = cache.get(rt);
    if (w) return w;
    w = {
      ...rt,
      limits: {
        ...rt.limits,
        bucketsFor(p, f) {
          const b = rt.limits.bucketsFor(p, f);
          const o = overlay();
          return o.none(p.tenantId) ? b : (o.buckets(p.tenantId, p.keyId, f.now, b) as LimitBucket[]);
        },
      },
      access: {
        ...rt.access,
        authorize: (p, f) => rt.access.authorize(granted(p, f.now), f),
        modelAllowed: (p, model) => rt.access.modelAllowed(granted(p, clock.now()), model),
      },
    };
    cache.set(rt, w);
    return w;
  };
}
