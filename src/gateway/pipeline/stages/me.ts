/**
 * Stage `describeKey` of `GET /sluice/v1/me`: the calling key, its scopes and models, and every limit
 * that can apply to it with what is left now. Leaves the answer on `ctx.answer`; a limit store
 * outage is a 503 with a retry time.
 */
import { ENDPOINT_ACTIONS } from '../../../core/authz/actions.js';
import { type Refusal, refuse } from '../../../core/errors.js';
import type { BucketState, LimitBucket } from '../../../core/ports.js';
import type { RequestFacts } from '../../runtime.js';
import type { RequestContext } from '../context.js';
import { logIds } from '../log-ids.js';
import { deprecationsFor } from './me-deprecations.js';

export async function describeKey(ctx: RequestContext): Promise<Refusal | undefined> {
  const { rt, deps } = ctx;
  const principal = ctx.principal!;
  // Every limit that can apply to this key: each action, with no model and with a sample name for every
  // model the routes, upstreams and limits mention (`gpt-4*` is sampled as `gpt-4`), deduplicated.
  const actions = [...Object.values(ENDPOINT_ACTIONS), ...Object.keys(rt.cfg.tasks).map((t) => `tasks.${t}`)];
  const models = new Set<string | null>([null]);
  for (const m of rt.cfg.models) models.add(m.match.replaceAll('*', '') || null);
  for (const u of deps.upstreams.values()) for (const m of u.advertisedModels()) models.add(m.id);
  const limitLists = [
    ...Object.values(rt.cfg.tiers).map((t) => t.limits),
    ...[rt.cfg.tenants, rt.cfg.projects, rt.cfg.keys].flatMap((o) =>
      Object.values(o).map((x) => x.limits ?? []),
    ),
  ];
  for (const list of limitLists)
    for (const l of list) for (const m of l.models ?? []) models.add(m.replaceAll('*', '') || null);
  const seen = new Set<string>();
  const buckets: LimitBucket[] = [];
  const now = deps.clock.now();
  for (const action of actions) {
    for (const model of models) {
      const facts: RequestFacts = { action, model, ip: ctx.ip, country: null, endUser: null, now };
      for (const b of rt.limits.bucketsFor(principal, facts)) {
        if (seen.has(b.key)) continue;
        seen.add(b.key);
        buckets.push(b);
      }
    }
  }
  let states: BucketState[] = [];
  try {
    states = buckets.length ? await deps.limits.peek(buckets) : [];
  } catch (err) {
    deps.logger.error({ err: (err as Error).message, ...logIds(ctx) }, 'limit store failed');
    return refuse('SLUICE_STORE_UNAVAILABLE', undefined, { decision: 'error' });
  }
  const tier = rt.cfg.tiers[principal.tier];
  const scopes = principal.record.scopes ?? tier?.scopes ?? [];
  ctx.answer = {
    key: {
      id: principal.keyId,
      tenant: principal.tenantId,
      project: principal.projectId,
      tier: principal.tier,
      expiresAt: principal.record.expiresAt ?? null,
    },
    scopes: principal.record.scopes ?? tier?.scopes ?? [],
    models: principal.record.models ?? tier?.models ?? [],
    limits: states.map((s, i) => ({
      id: s.id,
      per: s.per,
      kind: s.kind,
      limit: s.limit,
      // Money is shown to the micro-dollar; everything else counts whole units.
      used: round(s.kind, Math.max(0, s.limit - s.remaining)),
      remaining: round(s.kind, s.remaining),
      resetMs: s.resetMs,
      resetAt: new Date(deps.clock.now() + s.resetMs).toISOString(),
      window: s.windowMs,
      mode: buckets[i]?.shadow ? 'shadow' : 'enforce',
      actions: undefined,
    })),
    // Capabilities paused pending review: what, why in plain words, until when, how to appeal.
    paused: deps.abuse?.pausedFor?.(principal.keyId, principal.tenantId) ?? [],
    // What this key can use that is deprecated or retired (issue 19): what, when, the replacement, the link.
    deprecations: deprecationsFor(rt, principal, scopes, models, now),
    // Earned tier: current, next and what it takes; this tenant's keys nearing rotation.
    trust: deps.trust?.describe(principal) ?? null,
  };
  return undefined;
}

function round(kind: string, v: number): number {
  return kind === 'usd' ? Math.round(v * 1e6) / 1e6 : Math.round(v);
}
