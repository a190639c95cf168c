/**
 * Adapters from the compiled core policies (authz, limits) to what the request path needs.
 * Compiled once per policy version.
 */
import type { SluiceConfig } from '../config/schema.js';
import { clientIp, compileCidrs } from '../core/authz/cidr.js';
import { compileAccessPolicy, type ShadowDenial } from '../core/authz/policy.js';
import type { AccessPolicy, LimitPolicy } from '../gateway/runtime.js';

export function accessPolicyFor(cfg: SluiceConfig, _dataDir: string): AccessPolicy {
  const policy = compileAccessPolicy(cfg);
  const trusted = compileCidrs(cfg.trustedProxies);
  return {
    authorize(p, f) {
      const shadow: ShadowDenial[] = [];
      const refusal = policy.authorize(p, { action: f.action, model: f.model, ip: f.ip, country: f.country, now: f.now }, shadow);
      return { refusal, shadow: shadow.map((s) => `${s.rule}:${s.reason}`) };
    },
    modelAllowed: (p, model) => policy.modelAllowed(p, model),
    clientIp: (remote, xff) => clientIp(remote, xff, trusted),
  };
}

export function limitPolicyFor(_cfg: SluiceConfig): LimitPolicy {
  throw new Error('not wired yet');
}
