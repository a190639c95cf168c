/**
 * What `serve` loads at start with the built-in default (memory store, no Redis, no geo database,
 * no Cedar policy, no route schema): none of the packages only an optional feature needs. Each costs resident memory
 * for the life of the process (ioredis about 5 MiB, ajv about 2.5 MiB; bench/README.md, idle memory).
 *
 * Runs the built dist/ in a child process (the test runner itself has loaded most packages), which
 * prints the CommonJS module cache once `serve` has started.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../e2e/harness.js';

const dist = resolve(import.meta.dirname, '../../dist');

const SCRIPT = `
import { createRequire } from 'node:module';
const { resolveConfig } = await import(${JSON.stringify(pathToFileURL(join(dist, 'config/resolve.js')).href)});
const { serve } = await import(${JSON.stringify(pathToFileURL(join(dist, 'main.js')).href)});
const source = resolveConfig({ dataDir: process.env.DATA_DIR }, {});
const s = await serve({ source, port: 0, adminPort: 0, host: '127.0.0.1' });
const loaded = Object.keys(createRequire(import.meta.url).cache);
process.stderr.write('LOADED ' + JSON.stringify(loaded) + '\\n');
await s.close(1000);
process.exit(0);
`;

describe('modules loaded at start', () => {
  it('the default policy loads neither ioredis, maxmind nor the schema compilers', () => {
    const dir = tempDir('sluice-start-modules-');
    // 1. Start `serve` from dist/ with the built-in default policy (cwd without a sluice.yaml).
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      cwd: dir,
      env: { ...process.env, DATA_DIR: join(dir, 'data'), SLUICE_CONFIG: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
    expect(line, `no module list; stderr:\n${r.stderr}`).toBeDefined();
    const loaded: string[] = JSON.parse(line!.slice('LOADED '.length));
    // 2. The list is real: packages every start needs are in it.
    expect(loaded.some((f) => f.includes('/node_modules/fastify/'))).toBe(true);
    expect(loaded.some((f) => f.includes('/node_modules/better-sqlite3/'))).toBe(true);
    // 3. Packages of features the default policy does not use are not.
    expect(
      loaded.filter((f) => /\/node_modules\/(ioredis|maxmind|mmdb-lib|ajv|@fastify\/ajv-compiler)\//.test(f)),
    ).toEqual([]);
  });
});
