/** `sluice config check FILE` and `sluice config schema`. */
import type { Command } from 'commander';
import { configJsonSchema, loadConfigFile } from '../config/load.js';
import { CliExit } from './index.js';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('validate the policy file, or print its JSON Schema');
  config
    .command('check <file>')
    .description('validate a policy file; exit 1 naming the line and path of each mistake')
    .action((file: string) => {
      const cfg = loadConfigFile(file);
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
  void CliExit;
}
