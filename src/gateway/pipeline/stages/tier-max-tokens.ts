/**
 * Stage `tier-max-tokens` (issue 15): a tier whose `maxTokensMode` is `clamp` lowers a larger
 * max_tokens / max_completion_tokens / max_output_tokens to the tier's `maxTokens` before the cost is
 * estimated and the call forwarded, and says so in `x-sluice-max-tokens-clamped: <asked>-><forwarded>`.
 * In `refuse` mode (the default) it does nothing: `authorize` refuses the request as before.
 * Runs after `parse`, before `context-checks`. Rewrites `ctx.body`.
 */
import type { Refusal } from '../../../core/errors.js';
import { applyTierMaxTokens } from '../../../core/limits/output-estimate.js';
import type { RequestContext } from '../context.js';

export function tierMaxTokens(ctx: RequestContext): Refusal | undefined {
  const tier = ctx.rt.cfg.tiers[ctx.principal!.tier];
  if (!tier || tier.maxTokens === undefined || tier.maxTokensMode !== 'clamp' || !ctx.body) return undefined;
  const d = applyTierMaxTokens(ctx.endpoint ?? 'chat', ctx.body, tier.maxTokens, 'clamp');
  if (d.kind !== 'clamp') return undefined;
  ctx.body = { ...ctx.body, [d.param]: d.to };
  ctx.reply.header('x-sluice-max-tokens-clamped', `${d.from}->${d.to}`);
  return undefined;
}
