/**
 * The one audit-event builder of the data plane: every decision (allowed, refused, throttled,
 * error) is recorded here, with its metrics outcome and the key's last use. Never throws; never blocks.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditDecision, AuditEventInput, BucketState, Usage } from '../../core/ports.js';
import type { Principal } from '../auth.js';
import type { GatewayDeps } from './deps.js';

export interface DecisionInput {
  action: string;
  model: string | null;
  decision: AuditDecision;
  reason: string;
  status: number;
  ip: string;
  country?: string | null;
  /** The key a refused credential named, when there is no principal (a revoked key). */
  keyId?: string | null;
  states?: BucketState[];
  details?: Record<string, unknown>;
  usage?: Usage;
  usd?: number;
  upstream?: string;
  upstreamMs?: number;
  stageMs?: Record<string, number>;
}

/** The audit event for one decision. Limit states are kept when they decided or came close. */
export function auditEvent(
  at: number,
  request: Pick<FastifyRequest, 'id' | 'headers'>,
  policyVersion: number | null,
  p: Principal | null,
  r: DecisionInput,
): AuditEventInput {
  let details: Record<string, unknown> | null = r.details ?? null;
  if (
    r.states &&
    r.states.length > 0 &&
    (r.decision !== 'allowed' || r.states.some((s) => s.remaining < s.limit * 0.2))
  ) {
    details = {
      ...details,
      limits: r.states.map((s) => ({ id: s.id, per: s.per, limit: s.limit, remaining: s.remaining })),
    };
  }
  // No spread of a null: an allowed call usually has no other details.
  if (r.usage)
    details = details ? { ...details, usage: r.usage, usd: r.usd } : { usage: r.usage, usd: r.usd };
  return {
    at,
    requestId: request.id,
    keyId: p?.keyId ?? r.keyId ?? null,
    tenantId: p?.tenantId ?? null,
    projectId: p?.projectId ?? null,
    clientIp: r.ip,
    country: r.country ?? null,
    userAgent: (request.headers['user-agent'] as string | undefined)?.slice(0, 256) ?? null,
    action: r.action,
    model: r.model,
    decision: r.decision,
    reason: r.reason,
    policyVersion,
    details,
  };
}

/** Audit, metrics and last-used for one decision. */
export function recordDecision(
  deps: GatewayDeps,
  request: Pick<FastifyRequest, 'id' | 'headers'>,
  policyVersion: number | null,
  p: Principal | null,
  r: DecisionInput,
): void {
  const now = deps.clock.now();
  if (p) deps.touch?.(p.keyId, r.ip, now);
  deps.audit.emit(auditEvent(now, request, policyVersion, p, r));
  deps.observe?.({
    action: r.action,
    decision: r.decision,
    reason: r.reason,
    tenantId: p?.tenantId ?? null,
    model: r.model,
    status: r.status,
    usage: r.usage,
    usd: r.usd,
    upstream: r.upstream,
    upstreamMs: r.upstreamMs,
    stageMs: r.stageMs,
    policyVersion,
  });
}
