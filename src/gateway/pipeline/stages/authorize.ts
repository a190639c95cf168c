/**
 * Stage `authorize`: scopes, models, step-up, context rules and Cedar (the compiled access policy),
 * then the route to an upstream that serves the endpoint, and the tier's caps on max_tokens and n.
 * Writes `ctx.shadow`, `ctx.route`, `ctx.upstream`.
 */
import { type Refusal, refuse } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function authorize(ctx: RequestContext): Refusal | undefined {
  const principal = ctx.principal!;
  const model = ctx.model!;
  const authz = ctx.rt.access.authorize(principal, ctx.facts!);
  if (authz.refusal) return authz.refusal;
  ctx.shadow = authz.shadow;
  const route = ctx.rt.route(model);
  const upstream = route ? ctx.deps.upstreams.get(route.upstream) : undefined;
  if (!route || !upstream) return refuse('SLUICE_UNKNOWN_MODEL', model.slice(0, 200), { param: 'model' });
  if (ctx.endpoint && !upstream.supports(ctx.endpoint)) {
    return refuse('SLUICE_BAD_REQUEST', `model "${model.slice(0, 200)}" is not served on this endpoint`, {
      param: 'model',
    });
  }
  ctx.route = route;
  ctx.upstream = upstream;
  const tier = ctx.rt.cfg.tiers[principal.tier];
  const body = ctx.body ?? {};
  const maxTokens = (body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens) as
    | number
    | undefined;
  if (tier?.maxTokens !== undefined && typeof maxTokens === 'number' && maxTokens > tier.maxTokens) {
    return refuse('SLUICE_PARAM_OUT_OF_RANGE', `max_tokens may be at most ${tier.maxTokens} on your tier`, {
      param: 'max_tokens',
    });
  }
  const n = body.n;
  if (tier && typeof n === 'number' && n > tier.maxN) {
    return refuse('SLUICE_PARAM_OUT_OF_RANGE', `n may be at most ${tier.maxN} on your tier`, { param: 'n' });
  }
  return undefined;
}
