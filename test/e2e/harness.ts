/**
 * Starts real `sluice` processes for end-to-end tests: `node bin/sluice.js serve` on ephemeral
 * ports with a temp data dir, and the CLI for keys. Everything the process writes is kept, so
 * tests can grep it for secrets.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
export const ROOT = new URL('../..', import.meta.url).pathname;
export const BIN = join(ROOT, 'bin', 'sluice.js');

export interface SluiceProcess {
  proc: ChildProcess;
  url: string;
  adminUrl: string;
  dataDir: string;
  configFile: string | undefined;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function tempDir(prefix = 'sluice-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, yaml: string): string {
  const f = join(dir, 'sluice.yaml');
  writeFileSync(f, yaml);
  return f;
}

export async function startSluice(
  opts: { config?: string; dataDir?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {},
): Promise<SluiceProcess> {
  const dataDir = opts.dataDir ?? tempDir();
  const args = [
    BIN,
    'serve',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    ...(opts.config ? ['--config', opts.config] : []),
    ...(opts.args ?? []),
  ];
  const proc = spawn(process.execPath, args, {
    cwd: dataDir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const urls = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not start:\n${out}`)), 20_000);
    const check = () => {
      const g = /data plane listening on (https?:\/\/\S+)/.exec(out);
      const a = /management plane listening on (https?:\/\/\S+)/.exec(out);
      if (g && a) {
        clearTimeout(timer);
        resolve({ url: g[1]!, adminUrl: a[1]! });
      }
    };
    proc.stdout!.on('data', check);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    proc,
    ...urls,
    dataDir,
    configFile: opts.config,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export async function cli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? ROOT,
    });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

export async function createKey(
  s: { dataDir: string; configFile?: string },
  extra: string[] = [],
  tenant = 'acme',
  tier = 'default',
): Promise<{ id: string; key: string }> {
  const r = await cli([
    'keys',
    'create',
    '--tenant',
    tenant,
    '--tier',
    tier,
    '--json',
    '--data-dir',
    s.dataDir,
    ...(s.configFile ? ['--config', s.configFile] : []),
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`keys create failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
