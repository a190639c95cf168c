/**
 * `sluice cases list|show|release|extend|confirm|note`: abuse cases for review, on the control store
 * of the data dir (or database), as `/admin/v1/cases` does. Whoever can run the CLI against the data
 * dir holds the pepper and the database already, so a release here needs no TOTP step-up. Every
 * transition is audited (`abuse.case.*` and `cli.cases.*`); running instances apply it on their next
 * poll (1 s), or at once when Redis carries the `~cases` announcement. A release sends the partner's
 * signed webhook (the `quarantine` alert) as the admin API does.
 */
import type { Command } from 'commander';
import { CASES_CHANGED, CaseSync, caseAlert, caseAuditEvent } from '../abuse/case-sync.js';
import { type AbuseCase, AbuseEngine, type CaseStatus } from '../abuse/engine.js';
import { parseDuration } from '../config/schema.js';
import { systemClock } from '../core/ports.js';
import { AlertEngine } from '../observability/alerts.js';
import { SqlCaseStore } from '../stores/sql/case-store.js';
import { auditCommand, type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

const who = () => `cli:${process.env.USER ?? 'unknown'}`;
const STATUSES: CaseStatus[] = ['open', 'confirmed', 'released', 'expired'];

function line(c: AbuseCase): string {
  const subject = c.subject.keyId
    ? `key ${c.subject.keyId}`
    : c.subject.tenantId
      ? `tenant ${c.subject.tenantId}`
      : `net ${c.subject.net ?? c.subject.ip ?? '?'}`;
  const members = c.evidence.related.keys.length;
  const until = c.expiresAt === null ? '' : ` until ${new Date(c.expiresAt).toISOString()}`;
  return `${c.id}  ${c.status.padEnd(9)}  ${c.kind.padEnd(10)}  ${c.capability}  ${c.detector} (${c.category})  ${subject}${members ? ` +${members} keys` : ''}${until}`;
}

/** Opens the store, loads one case into an engine whose changes are written through, audited and announced. */
async function withCase(
  opts: CommonOptions,
  id: string,
  op: string,
  fn: (engine: AbuseEngine, c: AbuseCase) => boolean,
): Promise<void> {
  const { source, stores } = await openForCommand(opts);
  // The partner's webhook, as the admin API sends it (the `quarantine` alert, signed), when
  // `alerts:` subscribes one: a release from the CLI tells the partner too.
  const alerts =
    source.config.alerts.length > 0
      ? new AlertEngine({
          config: () => source.config.alerts,
          clock: systemClock,
          audit: stores.audit,
          logger: { warn: () => {}, info: () => {} },
          retry: { attempts: 3, baseMs: 500, maxMs: 2000 },
          timeoutMs: 5000,
        })
      : undefined;
  try {
    const store = new SqlCaseStore(stores.sql);
    const stored = await store.get(id);
    if (!stored) throw new CliExit(`sluice cases: no case "${id.slice(0, 64)}"`);
    const sync = new CaseSync({ store, clock: systemClock, publish: () => stores.invalidate(CASES_CHANGED) });
    const engine = new AbuseEngine({
      defer: null,
      clock: systemClock,
      onStore: (c) => sync.save(c),
      onCase: (c, transition) => {
        stores.audit.emit(caseAuditEvent(c, transition, Date.now(), null));
        sync.announce();
        const alert = caseAlert(c, transition);
        if (alert && alerts) alerts.notify(alert);
      },
    });
    sync.attach(engine);
    engine.restore(stored);
    if (!fn(engine, engine.getCase(id)!)) throw new CliExit(`sluice cases: case ${id} is closed`);
    await sync.flush();
    const after = await store.get(id);
    auditCommand(stores, `cases.${op}`, {
      case: id,
      key: after?.subject.keyId,
      tenant: after?.subject.tenantId,
    });
    process.stdout.write(`${line(after ?? engine.getCase(id)!)}\n`);
    if (alerts) {
      // Bounded: deliveries still retrying after 15 s fail as `shutdown` (audited).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([alerts.idle(), new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
    }
  } finally {
    await alerts?.close();
    await stores.close();
  }
}

export function registerCases(program: Command): void {
  const cmd = program
    .command('cases')
    .description('review abuse cases (flags, throttles, quarantines): release, extend, confirm, note');
  withCommon(cmd.command('list').description('list abuse cases, newest first'))
    .option('--status <status>', STATUSES.join(', '))
    .option('--tenant <tenant>', 'only this tenant')
    .option('--key <key>', 'only this key (as the subject)')
    .option('--limit <n>', 'at most this many (default 200)', (v) => Number.parseInt(v, 10))
    .option('--json', 'print JSON')
    .action(
      async (
        o: CommonOptions & { status?: string; tenant?: string; key?: string; limit?: number; json?: boolean },
      ) => {
        if (o.status && !STATUSES.includes(o.status as CaseStatus))
          throw new CliExit(`sluice cases: --status must be one of ${STATUSES.join(', ')}`);
        const { stores } = await openForCommand(o);
        try {
          const rows = await new SqlCaseStore(stores.sql).list({
            status: o.status as CaseStatus | undefined,
            tenantId: o.tenant,
            keyId: o.key,
            limit: o.limit && o.limit > 0 ? o.limit : 200,
          });
          if (o.json) return printJson(rows);
          if (rows.length === 0) return void process.stdout.write('no cases\n');
          for (const c of rows) process.stdout.write(`${line(c)}\n`);
        } finally {
          await stores.close();
        }
      },
    );
  withCommon(cmd.command('show <id>').description('show one case with its evidence (JSON)')).action(
    async (id: string, o: CommonOptions) => {
      const { stores } = await openForCommand(o);
      try {
        const c = await new SqlCaseStore(stores.sql).get(id);
        if (!c) throw new CliExit(`sluice cases: no case "${id.slice(0, 64)}"`);
        printJson(c);
      } finally {
        await stores.close();
      }
    },
  );
  withCommon(cmd.command('release <id>').description('end a quarantine or throttle now'))
    .option('--note <text>', 'note for the audit trail')
    .action(async (id: string, o: CommonOptions & { note?: string }) => {
      await withCase(o, id, 'release', (e) => e.release(id, who(), o.note?.slice(0, 2000)));
    });
  withCommon(cmd.command('extend <id>').description('keep a hold longer'))
    .requiredOption('--by <duration>', 'how much longer, e.g. 12h')
    .action(async (id: string, o: CommonOptions & { by: string }) => {
      const ms = parseDuration(o.by);
      if (ms === undefined || ms <= 0) throw new CliExit('sluice cases: --by must be a duration such as 12h');
      await withCase(o, id, 'extend', (e, c) =>
        e.extend(id, Math.max(c.expiresAt ?? Date.now(), Date.now()) + ms, who()),
      );
    });
  withCommon(
    cmd.command('confirm <id>').description('agree with the case; the hold stays until its expiry'),
  ).action(async (id: string, o: CommonOptions) => {
    await withCase(o, id, 'confirm', (e) => e.confirm(id, who()));
  });
  withCommon(cmd.command('note <id> <text>').description('add a note to a case')).action(
    async (id: string, text: string, o: CommonOptions) => {
      await withCase(o, id, 'note', (e) => e.note(id, who(), text));
    },
  );
}
