/** The `sluice` command line. One file per command beside this one; this file only wires them. */
import { Command } from 'commander';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('sluice').description('A gateway that protects generative-AI services from abuse');
  program.exitOverride();
  await program.parseAsync(argv);
}
