/**
 * Operator overrides of earned tiers (`sluice tenants tier`): setting a tier pins it (evaluation
 * leaves the tenant alone) until it is unpinned, after which the tenant earns from where it stands.
 */
import type { SqlTrustStore, TenantTierRow } from '../stores/sql/trust-store.js';

export async function setTenantTier(
  store: SqlTrustStore,
  tenantId: string,
  tier: string | null,
  by: string,
  now: number,
): Promise<{ before: TenantTierRow | undefined; after: TenantTierRow | undefined }> {
  // Compare-and-set against what was read: retried when an evaluation pass moved the tenant meanwhile.
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = await store.tier(tenantId);
    if (tier === null && !before) return { before, after: before };
    const next =
      tier === null
        ? {
            ...before!,
            pinned: false,
            reason: `unpinned by ${by}`,
            updatedAt: Math.max(now, before!.updatedAt + 1),
          }
        : {
            tier,
            pinned: true,
            since: now,
            reason: `set by ${by}`,
            updatedAt: Math.max(now, (before?.updatedAt ?? 0) + 1),
          };
    if (await store.move(tenantId, before, next)) return { before, after: await store.tier(tenantId) };
  }
  throw new Error(`tenant "${tenantId}" kept changing; try again`);
}

export function formatTier(tenantId: string, row: TenantTierRow | undefined): string {
  if (!row) return `${tenantId}: no earned or pinned tier (its keys' own tiers apply)\n`;
  return `${tenantId}: ${row.tier}${row.pinned ? ' (pinned)' : ''} since ${new Date(row.since).toISOString()} — ${row.reason}\n`;
}
