/** `sluice tenants tier [TENANT] [--set T | --unpin]`: shows earned tiers, or pins / unpins one. */
import type { Command } from 'commander';
import { SqlTrustStore } from '../stores/sql/trust-store.js';
import { TIERS_CHANGED } from '../trust/service.js';
import { formatTier, setTenantTier } from '../trust/tiers.js';
import { auditCommand, type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

export function registerTenants(program: Command): void {
  const tenants = program.command('tenants').description('tenants: earned tiers and overrides');
  withCommon(
    tenants
      .command('tier [tenant]')
      .description(
        'show the earned or pinned tier of a tenant (of every tenant that has one, without TENANT), or pin / unpin it',
      ),
  )
    .option('--set <tier>', 'pin the tenant to this tier (evaluation leaves it alone until --unpin)')
    .option('--unpin', 'let the tenant earn its tier again, from where it stands')
    .option('--json', 'print JSON')
    .action(
      async (
        tenant: string | undefined,
        o: CommonOptions & { set?: string; unpin?: boolean; json?: boolean },
      ) => {
        if ((o.set || o.unpin) && !tenant)
          throw new CliExit('sluice tenants tier: --set and --unpin need a tenant');
        if (o.set && o.unpin) throw new CliExit('sluice tenants tier: give --set or --unpin, not both');
        const { source, stores } = await openForCommand(o);
        try {
          const store = new SqlTrustStore(stores.sql);
          if (o.set && !source.config.tiers[o.set])
            throw new CliExit(
              `sluice tenants tier: unknown tier "${o.set}" (the policy has: ${Object.keys(source.config.tiers).join(', ')})`,
            );
          if (tenant && !(await stores.control.getTenant(tenant)))
            throw new CliExit(`sluice tenants tier: no tenant "${tenant}"`);
          if (o.set || o.unpin) {
            const by = `cli (${process.env.USER ?? 'unknown'})`;
            const { before, after } = await setTenantTier(store, tenant!, o.set ?? null, by, Date.now());
            auditCommand(stores, o.set ? 'tenants.tier.set' : 'tenants.tier.unpin', {
              tenant,
              from: before?.tier ?? null,
              to: after?.tier ?? null,
              pinned: after?.pinned ?? false,
            });
            await stores.invalidate(TIERS_CHANGED);
            if (o.json) printJson(after ?? null);
            else process.stdout.write(formatTier(tenant!, after));
            return;
          }
          const rows = tenant
            ? [await store.tier(tenant)].filter((r) => r !== undefined)
            : await store.tiers();
          if (o.json) printJson(rows);
          else if (tenant) process.stdout.write(formatTier(tenant, rows[0]));
          else if (rows.length === 0) process.stdout.write('no tenant has an earned or pinned tier yet\n');
          else for (const r of rows) process.stdout.write(formatTier(r.tenantId, r));
        } finally {
          await stores.close();
        }
      },
    );
}
