/**
 * `/admin/v1/tenants/:id/tier`: a tenant's earned or pinned tier (docs/trust.md). Reading needs any
 * admin role; pinning (`PUT {"tier"}`) and unpinning (`DELETE`) need `keys` (admin, operator), are
 * audited, and reach every instance over the invalidation channel.
 */
import type { FastifyInstance } from 'fastify';
import { refuse } from '../core/errors.js';
import type { SqlTrustStore, TenantTierRow } from '../stores/sql/trust-store.js';
import { setTenantTier } from '../trust/tiers.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';

function view(tenant: string, row: TenantTierRow | undefined) {
  return {
    tenant,
    tier: row?.tier ?? null,
    pinned: row?.pinned ?? false,
    since: row ? new Date(row.since).toISOString() : null,
    reason: row?.reason ?? null,
  };
}

export function registerTierRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  o: { store: SqlTrustStore; tiers: () => string[]; changed: () => Promise<void> },
): void {
  const tenantOf = async (id: string) => deps.control.getTenant(id);
  const notFound = (id: string) => refuse('SLUICE_ADMIN_NOT_FOUND', `no tenant "${id.slice(0, 64)}"`);
  app.get('/admin/v1/tenants/:id/tier', { preHandler: guard('read') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (!(await tenantOf(id))) return sendAdminError(reply, notFound(id));
    return view(id, await o.store.tier(id));
  });
  app.put('/admin/v1/tenants/:id/tier', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const tier = (request.body as { tier?: unknown } | undefined)?.tier;
    if (typeof tier !== 'string' || !o.tiers().includes(tier))
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', `tier must be one of ${o.tiers().join(', ')}`),
      );
    if (!(await tenantOf(id))) return sendAdminError(reply, notFound(id));
    const by = request.admin?.name ?? 'admin';
    const { before, after } = await setTenantTier(o.store, id, tier, by, deps.clock.now());
    await o.changed();
    auditAdmin(deps, request, 'tenants.tier.set', { tenant: id, from: before?.tier ?? null, to: tier });
    return view(id, after);
  });
  app.delete('/admin/v1/tenants/:id/tier', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (!(await tenantOf(id))) return sendAdminError(reply, notFound(id));
    const { after } = await setTenantTier(
      o.store,
      id,
      null,
      request.admin?.name ?? 'admin',
      deps.clock.now(),
    );
    await o.changed();
    auditAdmin(deps, request, 'tenants.tier.unpin', { tenant: id, tier: after?.tier ?? null });
    return view(id, after);
  });
}
