/**
 * Runs a request through its stages. Each stage returns nothing to go on or a Refusal to stop; the
 * runner times every stage into `ctx.stageMs`, and on a refusal makes exactly one audit call and one
 * reply in the caller's wire format. A stage that throws is mapped through the one error table
 * (a store outage is a 503, anything else a 500) and audited the same way.
 */
import { ERRORS, type Refusal, refuse } from '../../core/errors.js';
import { sendRefusal } from '../wire.js';
import { recordDecision } from './audit-event.js';
import { type RequestContext, stageClockOf } from './context.js';
import { codeForError } from './error-table.js';
import { logIds } from './log-ids.js';
import { endTrace } from './trace.js';

/** One step of the request path. Named functions: the name keys `ctx.stageMs`. */
export type Stage = (ctx: RequestContext) => Refusal | undefined | Promise<Refusal | undefined>;

/** The action recorded for a refusal before a principal exists (no key, a bad or revoked key). */
const AUTH_ACTION = 'auth';

/**
 * The stage names of a list, read once: a function's `name` is a native accessor, and every stage of
 * every request is timed under its name.
 */
const stageNames = new WeakMap<readonly Stage[], string[]>();
function namesOf(stages: readonly Stage[]): string[] {
  let names = stageNames.get(stages);
  // (a list that grew since is named again)
  if (!names || names.length !== stages.length) {
    names = stages.map((s) => s.name);
    stageNames.set(stages, names);
  }
  return names;
}

/**
 * Runs `stages` in order until one refuses (audited and answered here) or the request has been
 * answered. Never throws. What is left to send (`ctx.response`, `ctx.answer`) is the caller's.
 */
export async function runStages(ctx: RequestContext, stages: readonly Stage[]): Promise<void> {
  const tracer = ctx.deps.tracer;
  if (tracer) ctx.trace = tracer.start(ctx.request.headers.traceparent, ctx.t0);
  // One clock read per stage: a stage's end is the next one's start.
  const now = stageClockOf(ctx.deps);
  let t = now();
  const names = namesOf(stages);
  // An index, not for-of: across the awaits an array iterator (and its result objects) would be
  // allocated for every request.
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    let r: Refusal | undefined;
    try {
      const out = stage(ctx);
      r = out instanceof Promise ? await out : out;
    } catch (err) {
      r = refusalForError(ctx, err);
    }
    const t1 = now();
    ctx.stageMs[names[i]!] = t1 - t;
    if (ctx.trace) ctx.trace.span(names[i]!, t, t1);
    t = t1;
    if (r) {
      refuseRequest(ctx, r);
      return;
    }
    if (ctx.replied) return;
  }
}

/** The end of a call: runs the end stages (settle, record) once the answer or stream has ended. */
export async function endRequest(ctx: RequestContext): Promise<void> {
  try {
    const now = stageClockOf(ctx.deps);
    let t = now();
    const end = ctx.end;
    const names = namesOf(end);
    for (let i = 0; i < end.length; i++) {
      const stage = end[i]!;
      try {
        const out = stage(ctx);
        if (out instanceof Promise) await out;
      } catch (err) {
        ctx.deps.logger.warn(
          { err: (err as Error).message, ...logIds(ctx), stage: stage.name },
          'end stage failed',
        );
      }
      const t1 = now();
      ctx.stageMs[names[i]!] = t1 - t;
      if (ctx.trace) ctx.trace.span(names[i]!, t, t1);
      t = t1;
    }
  } finally {
    if (ctx.pending.length > 0) await Promise.allSettled(ctx.pending);
    finish(ctx);
  }
}

/** One audit call and one reply (none when the caller has gone) for a refusal. */
export function refuseRequest(ctx: RequestContext, r: Refusal): void {
  const status = r.silent?.status ?? ERRORS[r.code].status;
  if (r.internal) ctx.deps.logger.info({ ...logIds(ctx), code: r.code, why: r.internal }, 'refused');
  if (ctx.trace) {
    const a = ctx.trace.attrs;
    a['sluice.decision'] = r.decision ?? 'refused';
    a['sluice.reason'] = r.silent?.reason ?? r.code;
    a['http.response.status_code'] = status;
    const bound = r.audit?.limit;
    if (typeof bound === 'string') a['sluice.limit'] = bound;
    if (status >= 500) ctx.trace.error = true;
  }
  let details = r.audit;
  if (r.internal) details = { ...details, internal: r.internal };
  recordDecision(ctx.deps, ctx.request, ctx.rt.version, ctx.principal, {
    action: ctx.principal ? ctx.action : AUTH_ACTION,
    model: ctx.principal ? ctx.model : null,
    decision: r.decision ?? 'refused',
    reason: r.silent?.reason ?? r.code,
    status,
    ip: ctx.ip,
    country: ctx.country,
    keyId: r.keyId ?? null,
    states: r.decision === 'throttled' ? ctx.states : undefined,
    details,
    upstream: r.decision === 'error' ? ctx.upstream?.name : undefined,
  });
  // A silent refusal (the caller has gone) is handled all the same: nothing else is sent.
  if (!r.silent && !ctx.replied) sendRefusal(ctx.reply, ctx.format, r);
  ctx.replied = true;
  finish(ctx);
}

/** Marks the request done: resolves `ctx.done` and tells `onSettled`. */
export function finish(ctx: RequestContext): void {
  if (ctx.trace) endTrace(ctx);
  ctx.settled();
  ctx.deps.onSettled?.(ctx.id);
}

/** A stage threw: a store outage is a 503 with a retry time, anything else a logged 500. */
function refusalForError(ctx: RequestContext, err: unknown): Refusal {
  const code = codeForError(err);
  if (code === 'SLUICE_STORE_UNAVAILABLE') {
    ctx.deps.logger.error({ err: (err as Error).message, ...logIds(ctx) }, 'store unavailable');
    return refuse(code, undefined, { decision: 'error', headers: { 'retry-after': '1' } });
  }
  if (code === 'SLUICE_INTERNAL') ctx.deps.logger.error({ err, ...logIds(ctx) }, 'unhandled error');
  return refuse(code, undefined, { decision: 'error' });
}
