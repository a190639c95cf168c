/**
 * `sluice exceptions list|show|approve|deny|revoke`: the exception queue, on the control store of the
 * data dir (or database), as `/admin/v1/exceptions` does. Whoever can run the CLI against the data
 * dir holds the pepper and the database already, so approvals here need no TOTP step-up.
 * Running instances pick a decision up on their next reload (2 s, or at once over Redis).
 */
import type { Command } from 'commander';
import { exceptionView } from '../core/exceptions/model.js';
import { systemClock } from '../core/ports.js';
import { ExceptionError, ExceptionService } from '../gateway/portal/exception-service.js';
import { EXCEPTIONS_CHANGED } from '../gateway/portal/wiring.js';
import { SqlExceptionStore } from '../stores/sql/exception-store.js';
import { type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

const who = () => `cli:${process.env.USER ?? 'unknown'}`;
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function withService<T>(opts: CommonOptions, fn: (svc: ExceptionService) => Promise<T>): Promise<T> {
  const { source, stores } = await openForCommand(opts);
  try {
    const svc = new ExceptionService({
      store: new SqlExceptionStore(stores.sql),
      clock: systemClock,
      audit: stores.audit,
      config: () => source.config,
      publish: () => stores.invalidate(EXCEPTIONS_CHANGED),
    });
    return await fn(svc);
  } catch (err) {
    if (err instanceof ExceptionError) throw new CliExit(`sluice exceptions: ${err.message}`);
    throw err;
  } finally {
    await stores.close();
  }
}

function line(v: ReturnType<typeof exceptionView>): string {
  const g = v.granted ?? v.requested;
  const what = [
    ...g.limits.map((l) => `${l.id}=${l.limit}`),
    ...g.models.map((m) => `model:${m}`),
    ...g.scopes.map((s) => `scope:${s}`),
  ].join(' ');
  const until =
    v.status === 'approved'
      ? ` until ${v.expiresAt}`
      : v.status === 'pending'
        ? ` (unanswered by ${v.requestExpiresAt})`
        : '';
  return `${v.id}  ${v.status.padEnd(8)}  ${v.tenant}${v.key ? `/${v.key}` : ' (all keys)'}  ${what}  ${v.duration}s${until}`;
}

export function registerExceptions(program: Command): void {
  const cmd = program
    .command('exceptions')
    .description('review, approve, deny and revoke exception requests');
  withCommon(cmd.command('list').description('list exception requests, newest first'))
    .option('--status <status>', 'pending, approved, denied, revoked or expired')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'print JSON')
    .action(async (o: CommonOptions & { status?: string; tenant?: string; json?: boolean }) => {
      await withService(o, async (svc) => {
        const now = Date.now();
        const rows = (await svc.list({ tenantId: o.tenant }))
          .map((r) => exceptionView(r, now))
          .filter((v) => !o.status || v.status === o.status);
        if (o.json) return printJson(rows);
        if (rows.length === 0) return void process.stdout.write('no exceptions\n');
        for (const v of rows) process.stdout.write(`${line(v)}\n`);
      });
    });
  withCommon(cmd.command('show <id>').description('show one exception request')).action(
    async (id: string, o: CommonOptions) => {
      await withService(o, async (svc) => printJson(exceptionView(await svc.get(id), Date.now())));
    },
  );
  withCommon(cmd.command('approve <id>').description('approve, optionally narrowed'))
    .option(
      '--limit <id=amount...>',
      'grant a lower amount for a requested limit, e.g. rpm=500',
      (v, acc: string[] = []) => [...acc, v],
    )
    .option('--models <list>', 'grant only these of the requested models', list)
    .option('--scopes <list>', 'grant only these of the requested scopes', list)
    .option('--duration <seconds>', 'grant a shorter duration', (v) => Number.parseInt(v, 10))
    .option('--note <text>', 'note for the requester and the audit trail')
    .action(
      async (
        id: string,
        o: CommonOptions & {
          limit?: string[];
          models?: string[];
          scopes?: string[];
          duration?: number;
          note?: string;
        },
      ) => {
        await withService(o, async (svc) => {
          const limits = o.limit?.map((s) => {
            const [lid, amount] = s.split('=');
            return { id: lid, limit: Number(amount) };
          });
          const r = await svc.approve(
            id,
            { limits, models: o.models, scopes: o.scopes, duration: o.duration, note: o.note },
            who(),
            true,
          );
          process.stdout.write(`${line(exceptionView(r, Date.now()))}\n`);
        });
      },
    );
  for (const op of ['deny', 'revoke'] as const) {
    withCommon(
      cmd
        .command(`${op} <id>`)
        .description(op === 'deny' ? 'deny a pending request' : 'end an approved exception now'),
    )
      .option('--note <text>', 'note for the requester and the audit trail')
      .action(async (id: string, o: CommonOptions & { note?: string }) => {
        await withService(o, async (svc) => {
          const r = op === 'deny' ? await svc.deny(id, o.note, who()) : await svc.revoke(id, o.note, who());
          process.stdout.write(`${line(exceptionView(r, Date.now()))}\n`);
        });
      });
  }
}
