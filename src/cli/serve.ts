/** `sluice serve`: both planes, until SIGTERM/SIGINT; the first signal drains, a second one forces. */
import type { AddressInfo } from 'node:net';
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
        const tokenNote =
          (s.adminTokenFile ? ` (admin token in ${s.adminTokenFile})` : '') +
          (s.consolePasswordFile
            ? `\nsluice: console at ${s.urls.admin}/console/ (sign-in in ${s.consolePasswordFile})`
            : '');
        const bound = s.gateway.server.address() as AddressInfo;
        const mockOnly = s.runtime().cfg.upstreams.every((u) => u.kind === 'mock');
        process.stdout.write(
          dataPlaneBanner(s.urls.gateway, bound.address, bound.port, mockOnly) +
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

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1';
}

/**
 * The data-plane banner: the address actually bound (a wildcard is named as such, with the URL to use
 * from this machine), and a one-line warning when only the built-in mock answers and the listener is
 * reachable beyond loopback (anyone on the network could spend its keys' quota on canned answers).
 * The first URL of the first line stays a connectable one for local callers and tests.
 */
export function dataPlaneBanner(localUrl: string, address: string, port: number, mockOnly: boolean): string {
  const scheme = localUrl.startsWith('https:') ? 'https' : 'http';
  const shown = address.includes(':') ? `[${address}]` : address;
  const wildcard = address === '0.0.0.0' || address === '::';
  const boundUrl = `${scheme}://${shown}:${port}`;
  let out = wildcard
    ? `sluice: data plane listening on ${boundUrl} (all interfaces; from this machine: ${localUrl})\n`
    : `sluice: data plane listening on ${boundUrl}\n`;
  if (mockOnly && !isLoopback(address))
    out += `sluice: warning: only the built-in mock upstream is configured and the data plane is reachable beyond this machine (${address}); use --host 127.0.0.1 to keep it local\n`;
  return out;
}
