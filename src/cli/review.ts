/** `sluice review`: least-privilege review of keys. */
import type { Command } from 'commander';
import { formatReview, review } from '../admin/review.js';
import { type CommonOptions, openForCommand, printJson, withCommon } from './common.js';

export function registerReview(program: Command): void {
  withCommon(
    program
      .command('review')
      .description('keys without expiry, unused keys, and grants unused in the last N days'),
  )
    .option('--days <n>', 'look-back window in days', (v) => Number.parseInt(v, 10), 30)
    .option('--json', 'print JSON')
    .action(async (o: CommonOptions & { days: number; json?: boolean }) => {
      const { source, stores } = await openForCommand(o);
      try {
        const findings = await review(stores.control, stores.sql, source.config, o.days, Date.now());
        if (o.json) printJson(findings);
        else process.stdout.write(formatReview(findings));
      } finally {
        await stores.close();
      }
    });
}
