/**
 * Stage `forward`: the upstream call. A client that goes away, or a forced shutdown, aborts it.
 * Writes `ctx.response`, `ctx.abort`, `ctx.upstreamStarted`, and the stage timings the metrics
 * report. An upstream failure refunds the reservation and refuses in the catalogue (502/504/503),
 * audited as an error; nothing is sent to a client that already left.
 */
import { type ErrorCode, type Refusal, refuse } from '../../../core/errors.js';
import {
  type Endpoint,
  UpstreamError,
  type UpstreamRequest,
  type UpstreamResponse,
} from '../../../core/ports.js';
import { CallAbort } from '../call-abort.js';
import { type RequestContext, stageClockOf } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { logIds } from '../log-ids.js';
import { declaredCapacity } from './limit.js';
import { settleReservation } from './settle.js';

/** Caller headers worth forwarding upstream; everything else (credentials included) stays here. */
const FORWARD_HEADERS = ['anthropic-version', 'anthropic-beta', 'openai-beta', 'traceparent', 'tracestate'];

/** Upstream calls still waiting for headers, per gateway: a forced shutdown aborts them. */
const waitingSets = new WeakMap<GatewayDeps, Set<CallAbort>>();

/** Called once per gateway: a forced shutdown aborts every call still waiting for upstream headers. */
export function trackWaiting(deps: GatewayDeps): void {
  const waiting = new Set<CallAbort>();
  waitingSets.set(deps, waiting);
  deps.forceEnd?.addEventListener('abort', () => {
    for (const ac of waiting) ac.abort();
  });
}

/**
 * The upstream request: its `signal` is made when the upstream first reads it (an HTTP upstream
 * always does; see CallAbort). A class, not an object literal with a getter, which V8 builds through
 * a slow runtime path on every call.
 */
class ForwardedCall implements UpstreamRequest {
  constructor(
    readonly endpoint: Endpoint,
    readonly body: Record<string, unknown>,
    readonly stream: boolean,
    private readonly ac: CallAbort,
    readonly requestId: string,
    readonly headers: Record<string, string>,
  ) {}
  get signal(): AbortSignal {
    return this.ac.signal;
  }
}

export async function forward(ctx: RequestContext): Promise<Refusal | undefined> {
  if (ctx.response) return undefined; // answered by an earlier stage (a cache hit)
  const { deps, request, reply } = ctx;
  const upstream = ctx.upstream!;
  const route = ctx.route!;
  const ac = new CallAbort();
  ctx.abort = ac;
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.on('close', onClose);
  // A Set, not a listener per request: an EventTarget listener costs more than the whole add/delete.
  // None without `trackWaiting` (no app, e.g. `sluice simulate`): nothing could abort the waiting calls.
  const waiting = waitingSets.get(deps);
  if (deps.forceEnd?.aborted) ac.abort();
  waiting?.add(ac);
  const headers: Record<string, string> = { 'x-request-id': ctx.id };
  for (const h of FORWARD_HEADERS) {
    const v = request.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  // A traced request: the upstream's parent is our upstream-call span (else the caller's traceparent as sent).
  if (ctx.trace) headers.traceparent = ctx.trace.traceparent();
  const body = ctx.body!;
  const upstreamBody = route.upstreamModel === ctx.model ? body : { ...body, model: route.upstreamModel };
  ctx.upstreamStarted = deps.clock.now();
  const tUp = stageClockOf(deps)();
  let res: UpstreamResponse;
  try {
    res = await upstream.call(
      new ForwardedCall(ctx.endpoint!, upstreamBody, ctx.stream, ac, ctx.id, headers),
    );
  } catch (err) {
    reply.raw.off('close', onClose);
    waiting?.delete(ac);
    // Nothing was produced: refund everything.
    if (ctx.reservation)
      void settleReservation(ctx, ctx.reservation, { inputTokens: 0, outputTokens: 0, images: 0 }, true);
    const shuttingDown = deps.forceEnd?.aborted === true && !reply.raw.destroyed;
    const code = shuttingDown ? 'SLUICE_SHUTTING_DOWN' : upstreamErrorCode(err, ctx.pinned !== null);
    deps.logger.warn(
      { ...logIds(ctx), upstream: upstream.name, err: (err as Error).message },
      'upstream call failed',
    );
    const gone = ac.aborted && !shuttingDown;
    // Why a pinned or untrusted upstream was not used goes to the audit event (its fingerprint, not a path).
    const why = code === 'SLUICE_UPSTREAM_UNTRUSTED' || ctx.pinned ? (err as Error).message : undefined;
    return refuse(code, undefined, {
      decision: 'error',
      ...(why ? { internal: why, audit: { routing: { upstream: upstream.name, pinned: ctx.pinned } } } : {}),
      ...(gone ? { silent: { reason: code, status: 502 } } : {}),
    });
  }
  waiting?.delete(ac);
  if (res.refusal) {
    // The provider already mapped the upstream's error answer into the catalogue (nothing of its
    // body reaches the caller); the log keeps the upstream's own status and the redacted reason.
    deps.logger.warn(
      { ...logIds(ctx), upstream: upstream.name, status: res.upstreamStatus, err: res.refusal.internal },
      'upstream answered with an error',
    );
  }
  // Upstream feedback: a 429 or a nearly spent upstream allowance lowers the capacity handed out.
  deps.admission?.observe(upstream.name, declaredCapacity(ctx), res, ctx.upstreamStarted);
  // A request the upstream refused with 429 still used its capacity: the failed call's refund leaves
  // the capacity buckets charged (a reservation's settle applies actual minus reserved, so 0 keeps them).
  const own = ctx.ownBuckets;
  if (res.status === 429 && ctx.reservation && own < ctx.reservation.costs.length) {
    const r = ctx.reservation;
    ctx.reservation = { ...r, costs: r.costs.map((c, i) => (i < own ? c : 0)) };
  }
  // Time Sluice itself added before the upstream call (parse to forward), for the metrics.
  ctx.stageMs.gateway = tUp - ctx.t0;
  ctx.response = res;
  // Until the answer ends, a client that leaves still aborts the upstream call.
  ctx.detach = () => reply.raw.off('close', onClose);
  return undefined;
}

/**
 * The catalogue code for a failed upstream call. A pinned request whose upstream could not be reached
 * (nothing sent) is `SLUICE_NO_TRUSTED_UPSTREAM`: it is not retried on an upstream without the labels.
 */
function upstreamErrorCode(err: unknown, pinned: boolean): ErrorCode {
  if (!(err instanceof UpstreamError)) return 'SLUICE_UPSTREAM_ERROR';
  if (err.kind === 'untrusted') return 'SLUICE_UPSTREAM_UNTRUSTED';
  if (pinned && err.beforeSend) return 'SLUICE_NO_TRUSTED_UPSTREAM';
  if (err.kind === 'timeout') return 'SLUICE_UPSTREAM_TIMEOUT';
  if (err.kind === 'circuit-open') return 'SLUICE_UPSTREAM_UNAVAILABLE';
  return 'SLUICE_UPSTREAM_ERROR';
}
