/** `sluice policy diff|apply|rollback|history`: policy as code against the stored versions. */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { PolicyService, PolicyServiceError } from '../admin/policy-service.js';
import { formatChanges } from '../config/diff.js';
import { systemClock } from '../core/ports.js';
import { ContextLoader } from '../wiring/policy.js';
import { auditCommand, type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

async function withPolicy<T>(opts: CommonOptions, fn: (svc: PolicyService) => Promise<T>): Promise<T> {
  // The file argument is the policy to apply, not the config to run with: open the stores of the data dir.
  const { stores } = await openForCommand({ dataDir: opts.dataDir, config: opts.config });
  try {
    return await fn(
      new PolicyService(
        stores.control,
        systemClock,
        (v) => {
          auditCommand(stores, 'policy.version', { version: v });
          return stores.publishPolicy(v);
        },
        // Relative paths in the policy (Cedar, reputation lists, geo) resolve beside the file given.
        async (next) => {
          const probe = ContextLoader.forFile(opts.config ? resolve(opts.config) : null);
          try {
            await probe.load(next);
          } finally {
            probe.close();
          }
        },
      ),
    );
  } catch (err) {
    if (err instanceof PolicyServiceError) throw new CliExit(`sluice policy: ${err.message}`);
    throw err;
  } finally {
    await stores.close();
  }
}

const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliExit(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code}`);
  }
};

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('diff, apply, roll back and list policy versions');
  withCommon(
    policy.command('diff <file>').description('show what <file> would change against the running version'),
  ).action(async (file: string, o) => {
    await withPolicy({ dataDir: o.dataDir, config: o.config ?? file }, async (svc) => {
      const { from, changes } = await svc.diff(read(file), file);
      process.stdout.write(`--- running version ${from ?? '(none)'}\n+++ ${file}\n${formatChanges(changes)}`);
    });
  });
  withCommon(
    policy
      .command('apply <file>')
      .description('validate <file> and make it the running version on every instance'),
  )
    .option('-m, --message <text>', 'why', '')
    .option('--author <name>', 'who', userInfo().username)
    .action(async (file: string, o) => {
      await withPolicy({ dataDir: o.dataDir, config: o.config ?? file }, async (svc) => {
        const r = await svc.apply(read(file), o.author, o.message || `apply ${file}`, file);
        if (r.unchanged) process.stdout.write(`${file} is already the running version (${r.version})\n`);
        else process.stdout.write(`${formatChanges(r.changes)}applied ${file} as version ${r.version}\n`);
      });
    });
  withCommon(
    policy
      .command('rollback [version]')
      .description('make an earlier version current again (default: the previous one)'),
  )
    .option('--author <name>', 'who', userInfo().username)
    .action(async (version: string | undefined, o) => {
      await withPolicy(o, async (svc) => {
        const r = await svc.rollback(o.author, version ? Number.parseInt(version, 10) : undefined);
        process.stdout.write(
          `${formatChanges(r.changes)}rolled back to version ${r.restored} (now version ${r.version})\n`,
        );
      });
    });
  withCommon(policy.command('history').description('list stored policy versions'))
    .option('--json', 'print JSON')
    .action(async (o) => {
      await withPolicy(o, async (svc) => {
        const rows = await svc.history();
        if (o.json) return printJson(rows);
        for (const r of rows) {
          process.stdout.write(
            `v${r.version}  ${new Date(r.createdAt).toISOString()}  ${r.hash.slice(0, 12)}  ${r.author}  ${r.message}\n`,
          );
        }
      });
    });
}
