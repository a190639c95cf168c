/**
 * Stage `screenOutput`: the seam for output screening. Runs after `forward` with the upstream's
 * answer on `ctx.response`; it may replace `ctx.response.body` (a byte buffer, or a stream of
 * chunks) or refuse. The identity for now: unmodified bytes go out as they arrive.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function screenOutput(_ctx: RequestContext): Refusal | undefined {
  return undefined;
}
