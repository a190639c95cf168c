/**
 * Stage `quarantine` (right after `context-checks`): a capability paused for this key, its tenant
 * or its network by the abuse engine (src/abuse/engine.ts) is refused here with
 * `403 SLUICE_QUARANTINED`; a throttled subject over its rate gets `429 SLUICE_RATE_LIMITED`.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function quarantine(ctx: RequestContext): Refusal | undefined {
  const abuse = ctx.deps.abuse;
  const p = ctx.principal;
  if (!abuse || !p) return undefined;
  const r = abuse.check({ keyId: p.keyId, tenantId: p.tenantId, ip: ctx.ip, action: ctx.action });
  if (!r) return undefined;
  return r.code === 'SLUICE_RATE_LIMITED' ? { ...r, decision: 'throttled' } : r;
}
