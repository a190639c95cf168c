/** Options every command takes, and opening the stores a one-shot command needs. */
import type { Command } from 'commander';
import { type ConfigSource, resolveConfig } from '../config/resolve.js';
import { systemClock } from '../core/ports.js';
import { makeLogger } from '../main.js';
import { openStores, type Stores } from '../wiring/stores.js';

export interface CommonOptions {
  config?: string;
  dataDir?: string;
}

export function withCommon(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      'policy/config file (default: $SLUICE_CONFIG, ./sluice.yaml, or the built-in default)',
    )
    .option('-d, --data-dir <dir>', 'data directory (default: storage.dataDir, ./.sluice)');
}

/** Opens the control store, ledger and audit of the configured data dir or database, for a one-shot command. */
export async function openForCommand(opts: CommonOptions): Promise<{ source: ConfigSource; stores: Stores }> {
  const source = resolveConfig(opts);
  const logger = makeLogger('warn', 2);
  const stores = await openStores(source.config, {
    clock: systemClock,
    logger,
    instanceSuffix: 'cli',
    limits: false,
  });
  return { source, stores };
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** Records a one-shot command in the audit trail (decision `admin`), flushed when the stores close. */
export function auditCommand(stores: Stores, op: string, details: Record<string, unknown>): void {
  stores.audit.emit({
    at: Date.now(),
    requestId: null,
    keyId: (details.key as string | undefined) ?? null,
    tenantId: (details.tenant as string | undefined) ?? null,
    projectId: null,
    clientIp: null,
    country: null,
    userAgent: `sluice-cli (${process.env.USER ?? 'unknown'})`,
    action: `cli.${op}`,
    model: null,
    decision: 'admin',
    reason: 'ok',
    policyVersion: null,
    details,
  });
}
