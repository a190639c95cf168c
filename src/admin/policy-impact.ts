/**
 * The policy evaluator shared by `sluice policy test`, `sluice policy impact` and
 * `POST /admin/v1/policy/impact`: a candidate policy's decisions on a virtual clock, and the replay of
 * the model calls the audit trail recorded in a period.
 */
import { parseConfig } from '../config/load.js';
import { parseDuration } from '../config/schema.js';
import { actionForRoute, ENDPOINT_ACTIONS } from '../core/authz/actions.js';
import { DeprecationTable, isSunset, sunsetDetail } from '../core/deprecations.js';
import { publicMessage, type Refusal, refuse, statusOf } from '../core/errors.js';
import { type ImpactReport, type RecordedCall, replayImpact } from '../core/policy-test/impact.js';
import type { Decision, Evaluator, PolicyCase } from '../core/policy-test/runner.js';
import type { AuditEvent, AuditStore, ControlStore, Endpoint } from '../core/ports.js';
import { principalOf } from '../gateway/auth.js';
import { compileRuntime, type Runtime } from '../gateway/runtime.js';
import { MemoryLimitStore } from '../stores/memory-limit-store.js';
import { accessPolicyFor, ContextLoader, limitPolicyFor } from '../wiring/policy.js';

const ENDPOINT_OF_ACTION = new Map<string, Endpoint>(
  Object.entries(ENDPOINT_ACTIONS).map(([e, a]) => [a, e as Endpoint]),
);

/**
 * The decisions of the data plane for one request, made with the real compiled policy (access
 * policy, model routes, tier caps, deprecations, limit plan) and a memory limit store on a virtual
 * clock. Each evaluator has its own empty buckets. Upstream capacity and admission queues are not
 * modelled (they depend on traffic, not policy).
 */
export function policyEvaluator(rt: Runtime): Evaluator {
  const clock = { t: 0, now: () => clock.t };
  const store = new MemoryLimitStore({ clock });
  const deprecations = new DeprecationTable(rt.cfg.deprecations);
  let n = 0;
  const decide = async (
    p: PolicyCase['principal'],
    r: PolicyCase['request'],
    at: number,
  ): Promise<Refusal | undefined> => {
    clock.t = at;
    const action = actionForRoute('POST', r.path);
    if (!action) return refuse('SLUICE_BAD_REQUEST', `no model endpoint at ${r.path}`);
    const endpoint = ENDPOINT_OF_ACTION.get(action) ?? 'chat';
    const principal = principalOf({
      id: p.key ?? 'keytest00001',
      hash: 'x',
      tenantId: p.tenant,
      tier: p.tier,
      projectId: p.project,
      scopes: p.scopes,
      models: p.models,
      createdAt: 0,
    });
    const body: Record<string, unknown> = { model: r.model, stream: r.stream };
    if (r.maxTokens !== undefined) body.max_tokens = r.maxTokens;
    const estimate = rt.limits.estimate(endpoint, body);
    if (r.tokens !== undefined) estimate.inputTokens = r.tokens;
    const facts = {
      action,
      model: r.model,
      ip: p.ip,
      country: p.country ?? null,
      endUser: p.endUser ?? null,
      now: at,
      endpoint,
      tokenEstimate: estimate.inputTokens + estimate.outputTokens,
    };
    const authz = rt.access.authorize(principal, facts);
    if (authz.refusal) return authz.refusal;
    if (!rt.route(r.model)) return refuse('SLUICE_UNKNOWN_MODEL', r.model, { param: 'model' });
    const tier = rt.cfg.tiers[principal.tier];
    if (tier?.maxTokens !== undefined && r.maxTokens !== undefined && r.maxTokens > tier.maxTokens)
      return refuse('SLUICE_PARAM_OUT_OF_RANGE', `max_tokens may be at most ${tier.maxTokens} on your tier`);
    const dep = deprecations.find({ model: r.model, route: r.path, action, keyId: principal.keyId });
    if (dep && isSunset(dep.entry, at)) return refuse('SLUICE_SUNSET', sunsetDetail(dep));
    const buckets = rt.limits.bucketsFor(principal, facts);
    if (buckets.length === 0) return undefined;
    const costs = rt.limits.costsFor(buckets, r.model, estimate);
    const res = await store.reserve({ buckets, costs, requestId: `test-${++n}` });
    if (!res.ok) return rt.limits.denialFor(res, buckets, costs, 'openai', at);
    // Requests of a case follow one another: each ends (costing its estimate) before the next.
    await store.settle(res.reservation, costs);
    await store.release(res.reservation);
    return undefined;
  };
  return {
    async decide(p, r, at): Promise<Decision> {
      const refusal = await decide(p, r, at);
      if (!refusal) return { outcome: 'allow' };
      return {
        outcome: 'deny',
        code: refusal.code,
        status: statusOf(refusal),
        message: publicMessage(refusal),
      };
    },
  };
}

