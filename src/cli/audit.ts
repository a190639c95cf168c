/** `sluice audit verify|export|prune`: the tamper-evident trail, checked and exported. */
import type { Command } from 'commander';
import { parseDuration } from '../config/schema.js';
import { verifyAudit } from '../core/audit/verify-audit.js';
import { loadAuditPublicKey } from '../stores/data-dir.js';
import { type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

function timeArg(v: string | undefined, now: number): number | undefined {
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (d !== undefined) return now - d;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new CliExit(`"${v}" is neither a date nor a duration such as 24h`);
  return t;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('verify and export the tamper-evident audit trail');
  withCommon(
    audit
      .command('verify')
      .description('check every chain; exit 1 naming the first event edited, deleted, inserted or reordered'),
  )
    .option(
      '--public-key <pem>',
      'verify checkpoint signatures with this public key (default: the data dir key)',
    )
    .option('--instance <id>', 'only this instance')
    .option('--json', 'print JSON')
    .action(async (o: CommonOptions & { publicKey?: string; instance?: string; json?: boolean }) => {
      const { stores } = await openForCommand(o);
      try {
        const key = o.publicKey ? loadAuditPublicKey(o.publicKey) : stores.auditKey.publicKey;
        const report = await verifyAudit(stores.auditStore, key, { instance: o.instance });
        if (o.json) printJson(report);
        else {
          if (report.instances.length === 0) process.stdout.write('no audit events yet\n');
          for (const r of report.instances) {
            process.stdout.write(
              r.ok
                ? `ok    ${r.instance}: ${r.events} events, head seq ${r.lastSeq}\n`
                : `FAIL  ${r.instance}: ${r.message}\n`,
            );
          }
        }
        if (!report.ok) throw new CliExit('audit verification failed', 1);
      } finally {
        await stores.close();
      }
    });
  withCommon(audit.command('export').description('export events as JSON lines (for a SIEM)'))
    .option('--since <when>', 'ISO date or a duration back from now (24h)')
    .option('--until <when>', 'ISO date or a duration back from now')
    .option('--instance <id>', 'only this instance')
    .option('--format <fmt>', 'jsonl', 'jsonl')
    .action(
      async (o: CommonOptions & { since?: string; until?: string; instance?: string; format: string }) => {
        if (o.format !== 'jsonl') throw new CliExit(`unknown format "${o.format}" (supported: jsonl)`);
        const now = Date.now();
        const since = timeArg(o.since, now);
        const until = timeArg(o.until, now);
        const { stores } = await openForCommand(o);
        try {
          const instances = o.instance ? [o.instance] : await stores.auditStore.instances();
          for (const instance of instances) {
            let afterSeq = 0;
            for (;;) {
              const page = await stores.auditStore.read({ instance, since, until, afterSeq, limit: 5000 });
              for (const e of page) process.stdout.write(`${JSON.stringify(e)}\n`);
              if (page.length < 5000) break;
              afterSeq = page[page.length - 1]!.seq;
            }
          }
        } finally {
          await stores.close();
        }
      },
    );
  withCommon(
    audit
      .command('prune')
      .description('delete events older than the retention, recording a signed checkpoint'),
  )
    .requiredOption('--older-than <duration>', 'e.g. 90d')
    .action(async (o: CommonOptions & { olderThan: string }) => {
      const d = parseDuration(o.olderThan);
      if (d === undefined) throw new CliExit(`"${o.olderThan}" is not a duration`);
      const { stores } = await openForCommand(o);
      try {
        const r = await stores.auditStore.prune(Date.now() - d, Date.now());
        printJson(r);
      } finally {
        await stores.close();
      }
    });
}
