/**
 * Stage `parse`: the fields Sluice itself reads (model, stream, max_tokens, n, the messages'
 * shape). The JSON itself was parsed, size-, depth- and key-checked by the content-type parser
 * (request-checks.ts) before any stage; this stage runs after `authenticate`, so a caller without
 * a valid credential learns nothing about the body but 401. Writes `ctx.model`, `ctx.stream`.
 */
import type { Refusal } from '../../../core/errors.js';
import { isRefusal } from '../../../core/errors.js';
import { checkBody } from '../../request-checks.js';
import type { RequestContext } from '../context.js';

export function parse(ctx: RequestContext): Refusal | undefined {
  const checked = checkBody(ctx.endpoint ?? 'chat', ctx.body);
  if (isRefusal(checked)) return checked;
  ctx.model = checked.model;
  ctx.stream = checked.stream;
  return undefined;
}
