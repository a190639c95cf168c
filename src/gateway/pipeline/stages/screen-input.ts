/**
 * Stage `screenInput`: the seam for input screening (prompt injection, secrets, PII in what the
 * caller sends). A no-op until a screening capability replaces or follows it in the stage list;
 * it may read `ctx.body` and refuse, or rewrite `ctx.body`.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function screenInput(_ctx: RequestContext): Refusal | undefined {
  return undefined;
}
