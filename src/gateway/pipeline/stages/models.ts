/**
 * Stages of `GET /v1/models`: `authorizeListing` (listing is allowed to every key — it shows only
 * what the key may use — but context rules still apply) and `listModels`, which leaves the list on
 * `ctx.answer`.
 */
import type { Refusal } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

export function authorizeListing(ctx: RequestContext): Refusal | undefined {
  const authz = ctx.rt.access.authorize(ctx.principal!, {
    action: ctx.action,
    model: null,
    ip: ctx.ip,
    country: null,
    endUser: null,
    now: ctx.deps.clock.now(),
  });
  if (authz.refusal && authz.refusal.code !== 'SLUICE_SCOPE_DENIED') return authz.refusal;
  return undefined;
}

export function listModels(ctx: RequestContext): undefined {
  const { rt, deps } = ctx;
  const principal = ctx.principal!;
  const seen = new Set<string>();
  const data: { id: string; object: 'model'; created: number; owned_by: string }[] = [];
  const add = (id: string, owner: string) => {
    if (seen.has(id) || !rt.access.modelAllowed(principal, id)) return;
    const route = rt.route(id);
    if (!route) return;
    seen.add(id);
    data.push({ id, object: 'model', created: 1_700_000_000, owned_by: owner });
  };
  // Concrete names in routes and tasks, then what upstreams advertise (the mock's demo models).
  for (const m of rt.cfg.models) if (!m.match.includes('*')) add(m.match, m.upstream);
  for (const u of deps.upstreams.values())
    for (const m of u.advertisedModels()) if (rt.route(m.id)?.upstream === u.name) add(m.id, u.name);
  ctx.answer = { object: 'list', data };
  return undefined;
}
