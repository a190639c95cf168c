/** `sluice serve`: both planes, until SIGTERM/SIGINT; the first signal drains, a second one forces. */
import type { Command } from 'commander';
import { resolveConfig } from '../config/resolve.js';
import { serve } from '../main.js';
import { type CommonOptions, withCommon } from './common.js';

export function registerServe(program: Command): void {
  withCommon(program.command('serve').description('run the gateway (data plane) and the management plane'))
    .option('-p, --port <n>', 'data-plane port', (v) => Number.parseInt(v, 10))
    .option('--admin-port <n>', 'management-plane port', (v) => Number.parseInt(v, 10))
    .option('--host <host>', 'data-plane bind address')
    .option('--watch', 'reload the policy when the config file changes')
    .action(
      async (opts: CommonOptions & { port?: number; adminPort?: number; host?: string; watch?: boolean }) => {
        const source = resolveConfig(opts);
        const s = await serve({
          source,
          port: opts.port,
          adminPort: opts.adminPort,
          host: opts.host,
          watch: opts.watch,
          guardProcess: true,
        });
        const tokenNote = s.adminTokenFile ? ` (admin token in ${s.adminTokenFile})` : '';
        process.stdout.write(
          `sluice: data plane listening on ${s.urls.gateway}\n` +
            `sluice: management plane listening on ${s.urls.admin}${tokenNote}\n` +
            `sluice: policy ${source.file ?? 'built-in default'} (version ${s.runtime().version}), data in ${s.runtime().cfg.storage.dataDir}\n`,
        );
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            process.stderr.write(`sluice: second ${signal}, ending open streams now\n`);
            s.forceClose();
            return;
          }
          stopping = true;
          process.stderr.write(`sluice: ${signal}, draining\n`);
          s.close().then(
            () => process.exit(0),
            (err: Error) => {
              process.stderr.write(`sluice: shutdown error: ${err.message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      },
    );
}
