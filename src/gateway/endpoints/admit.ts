/**
 * The checks every endpoint of this folder runs before answering: authentication (the exported
 * `authenticate` of app.ts), authorization of the endpoint's own action, and a cheap reservation
 * (a request, no tokens) against the limits that apply to that action. Denials answer in the caller's
 * wire format and are audited. To be ported onto pipeline stages with the rest of the gateway.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, type Refusal } from '../../core/errors.js';
import type { AuditDecision, Reservation } from '../../core/ports.js';
import { authenticate, type GatewayDeps } from '../app.js';
import type { Principal } from '../auth.js';
import { clientIpOf } from '../client-ip.js';
import { requestLogIds } from '../pipeline/log-ids.js';
import type { RequestFacts, Runtime } from '../runtime.js';
import { sendRefusal, type WireFormat } from '../wire.js';

export interface Admitted {
  principal: Principal;
  rt: Runtime;
  ip: string;
  /** Ends the request's reservation (releases a concurrency lease); call once the answer is sent. */
  done(status: number, reason?: string): void;
}

export interface AdmitOptions {
  action: string;
  model: string | null;
  /** Other actions whose grant also allows this one (count_tokens is allowed to whoever may create messages). */
  alsoAllowedBy?: string[];
  /** Scope refusals are ignored (model listing and retrieval: every key sees what it may use). */
  ignoreScope?: boolean;
  /**
   * Runs once the caller is authenticated and the action authorized, before limits: a batch's declared
   * size (`requests` limits are charged that many requests and token limits the summed estimate,
   * instead of one request and no tokens) and the models it names (each authorized like `model`),
   * or a refusal (bad input, answered in the caller's format).
   */
  prepare?: (p: Principal, rt: Runtime) => Promise<BatchPlan | Refusal>;
}

export interface BatchPlan {
  size: { requests: number; inputTokens: number; outputTokens: number };
  models: string[];
}

function audit(
  deps: GatewayDeps,
  request: FastifyRequest,
  rt: Runtime,
  p: Principal,
  ip: string,
  o: AdmitOptions,
  decision: AuditDecision,
  reason: string,
  status: number,
): void {
  const now = deps.clock.now();
  deps.touch?.(p.keyId, ip, now);
  deps.audit.emit({
    at: now,
    requestId: request.id,
    keyId: p.keyId,
    tenantId: p.tenantId,
    projectId: p.projectId,
    clientIp: ip,
    country: null,
    userAgent: (request.headers['user-agent'] as string | undefined)?.slice(0, 256) ?? null,
    action: o.action,
    model: o.model,
    decision,
    reason,
    policyVersion: rt.version,
    details: null,
  });
  deps.observe?.({
    action: o.action,
    decision,
    reason,
    tenantId: p.tenantId,
    model: o.model,
    status,
    policyVersion: rt.version,
  });
}

/** Authenticates, authorizes and reserves one request; on a denial answers and returns undefined. */
export async function admit(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  format: WireFormat,
  o: AdmitOptions,
): Promise<Admitted | undefined> {
  const rt = deps.runtime();
  const principal = await authenticate(deps, request, reply, format, rt);
  if (!principal) return undefined;
  const ip = clientIpOf(rt, request);
  const facts: RequestFacts = {
    action: o.action,
    model: o.model,
    ip,
    country: rt.access.country(ip),
    endUser: null,
    now: deps.clock.now(),
  };
  let refusal: Refusal | null = rt.access.authorize(principal, facts).refusal;
  if (refusal?.code === 'SLUICE_SCOPE_DENIED') {
    if (o.ignoreScope) refusal = null;
    else
      for (const other of o.alsoAllowedBy ?? []) {
        const r = rt.access.authorize(principal, { ...facts, action: other }).refusal;
        if (!r) {
          refusal = null;
          break;
        }
      }
  }
  let plan: BatchPlan | undefined;
  if (!refusal && o.prepare) {
    const r = await o.prepare(principal, rt);
    if ('kind' in r) refusal = r;
    else plan = r as BatchPlan;
  }
  for (const m of plan?.models ?? []) {
    if (refusal) break;
    if (m !== o.model) refusal = rt.access.authorize(principal, { ...facts, model: m }).refusal;
  }
  if (refusal) {
    audit(deps, request, rt, principal, ip, o, 'refused', refusal.code, ERRORS[refusal.code].status);
    sendRefusal(reply, format, refusal);
    return undefined;
  }
  // Cheap in limits: one request, no tokens, against the limits that name this action (or none).
  const buckets = rt.limits.bucketsFor(principal, facts);
  let reservation: Reservation | undefined;
  if (buckets.length > 0) {
    const size = plan?.size;
    const costs = rt.limits.costsFor(buckets, o.model ?? '', {
      inputTokens: size?.inputTokens ?? 0,
      outputTokens: size?.outputTokens ?? 0,
      images: 0,
    });
    if (size)
      for (let i = 0; i < buckets.length; i++) if (buckets[i]!.kind === 'requests') costs[i] = size.requests;
    let result: Awaited<ReturnType<GatewayDeps['limits']['reserve']>>;
    try {
      result = await deps.limits.reserve({ buckets, costs, requestId: request.id });
    } catch {
      const r: Refusal = { code: 'SLUICE_STORE_UNAVAILABLE', headers: { 'retry-after': '1' } };
      audit(deps, request, rt, principal, ip, o, 'error', r.code, 503);
      sendRefusal(reply, format, r);
      return undefined;
    }
    if (!result.ok) {
      const r = rt.limits.denialFor(result, buckets, costs, format, deps.clock.now());
      audit(deps, request, rt, principal, ip, o, 'throttled', r.code, ERRORS[r.code].status);
      sendRefusal(reply, format, r);
      return undefined;
    }
    reservation = result.reservation;
    reply.headers(rt.limits.headersFor(result.states, format, deps.clock.now()));
  }
  let ended = false;
  return {
    principal,
    rt,
    ip,
    done(status, reason) {
      if (ended) return;
      ended = true;
      const ok = status < 400;
      audit(
        deps,
        request,
        rt,
        principal,
        ip,
        o,
        ok ? 'allowed' : 'error',
        reason ?? (ok ? 'ok' : `status_${status}`),
        status,
      );
      if (reservation) {
        const r = reservation;
        // A failed upstream call is refunded; otherwise the one request stays counted.
        const settled =
          status >= 500
            ? deps.limits.settle(
                r,
                r.costs.map(() => 0),
              )
            : Promise.resolve();
        void settled
          .then(() => deps.limits.release(r))
          .catch((err: Error) =>
            deps.logger.warn({ ...requestLogIds(deps, request), err: err.message }, 'release failed'),
          );
      }
    },
  };
}
