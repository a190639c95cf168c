/**
 * Adapters from the compiled core policies (authz, limits) to what the request path needs, and the
 * context services a policy names (geo database, reputation lists, Cedar policies), loaded once
 * per distinct setting and reused across reloads.
 */
import { dirname, resolve } from 'node:path';
import { CedarAuthorizer } from '../auth/cedar.js';
import type { GeoLookup } from '../auth/geo.js';
import { ReputationLists } from '../auth/reputation.js';
import type { SluiceConfig } from '../config/schema.js';
import { clientIp, compileCidrs } from '../core/authz/cidr.js';
import { compileAccessPolicy, type ShadowDenial } from '../core/authz/policy.js';
import { estimateRequest } from '../core/limits/estimate.js';
import { denialOf, rateLimitHeaders } from '../core/limits/headers.js';
import { OutputSketch } from '../core/limits/output-estimate.js';
import { compileLimitPlan } from '../core/limits/plan.js';
import type { LimitBucket } from '../core/ports.js';
import type { AccessPolicy, LimitPolicy } from '../gateway/runtime.js';
import { tlsConnectOptions } from '../providers/upstream-tls.js';

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
  constructor(readonly baseDir: string) {}

  static forFile(file: string | null): ContextLoader {
    return new ContextLoader(file ? dirname(file) : process.cwd());
  }

  async load(cfg: SluiceConfig): Promise<ContextServices> {
    // Upstream TLS files (CA, client certificate and key) must load before a policy naming them is
    // applied; main.ts builds the upstreams from the same files (errors name no path).
    for (const u of cfg.upstreams) if (u.kind !== 'mock') tlsConnectOptions(u.name, u.tls, this.baseDir);
    const geoKey = cfg.geo?.database ? resolve(this.baseDir, cfg.geo.database) : '';
    if (!geoKey) this.geo = null;
    else if (this.geo?.key !== geoKey) {
      // maxmind is loaded only when a policy names a geo database.
      const { GeoLookup: Geo } = await import('../auth/geo.js');
      this.geo = { key: geoKey, v: await Geo.open(geoKey, { watch: true }) };
    }
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

/**
 * Observed outputs per key and model, for output reservations. One per process, kept across policy
 * reloads (a reload must not forget what was learned); bounded by its own key cap.
 */
const outputSketch = new OutputSketch();

/** Marks an estimate made for a reservation (not actual usage): its token costs may be clipped. */
const RESERVE = Symbol('reserve');

export function limitPolicyFor(cfg: SluiceConfig, sketch: OutputSketch = outputSketch): LimitPolicy {
  const plan = compileLimitPlan(cfg);
  const outputReserve = cfg.limits.outputReserve;
  const estimating = outputReserve.mode === 'estimate';
  const defaultOutputTokens = cfg.limits.defaultOutputTokens;
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
    costsFor: (buckets, model, est) => {
      // The four fields named, not a spread: `est` may carry the RESERVE symbol, and spreading a
      // symbol-keyed object leaves V8's fast clone path (measured: 0.5 % of the gateway's CPU).
      const costs = plan.costsFor(buckets, {
        inputTokens: est.inputTokens,
        outputTokens: est.outputTokens,
        images: est.images,
        usd: plan.usdFor(model, est),
      });
      // An estimated output never makes a request "never fit": a token cost above a bucket's capacity is
      // clipped to it when the input alone fits (the answer settles as debt). Actual usage is never clipped.
      if (estimating && (est as { [RESERVE]?: true })[RESERVE]) {
        for (let i = 0; i < buckets.length; i++) {
          const b = buckets[i]!;
          const cap = b.limit + b.burst;
          if (b.kind === 'tokens' && est.inputTokens <= cap) costs[i] = Math.min(costs[i]!, cap);
          else if (b.kind === 'outputTokens') costs[i] = Math.min(costs[i]!, cap);
        }
      }
      return costs;
    },
    headersFor: (states, format, now) =>
      rateLimitHeaders(states, now, format === 'anthropic' ? anthropic : openai),
    denialFor: (result, buckets, costs, format, now) => {
      const d = denialOf(result, buckets, costs, now, format === 'anthropic' ? anthropic : openai);
      return { ...d.refusal, message: d.message };
    },
    usdFor: (model, usage) => plan.usdFor(model, usage),
    estimate: (endpoint, body, keyId) => {
      const model = typeof body.model === 'string' ? body.model : '';
      const observedOutput = estimating && keyId ? sketch.estimate(keyId, model, outputReserve) : undefined;
      const est = estimateRequest(endpoint, body, {
        defaultOutputTokens,
        outputReserve,
        observedOutput,
      }) as ReturnType<typeof estimateRequest> & { [RESERVE]?: true };
      est[RESERVE] = true;
      return est;
    },
    observeOutput: (keyId, model, outputTokens) => sketch.observe(keyId, model, outputTokens),
  };
}
