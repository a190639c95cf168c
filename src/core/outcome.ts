/**
 * One data-plane request's outcome, as the gateway reports it to metrics. A neutral type: the gateway
 * produces it and observability consumes it, neither imports the other.
 */
import type { AuditDecision, Usage } from './ports.js';

/** One request's outcome, for metrics. */
export interface Outcome {
  action: string;
  decision: AuditDecision;
  reason: string;
  tenantId: string | null;
  model: string | null;
  status: number;
  usage?: Usage;
  usd?: number;
  stageMs?: Record<string, number>;
  upstream?: string;
  upstreamMs?: number;
  /** The policy version that decided (the metrics' `policy` label; absent: `none`). */
  policyVersion?: number | null;
}
