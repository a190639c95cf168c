/** `sluice config check FILE` and `sluice config schema`. */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { configJsonSchema, loadConfigFile } from '../config/load.js';
import { ContextLoader } from '../wiring/policy.js';
import { CliExit } from './exit.js';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('validate the policy file, or print its JSON Schema');
  config
    .command('check <file>')
    .description('validate a policy file; exit 1 naming the line and path of each mistake')
    .action(async (file: string) => {
      const cfg = loadConfigFile(file);
      // The files the policy names are part of it: the Cedar policies (validated against Sluice's
      // schema), the reputation lists and the geo database must load.
      const context = new ContextLoader(dirname(resolve(file)));
      try {
        await context.load(cfg);
      } catch (err) {
        const e = err as Error & { errors?: string[] };
        throw new CliExit(`${file}: ${e.errors ? `Cedar policies: ${e.errors.join('; ')}` : e.message}`);
      } finally {
        context.close();
      }
      const limits = Object.values(cfg.tiers).reduce((n, t) => n + t.limits.length, 0);
      process.stdout.write(
        `${file}: OK (${cfg.upstreams.length} upstreams, ${cfg.models.length} model routes, ${Object.keys(cfg.tiers).length} tiers, ${limits} tier limits, ${Object.keys(cfg.tasks).length} tasks)\n`,
      );
    });
  config
    .command('schema')
    .description('print the JSON Schema of sluice.yaml (for editors)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
