/** The `sluice` command line. One file per command beside this one; this file only wires them. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { CliExit } from './exit.js';

export { CliExit };

type Register = (program: Command) => void;

/**
 * The commands, in help order, each loaded on demand: a run of one command loads only its own
 * module (most of them pull in the whole server; `sluice simulate` spends its start-up on what it uses).
 */
export const COMMANDS: [string, () => Promise<Register>][] = [
  ['serve', async () => (await import('./serve.js')).registerServe],
  ['keys', async () => (await import('./keys.js')).registerKeys],
  ['config', async () => (await import('./config.js')).registerConfig],
  ['policy', async () => (await import('./policy.js')).registerPolicy],
  ['audit', async () => (await import('./audit.js')).registerAudit],
  ['review', async () => (await import('./review.js')).registerReview],
  ['exceptions', async () => (await import('./exceptions.js')).registerExceptions],
  ['screen', async () => (await import('./screen.js')).registerScreen],
  ['simulate', async () => (await import('./simulate.js')).registerSimulate],
  ['cases', async () => (await import('./cases.js')).registerCases],
  ['tenants', async () => (await import('./tenants.js')).registerTenants],
];

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
  // The command named first on the line, if it is one; otherwise (help, a typo) all of them.
  const named = COMMANDS.find(([name]) => name === argv[2]);
  for (const [, load] of named ? [named] : COMMANDS) (await load())(program);
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
