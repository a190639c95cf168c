/** The `sluice` command line. One file per command beside this one; this file only wires them. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { registerAudit } from './audit.js';
import { registerCases } from './cases.js';
import { registerConfig } from './config.js';
import { registerExceptions } from './exceptions.js';
import { CliExit } from './exit.js';
import { registerKeys } from './keys.js';
import { registerPolicy } from './policy.js';
import { registerReview } from './review.js';
import { registerScreen } from './screen.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerTenants } from './tenants.js';

export { CliExit };

export async function main(argv: string[]): Promise<void> {
  // `sluice audit export | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = new Command('sluice')
    .description('A gateway that protects generative-AI services from abuse')
    .version(process.env.npm_package_version ?? '0.1.0');
  program.exitOverride();
  registerServe(program);
  registerKeys(program);
  registerConfig(program);
  registerPolicy(program);
  registerAudit(program);
  registerReview(program);
  registerExceptions(program);
  registerScreen(program);
  registerSimulate(program);
  registerCases(program);
  registerTenants(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof CliExit || err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = err instanceof CliExit ? err.code : 1;
      return;
    }
    throw err;
  }
}
