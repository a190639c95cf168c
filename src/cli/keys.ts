/** `sluice keys create|list|show|revoke|rotate|totp`: works directly on the control store of the data dir (or database). */
import type { Command } from 'commander';
import { KeyService, KeyServiceError, publicKeyView } from '../admin/key-service.js';
import { systemClock } from '../core/ports.js';
import { SqlTrustStore } from '../stores/sql/trust-store.js';
import { auditCommand, type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function withKeys<T>(
  opts: CommonOptions,
  fn: (svc: KeyService, notify: (id: string, op: string, tenant?: string) => Promise<void>) => Promise<T>,
): Promise<T> {
  const { source, stores } = await openForCommand(opts);
  try {
    const trust = new SqlTrustStore(stores.sql);
    const svc = new KeyService(
      stores.control,
      stores.pepper,
      systemClock,
      () => Object.keys(source.config.tiers),
      (id, at) => trust.setIssued(id, at),
    );
    return await fn(svc, (id, op, tenant) => {
      auditCommand(stores, `keys.${op}`, { key: id, tenant: tenant ?? null });
      return stores.invalidate(id);
    });
  } catch (err) {
    if (err instanceof KeyServiceError) throw new CliExit(`sluice keys: ${err.message}`);
    throw err;
  } finally {
    await stores.close();
  }
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('create, list, show, revoke and rotate API keys');
  withCommon(keys.command('create').description('create a key; the secret is printed once'))
    .requiredOption('--tenant <tenant>', 'tenant id (created if new)')
    .option('--tier <tier>', 'tier from the policy', 'default')
    .option('--project <project>', 'project id (created if new)')
    .option('--name <name>', 'display name')
    .option('--owner <owner>', 'who is responsible for the key')
    .option('--notes <notes>', 'free text')
    .option('--expires <duration>', 'expiry, e.g. 30d, 12h, or an ISO date')
    .option(
      '--scopes <list>',
      'comma-separated actions (narrows the tier), e.g. chat.create,embeddings.create',
      list,
    )
    .option(
      '--models <list>',
      'comma-separated model globs (narrows the tier), e.g. "gpt-4o*,demo-embed"',
      list,
    )
    .option('--allow-ip <list>', 'comma-separated CIDRs the key may be used from', list)
    .option('--deny-ip <list>', 'comma-separated CIDRs the key may not be used from', list)
    .option('--dpop <mode>', 'required: tokens minted from this key must be DPoP-bound')
    .option('--json', 'print JSON')
    .action(async (o) => {
      await withKeys(o, async (svc, notify) => {
        const { record, key } = await svc.create({
          tenant: o.tenant,
          tier: o.tier,
          project: o.project,
          name: o.name,
          owner: o.owner,
          notes: o.notes,
          expires: o.expires,
          scopes: o.scopes,
          models: o.models,
          allowIps: o.allowIp,
          denyIps: o.denyIp,
          dpop: o.dpop === 'required' || o.dpop === 'optional' ? o.dpop : null,
        });
        await notify(record.id, 'create', record.tenantId);
        if (o.json)
          printJson({
            id: record.id,
            key,
            tenant: record.tenantId,
            tier: record.tier,
            project: record.projectId ?? null,
            expiresAt: publicKeyView(record).expiresAt,
          });
        else {
          process.stdout.write(`Created key ${record.id} (tenant ${record.tenantId}, tier ${record.tier})\n`);
          process.stdout.write(
            `\n  ${key}\n\nThis is the only time the secret is shown; Sluice stores only its hash.\n`,
          );
        }
      });
    });
  withCommon(keys.command('list').description('list keys'))
    .option('--tenant <tenant>')
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const { stores } = await openForCommand(o);
      try {
        const rows = (await stores.control.listKeys({ tenantId: o.tenant, includeRevoked: !!o.all })).map(
          publicKeyView,
        );
        if (o.json) return printJson(rows);
        if (rows.length === 0) return void process.stdout.write('no keys\n');
        const cols = [
          'id',
          'tenant',
          'project',
          'tier',
          'status',
          'name',
          'expiresAt',
          'lastUsedAt',
        ] as const;
        const table = [cols as readonly string[], ...rows.map((r) => cols.map((c) => String(r[c] ?? '-')))];
        const w = cols.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
        for (const r of table)
          process.stdout.write(
            `${r
              .map((c, i) => c.padEnd(w[i]!))
              .join('  ')
              .trimEnd()}\n`,
          );
      } finally {
        await stores.close();
      }
    });
  withCommon(keys.command('show <id>').description('show one key (never its secret)')).action(
    async (id: string, o) => {
      await withKeys(o, async (svc) => printJson(publicKeyView(await svc.get(id))));
    },
  );
  withCommon(keys.command('revoke <id>').description('revoke a key at once')).action(
    async (id: string, o) => {
      await withKeys(o, async (svc, notify) => {
        const rec = await svc.revoke(id);
        await notify(id, 'revoke');
        process.stdout.write(`Revoked key ${rec.id}\n`);
      });
    },
  );
  withCommon(
    keys
      .command('totp <id>')
      .description('enroll a TOTP second factor for step-up; the secret is printed once'),
  )
    .option('--json', 'print JSON')
    .action(async (id: string, o) => {
      await withKeys(o, async (svc, notify) => {
        const r = await svc.enrollTotp(id);
        await notify(id, 'totp');
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `TOTP enrolled for key ${id}. Add it to an authenticator app:\n\n  ${r.otpauthUrl}\n\nsecret: ${r.secret}\n`,
          );
      });
    });
  withCommon(
    keys
      .command('rotate <id>')
      .description('issue a new secret; the old one works until the grace period ends'),
  )
    .option('--grace <duration>', 'how long the old secret keeps working', '24h')
    .option('--json', 'print JSON')
    .action(async (id: string, o) => {
      await withKeys(o, async (svc, notify) => {
        const { record, key } = await svc.rotate(id, o.grace);
        await notify(id, 'rotate');
        const graceEnds = publicKeyView(record).rotationGraceEndsAt;
        if (o.json) printJson({ id: record.id, key, graceEndsAt: graceEnds });
        else
          process.stdout.write(
            `Rotated key ${record.id}; the old secret works until ${graceEnds}\n\n  ${key}\n\nThis is the only time the secret is shown.\n`,
          );
      });
    });
}
