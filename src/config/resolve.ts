/**
 * Which config a command runs with: `--config FILE`, else `$SLUICE_CONFIG`, else `./sluice.yaml`
 * if it exists, else the built-in default. `--data-dir` overrides `storage.dataDir`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from './load.js';
import { DEFAULT_CONFIG, type SluiceConfig } from './schema.js';

export interface ConfigSource {
  /** The file read, or null for the built-in default. */
  file: string | null;
  /** The YAML text (for the built-in default, generated). */
  source: string;
  config: SluiceConfig;
}

export const DEFAULT_SOURCE = `# Built-in default: every model goes to the mock upstream, memory limits, SQLite in ./.sluice\n${stringify(DEFAULT_CONFIG)}`;

export function resolveConfig(
  opts: { config?: string; dataDir?: string },
  env: NodeJS.ProcessEnv = process.env,
): ConfigSource {
  let file: string | null = opts.config ?? env.SLUICE_CONFIG ?? null;
  if (!file && existsSync('sluice.yaml')) file = 'sluice.yaml';
  let source: string;
  if (file) {
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  } else source = DEFAULT_SOURCE;
  const config = parseConfig(source, file ?? '(built-in default)', env);
  return { file: file ? resolve(file) : null, source, config: withDataDir(config, opts.dataDir) };
}

export function withDataDir(config: SluiceConfig, dataDir: string | undefined): SluiceConfig {
  return dataDir ? { ...config, storage: { ...config.storage, dataDir } } : config;
}
