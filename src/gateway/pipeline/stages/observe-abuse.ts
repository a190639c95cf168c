/**
 * Stages `observe-abuse-start` (right before `forward`) and `observe-abuse` (after `record`): the
 * abuse detectors see the call — who, from where, with which client, what was asked — when it is
 * forwarded, and what it used when it has ended. A call that is never forwarded (refused, answered
 * from the cache) is seen once, at its end. Seeing a call when it starts takes the upstream's
 * latency out of every detector's delay: a style shift to 1,500-word articles answered in 60-80 s
 * was seen a minute late. O(1) and allocation-free here: the engine copies these fields into a
 * queue slot; the prompt is taken from the body, and the header names (never credentials or ids:
 * see NOT_FINGERPRINT) from the raw headers, in its batch.
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
  started: false,
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

/** Before `forward`: the call as asked (its output and status come with `observeAbuse`). */
export function observeAbuseStart(ctx: RequestContext): undefined {
  const abuse = ctx.deps.abuse;
  // (Both halves or neither: a call seen at its start and again whole at its end would count twice.)
  if (!abuse?.observeStart || !abuse.observeDone || !ctx.principal || !ctx.endpoint) return undefined;
  abuse.observeStart(fill(ctx, false));
  ctx.abuseStarted = true;
  release();
  return undefined;
}

export function observeAbuse(ctx: RequestContext): undefined {
  const abuse = ctx.deps.abuse;
  const p = ctx.principal;
  if (!abuse || !p || !ctx.endpoint) return undefined;
  if (ctx.abuseStarted) {
    abuse.observeDone!(p.keyId, ctx.usage?.outputTokens ?? 0);
    return undefined;
  }
  abuse.observe(fill(ctx, true));
  release();
  return undefined;
}

/** Drops the scratch's references to the request (the engine copied what it needs). */
function release(): void {
  scratch.body = undefined;
  scratch.rawHeaders = NO_NAMES;
}

/** The scratch observation of `ctx`; `ended`: with what the call used and its status. */
function fill(ctx: RequestContext, ended: boolean): Observation {
  const p = ctx.principal!;
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
  o.endpoint = ctx.action.startsWith('tasks.') ? 'tasks' : ctx.endpoint!;
  o.model = ctx.model;
  o.body = ctx.body ?? undefined;
  o.bodyEndpoint = ctx.endpoint!;
  o.inputTokens = ended ? (ctx.usage?.inputTokens ?? 0) : 0;
  o.outputTokens = ended ? (ctx.usage?.outputTokens ?? 0) : 0;
  o.status = ended ? (ctx.response?.status ?? 0) : 0;
  o.started = !ended;
  return o;
}
