/**
 * Stage `record` (runs when the answer or stream has ended): the usage row, the audit event, the
 * metrics outcome and the key's last use. Detectors that watch finished calls plug in after it.
 */

import { recordDecision } from '../audit-event.js';
import type { RequestContext } from '../context.js';

export function record(ctx: RequestContext): undefined {
  const { deps } = ctx;
  const res = ctx.response!;
  const principal = ctx.principal!;
  const usage = ctx.usage ?? { inputTokens: 0, outputTokens: 0, images: 0 };
  const model = ctx.model!;
  const usd = ctx.rt.limits.usdFor(model, usage);
  const now = deps.clock.now();
  const hit = ctx.cache?.hit === true;
  // A cache hit is recorded with upstream `cache` (no upstream call, no tokens) and audited as `cache_hit`.
  const upstream = hit ? 'cache' : (ctx.upstream?.name ?? '');
  deps.usage.record({
    requestId: ctx.id,
    at: now,
    keyId: principal.keyId,
    tenantId: principal.tenantId,
    projectId: principal.projectId,
    model,
    action: ctx.action,
    upstream,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    images: usage.images,
    usd,
    status: res.status,
    latencyMs: now - ctx.upstreamStarted,
  });
  const ok = res.status < 400;
  const s = ctx.stageMs;
  const shadow = ctx.shadow.length || ctx.shadowLimits.length;
  recordDecision(deps, ctx.request, ctx.rt.version, principal, {
    action: ctx.action,
    model,
    ip: ctx.ip,
    country: ctx.country,
    decision: ok ? 'allowed' : 'error',
    reason: ok
      ? ctx.abort?.aborted
        ? 'client_closed'
        : hit
          ? 'cache_hit'
          : 'ok'
      : (res.refusal?.code ?? `upstream_${res.status}`),
    status: res.status,
    states: ctx.states,
    usage,
    usd,
    upstream,
    upstreamMs: now - ctx.upstreamStarted,
    // The metric's stage names: time Sluice added before forwarding, then the upstream's headers.
    stageMs: {
      auth: s.authenticate ?? 0,
      authorize: (s.contextChecks ?? 0) + (s.authorize ?? 0),
      limit: s.limit ?? 0,
      upstream_headers: s.forward ?? 0,
      gateway: s.gateway ?? 0,
    },
    details: routingDetails(
      ctx,
      cacheDetails(
        ctx,
        shadow || ctx.screening
          ? {
              ...(shadow ? { shadow: [...ctx.shadow, ...ctx.shadowLimits.map((id) => `limit:${id}`)] } : {}),
              ...(ctx.screening ? { screening: ctx.screening } : {}),
            }
          : undefined,
      ),
    ),
  });
  return undefined;
}

/** A pinned call's audit details: the upstream that served it and the labels it was pinned to. */
function routingDetails(
  ctx: RequestContext,
  details: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (!ctx.pinned) return details;
  return { ...details, routing: { upstream: ctx.upstream?.name, pinned: ctx.pinned } };
}

/** The audit details of a cacheable call: `cache: hit|miss`, a hit's age and the upstream tokens it saved, a miss's key fingerprint. */
function cacheDetails(
  ctx: RequestContext,
  details: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const c = ctx.cache;
  if (!c) return details;
  // A miss keeps a short fingerprint of its cache key (a hash, never the request): the portal counts
  // identical requests that missed again (entry expired or evicted) from it.
  const cache = c.hit
    ? { cache: 'hit', ageMs: c.ageMs, savedTokens: c.savedTokens }
    : { cache: 'miss', fp: c.key.slice(0, 16) };
  return { ...details, ...cache };
}