/** Compiles policy text (its Cedar, reputation and geo files resolved beside `file`) into a runtime. */
export async function runtimeForSource(
  source: string,
  file: string | null,
  name = 'candidate',
): Promise<Runtime> {
  const cfg = parseConfig(source, name);
  const loader = ContextLoader.forFile(file);
  try {
    const services = await loader.load(cfg);
    return compileRuntime(cfg, null, limitPolicyFor(cfg), accessPolicyFor(cfg, services));
  } finally {
    loader.close();
  }
}

/** Audit events of every instance since `since` (ms), in pages. */
async function eventsSince(
  audit: Pick<AuditStore, 'instances' | 'read'>,
  since: number,
): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (const instance of await audit.instances()) {
    let afterSeq = 0;
    for (;;) {
      const page = await audit.read({ instance, since, afterSeq, limit: 5000 });
      events.push(...page);
      if (page.length < 5000) break;
      afterSeq = page[page.length - 1]!.seq;
    }
  }
  return events;
}

/**
 * Replays the model calls recorded since `since` against `rt`; each key with its current record
 * (a key that no longer exists is skipped and counted).
 */
export async function impactSince(
  rt: Runtime,
  stores: { auditStore: Pick<AuditStore, 'instances' | 'read'>; control: Pick<ControlStore, 'getKey'> },
  since: number,
  /** Writes the queued audit events first (a running server's group commit), so the latest calls count. */
  flush?: () => Promise<void>,
): Promise<ImpactReport> {
  await flush?.();
  const events = await eventsSince(stores.auditStore, since);
  const calls: RecordedCall[] = events
    .filter((e) => e.keyId && e.tenantId && e.model && e.decision !== 'admin' && e.decision !== 'system')
    .map((e) => ({
      at: e.at,
      keyId: e.keyId!,
      tenantId: e.tenantId!,
      action: e.action,
      model: e.model!,
      ip: e.clientIp,
      country: e.country,
      decision: e.decision,
      reason: e.reason,
      inputTokens: (e.details?.usage as { inputTokens?: number } | undefined)?.inputTokens,
    }));
  const keys = new Map<string, Awaited<ReturnType<ControlStore['getKey']>>>();
  for (const id of new Set(calls.map((c) => c.keyId))) keys.set(id, await stores.control.getKey(id));
  return replayImpact(
    calls,
    (id) => {
      const k = keys.get(id);
      if (!k || k.revokedAt) return undefined;
      return {
        tenant: k.tenantId,
        tier: k.tier,
        project: k.projectId ?? undefined,
        key: k.id,
        scopes: k.scopes ?? undefined,
        models: k.models ?? undefined,
      };
    },
    policyEvaluator(rt),
  );
}

/** `--since` / `since`: an ISO date, or a duration back from `now` (`24h`); undefined when neither. */
export function sinceOf(text: string, now: number): number | undefined {
  const back = parseDuration(text);
  const at = back !== undefined ? now - back : Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}
