/**
 * End stage `observe-output` (issue 15): a complete, successful answer's output tokens feed the
 * output-reservation sketch (core/limits/output-estimate.ts), so the key's next calls reserve what its
 * answers actually use rather than the SDK's default max_tokens. A stream the client cut short or an
 * error answer says nothing about that and is skipped. Runs after `settle`.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function observeOutput(ctx: RequestContext): Refusal | undefined {
  const status = ctx.response?.status ?? 500;
  if (status >= 400 || ctx.abort?.aborted || !ctx.usage || !ctx.principal || !ctx.model) return undefined;
  ctx.rt.limits.observeOutput?.(ctx.principal.keyId, ctx.model, ctx.usage.outputTokens);
  return undefined;
}
