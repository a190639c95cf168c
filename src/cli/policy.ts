/** `sluice policy diff|apply|rollback|history|test|impact|watch`: policy as code against the stored versions. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { impactSince, policyEvaluator, sinceOf } from '../admin/policy-impact.js';
import { PolicyService, PolicyServiceError } from '../admin/policy-service.js';
import { formatChanges } from '../config/diff.js';
import { parseConfig } from '../config/load.js';
import { resolveConfig } from '../config/resolve.js';
import type { SluiceConfig } from '../config/schema.js';
import { formatImpact } from '../core/policy-test/impact.js';
import {
  CaseError,
  type CaseResult,
  formatResults,
  type PolicyCase,
  parseCases,
  runCase,
} from '../core/policy-test/runner.js';
import { systemClock } from '../core/ports.js';
import { compileRuntime, type Runtime } from '../gateway/runtime.js';
import { formatWatch, type WatchReport } from '../observability/policy-watch.js';
import { accessPolicyFor, ContextLoader, limitPolicyFor } from '../wiring/policy.js';
import { auditCommand, type CommonOptions, openForCommand, printJson, withCommon } from './common.js';
import { CliExit } from './exit.js';

export { policyEvaluator };

async function withPolicy<T>(
  opts: CommonOptions,
  fn: (svc: PolicyService, stores: Awaited<ReturnType<typeof openForCommand>>['stores']) => Promise<T>,
): Promise<T> {
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
      stores,
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
    .option('--tests <files...>', 'decision tests to run first (default: policy-tests/*.yaml beside <file>)')
    .option('--force', 'apply even when a decision test fails (audited)')
    .action(async (file: string, o) => {
      // Decision tests run before anything is stored; a failure refuses the apply unless --force.
      const given: string[] = o.tests ?? [];
      const hasDefault = existsSync(join(dirname(resolve(file)), 'policy-tests'));
      const results = given.length > 0 || hasDefault ? await runPolicyTests(file, given) : [];
      const failed = results.filter((r) => !r.passed);
      if (failed.length > 0) {
        process.stderr.write(formatResults(failed));
        if (!o.force)
          throw new CliExit(
            `sluice policy: ${failed.length} decision test(s) failed; not applied (use --force to apply anyway)`,
          );
      }
      await withPolicy({ dataDir: o.dataDir, config: o.config ?? file }, async (svc, stores) => {
        if (failed.length > 0) {
          auditCommand(stores, 'policy.apply_forced', {
            file,
            author: o.author,
            failedTests: failed.map((r) => `${r.file} > ${r.name}`),
          });
          process.stderr.write(
            `applying despite ${failed.length} failed decision test(s) (--force, audited)\n`,
          );
        } else if (results.length > 0) process.stdout.write(`${results.length} decision test(s) passed\n`);
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
  policy
    .command('test [policy] [tests...]')
    .description('run decision tests (YAML cases) against a policy; exit 1 when one fails')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, tests: string[], o) => {
      const results = await runPolicyTests(file, tests);
      if (o.json) printJson(results);
      else process.stdout.write(formatResults(results));
      if (results.some((r) => !r.passed)) process.exitCode = 1;
    });
  withCommon(
    policy
      .command('impact <candidate>')
      .description(
        'replay the recorded calls of a period against <candidate>: what it would refuse or allow',
      ),
  )
    .option('--since <when>', 'ISO date or a duration back from now', '24h')
    .option('--json', 'print JSON')
    .action(async (candidate: string, o) => {
      const since = sinceOf(o.since, Date.now());
      if (since === undefined) throw new CliExit(`"${o.since}" is neither a date nor a duration such as 24h`);
      const { rt } = await runtimeForPolicy(candidate);
      const { stores } = await openForCommand({ dataDir: o.dataDir, config: o.config });
      try {
        const report = await impactSince(rt, stores, since);
        if (o.json) printJson(report);
        else process.stdout.write(formatImpact(report));
      } finally {
        await stores.close();
      }
    });
  policy
    .command('watch')
    .description('compare error rate, 429 rate, added latency and throughput before and after the last apply')
    .option('--minutes <n>', 'minutes before and after the apply', '10')
    .option('--admin <url>', 'the management plane', 'http://127.0.0.1:7071')
    .option('--token <token>', 'admin token (default: $SLUICE_ADMIN_TOKEN)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const minutes = Number.parseInt(o.minutes, 10);
      if (!(minutes > 0)) throw new CliExit(`--minutes must be a positive number, not "${o.minutes}"`);
      const token = o.token ?? process.env.SLUICE_ADMIN_TOKEN;
      if (!token)
        throw new CliExit('sluice policy watch: an admin token is needed (--token or $SLUICE_ADMIN_TOKEN)');
      let res: Response;
      try {
        res = await fetch(`${o.admin.replace(/\/$/, '')}/admin/v1/policy/watch?minutes=${minutes}`, {
          headers: { authorization: `Bearer ${token}` },
        });
      } catch (err) {
        throw new CliExit(`sluice policy watch: cannot reach ${o.admin}: ${(err as Error).message}`);
      }
      const body = (await res.json().catch(() => ({}))) as WatchReport & { error?: { message?: string } };
      if (!res.ok)
        throw new CliExit(`sluice policy watch: ${res.status}: ${body.error?.message ?? 'failed'}`);
      if (o.json) printJson(body);
      else process.stdout.write(formatWatch(body));
      if (body.verdict === 'regressed') process.exitCode = 1;
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

/** Compiles a policy file (with its Cedar, reputation and geo files) into a runtime, as `serve` does. */
export async function runtimeForPolicy(
  file: string | undefined,
): Promise<{ rt: Runtime; file: string | null }> {
  let cfg: SluiceConfig;
  let path: string | null;
  if (file) {
    cfg = parseConfig(read(file), file);
    path = resolve(file);
  } else {
    const src = resolveConfig({});
    cfg = src.config;
    path = src.file;
  }
  const loader = ContextLoader.forFile(path);
  try {
    const services = await loader.load(cfg);
    return { rt: compileRuntime(cfg, null, limitPolicyFor(cfg), accessPolicyFor(cfg, services)), file: path };
  } finally {
    loader.close();
  }
}

/** Test files given, or else every `*.yaml` under `policy-tests/` beside the policy file. */
function testFiles(policyFile: string | null, given: string[]): string[] {
  if (given.length > 0) return given;
  const dir = join(policyFile ? dirname(policyFile) : process.cwd(), 'policy-tests');
  if (!existsSync(dir)) throw new CliExit(`sluice policy test: no test files given and no ${dir}`);
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => relative(process.cwd(), join(dir, f)));
}

/** Runs every case of the test files against a policy file; each case on a fresh virtual clock and buckets. */
export async function runPolicyTests(policyFile: string | undefined, tests: string[]): Promise<CaseResult[]> {
  const { rt, file } = await runtimeForPolicy(policyFile);
  const results: CaseResult[] = [];
  for (const t of testFiles(file, tests)) {
    let cases: PolicyCase[];
    try {
      cases = parseCases(parseYaml(read(t)), t);
    } catch (err) {
      if (err instanceof CaseError) throw new CliExit(`sluice policy test: ${err.message}`);
      throw new CliExit(`sluice policy test: ${t}: ${(err as Error).message}`);
    }
    for (const c of cases) results.push(await runCase(c, policyEvaluator(rt)));
  }
  return results;
}
