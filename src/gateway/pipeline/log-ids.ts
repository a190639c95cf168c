/**
 * The ids every log line about a data-plane request carries (docs/tracing.md, "Logs"): `reqId`
 * always, and `traceId` when tracing is on — the request's own trace, or, for lines written before
 * the pipeline started one (the edge, the auxiliary endpoints), the trace id of the caller's
 * `traceparent`. With tracing off this is one object with one field, as before.
 */
import type { FastifyRequest } from 'fastify';
import { parseTraceparent } from '../../observability/tracing.js';
import type { RequestContext } from './context.js';
import type { GatewayDeps } from './deps.js';

export interface LogIds {
  reqId: string;
  traceId?: string;
}

export function logIds(ctx: RequestContext): LogIds {
  return ctx.trace ? { reqId: ctx.id, traceId: ctx.trace.traceId } : { reqId: ctx.id };
}

export function requestLogIds(deps: GatewayDeps, request: FastifyRequest): LogIds {
  if (!deps.tracer) return { reqId: request.id };
  const parent = parseTraceparent(request.headers.traceparent);
  return parent ? { reqId: request.id, traceId: parent.traceId } : { reqId: request.id };
}
