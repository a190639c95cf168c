/**
 * Stage `observe-abuse` (after `record`): the abuse detectors see the answered call — who, from
 * where, with which client, what was asked and what it used. O(1) and allocation-free here: the
 * engine copies these fields into a queue slot; the prompt is taken from the body, and the header
 * names (never credentials or ids: see NOT_FINGERPRINT) from the raw headers, in its batch.
 */
import type { Observation } from '../../../core/anomaly/detectors.js';
import type { RequestContext } from '../context.js';

const NO_NAMES: readonly string[] = [];
/** Reused for every call: `observe` copies what it needs before returning. */
const scratch: Observation = {
  requestId: '',
  keyId: '',
  tenantId: '',
  ip: '',
  userAgent: null,
  headerNames: NO_NAMES,
  rawHeaders: NO_NAMES,
  endUser: null,
  sentAt: Number.NaN,
  action: '',
  endpoint: '',
  model: null,
  prompt: '',
  body: undefined,
  bodyEndpoint: '',
  inputTokens: 0,
  outputTokens: 0,
  status: 0,
};

export function observeAbuse(ctx: RequestContext): undefined {
  const abuse = ctx.deps.abuse;
  const p = ctx.principal;
  if (!abuse || !p || !ctx.endpoint) return undefined;
  const o = scratch;
  o.requestId = ctx.id;
  o.keyId = p.keyId;
  o.tenantId = p.tenantId;
  o.ip = ctx.ip;
  o.userAgent = (ctx.request.headers['user-agent'] as string | undefined) ?? null;
  o.rawHeaders = ctx.request.raw.rawHeaders;
  o.endUser = ctx.facts?.endUser ?? null;
  // (0 when nothing was forwarded: a cached answer, a local one)
  o.sentAt = ctx.upstreamStarted > 0 ? ctx.upstreamStarted : Number.NaN;
  o.action = ctx.action;
  o.endpoint = ctx.action.startsWith('tasks.') ? 'tasks' : ctx.endpoint;
  o.model = ctx.model;
  o.body = ctx.body ?? undefined;
  o.bodyEndpoint = ctx.endpoint;
  o.inputTokens = ctx.usage?.inputTokens ?? 0;
  o.outputTokens = ctx.usage?.outputTokens ?? 0;
  o.status = ctx.response?.status ?? 0;
  abuse.observe(o);
  o.body = undefined;
  o.rawHeaders = NO_NAMES;
  return undefined;
}
