/**
 * Adapters from the compiled core policies (authz, limits) to what the request path needs.
 * Compiled once per policy version.
 */
import type { SluiceConfig } from '../config/schema.js';
import { clientIp, compileCidrs } from '../core/authz/cidr.js';
import { compileAccessPolicy, type ShadowDenial } from '../core/authz/policy.js';
import { estimateRequest } from '../core/limits/estimate.js';
import { denialOf, rateLimitHeaders } from '../core/limits/headers.js';
import { compileLimitPlan } from '../core/limits/plan.js';
import type { LimitBucket } from '../core/ports.js';
import type { AccessPolicy, LimitPolicy } from '../gateway/runtime.js';

export function accessPolicyFor(cfg: SluiceConfig, _dataDir: string): AccessPolicy {
  const policy = compileAccessPolicy(cfg);
  const trusted = compileCidrs(cfg.trustedProxies);
  return {
    authorize(p, f) {
      const shadow: ShadowDenial[] = [];
      const refusal = policy.authorize(
        p,
        { action: f.action, model: f.model, ip: f.ip, country: f.country, now: f.now },
        shadow,
      );
      return { refusal, shadow: shadow.map((s) => `${s.rule}:${s.reason}`) };
    },
    modelAllowed: (p, model) => policy.modelAllowed(p, model),
    clientIp: (remote, xff) => clientIp(remote, xff, trusted),
  };
}

export function limitPolicyFor(cfg: SluiceConfig): LimitPolicy {
  const plan = compileLimitPlan(cfg);
  const estimateOpts = { defaultOutputTokens: cfg.limits.defaultOutputTokens };
  const anthropic = { anthropic: true };
  const openai = { anthropic: false };
  return {
    // The gateway's principal carries every field the plan keys on; facts carry the rest.
    bucketsFor: (p, f) =>
      plan.bucketsFor({
        keyId: p.keyId,
        tenantId: p.tenantId,
        projectId: p.projectId,
        tier: p.tier,
        endUser: f.endUser,
        ip: f.ip,
        action: f.action,
        model: f.model,
      }) as unknown as LimitBucket[],
    costsFor: (buckets, model, est) => plan.costsFor(buckets, { ...est, usd: plan.usdFor(model, est) }),
    headersFor: (states, format, now) =>
      rateLimitHeaders(states, now, format === 'anthropic' ? anthropic : openai),
    denialFor: (result, buckets, costs, format, now) => {
      const d = denialOf(result, buckets, costs, now, format === 'anthropic' ? anthropic : openai);
      return { ...d.refusal, message: d.message };
    },
    usdFor: (model, usage) => plan.usdFor(model, usage),
    estimate: (endpoint, body) => estimateRequest(endpoint, body, estimateOpts),
  };
}
