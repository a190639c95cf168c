/**
 * Stage `cache`: the seam for a response cache. A no-op for now; a cache would answer a hit by
 * setting `ctx.response` (so `forward` is skipped) before limits reserve upstream capacity.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function cache(_ctx: RequestContext): Refusal | undefined {
  return undefined;
}
