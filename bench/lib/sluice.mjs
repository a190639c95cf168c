// Sluice as a benchmark target: write a config, create a key with the CLI, start `sluice serve`.
// Each instance gets its own data dir (SQLite has one writer); instances that must share keys are
// started from copies of one data dir, with the same pepper.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, runCommand, sleep, startProcess } from './procs.mjs';

const ROOT = new URL('../..', import.meta.url).pathname;
export const SLUICE_BIN = join(ROOT, 'bin', 'sluice.js');
/** The same CLI from the per-file build, for CPU profiles that name source files (sluice-files.mjs). */
export const SLUICE_BIN_FILES = join(ROOT, 'bench', 'lib', 'sluice-files.mjs');
/** A fixed pepper so copied data dirs verify the same keys; bench-only, never a real secret. */
export const BENCH_PEPPER = 'b3e7c0ffee00112233445566778899aabbccddeeff00112233445566778899aa';

const tempDirs = new Set();

/** A fresh temporary directory, removed by `cleanupTemp()`. */
export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), `sluice-bench-${prefix}-`));
  tempDirs.add(d);
  return d;
}

export function cleanupTemp() {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
// Also on Ctrl-C and on a crash: procs.mjs exits the process, and 'exit' handlers run synchronously.
process.on('exit', cleanupTemp);

/** Generous limits: the throughput runs measure overhead, never a 429. */
export const GENEROUS_LIMITS = [
  { id: 'rpm', requests: 100_000_000, window: '1m' },
  { id: 'tpm', tokens: 1_000_000_000, window: '1m' },
];

/**
 * The config file for one run. `limits` replaces the default tier's limits; `store` is
 * `{ store: 'memory' }` or `{ store: 'redis', url }`.
 */
export function writeConfig(
  dir,
  { upstreamUrl, store, limits = GENEROUS_LIMITS, extraTiers = {}, logLevel = 'warn', extra = {} },
) {
  const cfg = {
    server: { host: '127.0.0.1' },
    admin: { host: '127.0.0.1' },
    upstreams: [{ name: 'stub', kind: 'openai', baseUrl: `${upstreamUrl}/v1`, apiKey: 'x' }],
    models: [{ match: '*', upstream: 'stub' }],
    tiers: { default: { limits }, ...extraTiers },
    limits: store,
    log: { level: logLevel },
    ...extra,
  };
  if (store.store === 'redis') cfg.redis = { url: store.url };
  const file = join(dir, 'sluice.yaml');
  // JSON is YAML: no serializer needed, and the file stays readable.
  writeFileSync(file, `${JSON.stringify(cfg, null, 2)}\n`);
  return file;
}

function sluiceEnv() {
  return { SLUICE_PEPPER: BENCH_PEPPER, NODE_ENV: 'production' };
}

/**
 * `sluiceAvailable()`, retried for up to `timeoutMs`: on a shared machine `dist/` may be
 * mid-rebuild (`npm run build` deletes it first) for a few seconds.
 */
export async function waitForSluice(timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = sluiceAvailable();
    if (a.ok || Date.now() > deadline) return a;
    await sleep(1000);
  }
}

/** True when the CLI has been built (dist/) and knows `serve`. */
export function sluiceAvailable() {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'index.js')))
    return { ok: false, reason: 'dist/cli/index.js missing' };
  // commander may exit non-zero after printing help: read the text, not the status.
  const r = spawnSync(process.execPath, [SLUICE_BIN, '--help'], {
    env: { ...process.env, ...sluiceEnv() },
    encoding: 'utf8',
    timeout: 20_000,
  });
  const help = `${r.stdout}${r.stderr}`;
  if (!/\bserve\b/.test(help)) return { ok: false, reason: '`sluice serve` not available yet' };
  if (!/\bkeys\b/.test(help)) return { ok: false, reason: '`sluice keys` not available yet' };
  return { ok: true };
}

/**
 * The key object in the CLI's output: possibly pretty-printed over several lines, and possibly
 * among JSON log lines (pino writes to stdout), so try every run of lines that parses.
 */
function parseKeyJson(out) {
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim().startsWith('{')) continue;
    for (let j = i; j < lines.length && j < i + 50; j++) {
      try {
        const v = JSON.parse(lines.slice(i, j + 1).join('\n'));
        if (typeof v?.key === 'string') return v;
        break;
      } catch {}
    }
  }
  return undefined;
}

/** `sluice keys create`: returns `{ id, key, tenant, tier }`. */
export function createKey({ dataDir, configFile, tenant = 'bench', tier = 'default' }) {
  // Retried: on a shared machine `dist/` may be mid-rebuild for a moment.
  for (let attempt = 1; ; attempt++) {
    try {
      return createKeyOnce({ dataDir, configFile, tenant, tier });
    } catch (err) {
      if (attempt >= 3) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
  }
}

function createKeyOnce({ dataDir, configFile, tenant, tier }) {
  const out = runCommand(
    process.execPath,
    [
      SLUICE_BIN,
      'keys',
      'create',
      '--tenant',
      tenant,
      '--tier',
      tier,
      '--json',
      '--data-dir',
      dataDir,
      '--config',
      configFile,
    ],
    { env: sluiceEnv(), timeoutMs: 30_000 },
  );
  const k = parseKeyJson(out);
  if (!k) throw new Error(`keys create printed no key JSON:\n${out}`);
  return k;
}

/** Copy a data dir (with its SQLite files) so another instance sees the same keys. */
export function copyDataDir(from, to) {
  cpSync(from, to, { recursive: true });
}

async function waitHealthy(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await request(`${url}/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${url}/healthz not ready after ${timeoutMs} ms`);
}

/**
 * Start `sluice serve` on free loopback ports, pinned to `core`. `nodeArgs` go before the script
 * (e.g. `--cpu-prof`); `bin` the entry (default `bin/sluice.js`). Resolves to a process handle with `url`.
 */
export async function startSluice(opts) {
  // Retried: on a shared machine `dist/` may be mid-rebuild for a moment.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSluiceOnce(opts);
    } catch (err) {
      if (attempt >= 3) throw err;
      const lines = String(err.message)
        .split('\n')
        .filter((l) => l.trim() && !/^\s+at /.test(l));
      console.error(
        `[bench] ${opts.name} did not start (${lines[0]} | ${lines.at(-1)?.slice(0, 200)}), retrying`,
      );
      await sleep(2000);
    }
  }
}

async function startSluiceOnce({
  name,
  configFile,
  dataDir,
  core,
  nodeArgs = [],
  bin = SLUICE_BIN,
  timeoutMs = 30_000,
}) {
  const port = await freePort();
  const adminPort = await freePort();
  const proc = await startProcess({
    name,
    args: [
      ...nodeArgs,
      bin,
      'serve',
      '--config',
      configFile,
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--admin-port',
      String(adminPort),
    ],
    env: sluiceEnv(),
    core,
    ready: new RegExp(`:${port}\\b`),
    timeoutMs,
  });
  proc.url = `http://127.0.0.1:${port}`;
  proc.adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitHealthy(proc.url, timeoutMs);
  return proc;
}
