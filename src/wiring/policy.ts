/**
 * Adapters from the compiled core policies (authz, limits) to what the request path needs, and the
 * context services a policy names (geo database, reputation lists, Cedar policies), loaded once
 * per distinct setting and reused across reloads.
 */
import { dirname, resolve } from 'node:path';
import { CedarAuthorizer } from '../auth/cedar.js';
import { GeoLookup } from '../auth/geo.js';
import { ReputationLists } from '../auth/reputation.js';
import type { SluiceConfig } from '../config/schema.js';
import { clientIp, compileCidrs } from '../core/authz/cidr.js';
import { compileAccessPolicy, type ShadowDenial } from '../core/authz/policy.js';
import { estimateRequest } from '../core/limits/estimate.js';
import { denialOf, rateLimitHeaders } from '../core/limits/headers.js';
import { compileLimitPlan } from '../core/limits/plan.js';
import type { LimitBucket } from '../core/ports.js';
import type { AccessPolicy, LimitPolicy } from '../gateway/runtime.js';

export interface ContextServices {
  geo: GeoLookup | null;
  reputation: ReputationLists | null;
  cedar: CedarAuthorizer | null;
}

/** Loads what a config's context rules need; keeps the previous instances when their settings did not change. */
export class ContextLoader {
  private geo: { key: string; v: GeoLookup } | null = null;
  private rep: { key: string; v: ReputationLists } | null = null;
  private cedar: { key: string; v: CedarAuthorizer } | null = null;

  /** `baseDir`: relative paths in the config resolve against the config file's directory. */
  constructor(private readonly baseDir: string) {}

  static forFile(file: string | null): ContextLoader {
    return new ContextLoader(file ? dirname(file) : process.cwd());
  }

  async load(cfg: SluiceConfig): Promise<ContextServices> {
    const geoKey = cfg.geo?.database ? resolve(this.baseDir, cfg.geo.database) : '';
    if (!geoKey) this.geo = null;
    else if (this.geo?.key !== geoKey)
      this.geo = { key: geoKey, v: await GeoLookup.open(geoKey, { watch: true }) };
    const repKey = JSON.stringify(cfg.reputation);
    if (Object.keys(cfg.reputation).length === 0) {
      this.rep?.v.close();
      this.rep = null;
    } else if (this.rep?.key !== repKey) {
      const v = await ReputationLists.load(cfg.reputation, { baseDir: this.baseDir });
      this.rep?.v.close();
      this.rep = { key: repKey, v };
    }
    const cedarKey = cfg.policies.cedar
      ? `${resolve(this.baseDir, cfg.policies.cedar)}|${Object.keys(cfg.tasks).join(',')}`
      : '';
    if (!cedarKey) this.cedar = null;
    else if (this.cedar?.key !== cedarKey) {
      const v = await CedarAuthorizer.fromConfig(cfg, this.baseDir);
      this.cedar = v ? { key: cedarKey, v } : null;
    }
    return { geo: this.geo?.v ?? null, reputation: this.rep?.v ?? null, cedar: this.cedar?.v ?? null };
  }

  close(): void {
    this.rep?.v.close();
  }
}

export function accessPolicyFor(cfg: SluiceConfig, ctx: ContextServices): AccessPolicy {
  const policy = compileAccessPolicy(cfg, ctx.reputation ? { reputation: ctx.reputation } : {});
  const trusted = compileCidrs(cfg.trustedProxies);
  const cedar = ctx.cedar;
  const geo = ctx.geo;
  return {
    authorize(p, f) {
      const shadow: ShadowDenial[] = [];
      let refusal = policy.authorize(
        p,
        { action: f.action, model: f.model, ip: f.ip, country: f.country, now: f.now },
        shadow,
      );
      // Cedar is an extra gate for what the built-in matcher cannot say; its decisions are cached per distinct input.
      if (!refusal && cedar) {
        const task = f.action.startsWith('tasks.');
        refusal = cedar.refusal({
          keyId: p.keyId,
          tenantId: p.tenantId,
          projectId: p.projectId,
          tier: p.tier,
          action: f.action,
          resource: { type: task ? 'Task' : 'Model', id: task ? f.action.slice(6) : (f.model ?? '') },
          context: {
            ip: f.ip,
            country: f.country,
            now: f.now,
            endpoint: f.endpoint ?? '',
            tokenEstimate: f.tokenEstimate ?? 0,
          },
        });
      }
      return { refusal, shadow: shadow.map((s) => `${s.rule}:${s.reason}`) };
    },
    modelAllowed: (p, model) => policy.modelAllowed(p, model),
    clientIp: (remote, xff) => clientIp(remote, xff, trusted),
    country: geo ? (ip) => geo.country(ip) : () => null,
  };
}

export function limitPolicyFor(cfg: SluiceConfig): LimitPolicy {
  const plan = compileLimitPlan(cfg);
  const estimateOpts = { defaultOutputTokens: cfg.limits.defaultOutputTokens };
  const maxClientRetryWaitMs = cfg.limits.maxClientRetryWait;
  const anthropic = { anthropic: true, maxClientRetryWaitMs };
  const openai = { anthropic: false, maxClientRetryWaitMs };
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
