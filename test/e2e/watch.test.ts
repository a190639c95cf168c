/**
 * `serve --watch`: a policy file replaced on disk (an editor's atomic save: write elsewhere, rename
 * over) becomes the running version; a broken one is refused and the running version keeps serving.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createKey, type SluiceProcess, startSluice, tempDir } from './harness.js';

const policy = (rpm: number) => `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: rpm, requests: ${rpm}, window: 1m }
`;

let s: SluiceProcess;
let dir: string;
let file: string;

function atomicSave(text: string): void {
  const tmp = join(dir, `.sluice.yaml.${Date.now()}`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

async function until(check: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

beforeAll(async () => {
  dir = tempDir();
  file = join(dir, 'sluice.yaml');
  writeFileSync(file, policy(100));
  s = await startSluice({ config: file, dataDir: dir, args: ['--watch'] });
});
afterAll(async () => {
  await s?.stop();
});

describe('serve --watch', () => {
  it('applies a file replaced by rename, and refuses a broken one without changing the running version', async () => {
    const { key } = await createKey(s);
    const limitOf = async () => {
      const me = await (
        await fetch(`${s.url}/sluice/v1/me`, { headers: { authorization: `Bearer ${key}` } })
      ).json();
      return me.limits.find((l: { id: string }) => l.id === 'rpm')?.limit as number | undefined;
    };
    expect(await limitOf()).toBe(100);
    atomicSave(policy(7));
    expect(await until(async () => (await limitOf()) === 7)).toBe(true);
    atomicSave(policy(9).replace('window: 1m', 'window: 1x'));
    expect(await until(async () => s.output().includes('policy file refused'))).toBe(true);
    expect(await limitOf()).toBe(7);
    const hist = await cli(['policy', 'history', '--data-dir', s.dataDir]);
    expect(hist.stdout).toContain('serve --watch');
    expect(hist.stdout.trim().split('\n')).toHaveLength(2);
  });
});
