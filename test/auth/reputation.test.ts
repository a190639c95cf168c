import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseReputationList,
  type ReputationListStatus,
  ReputationLists,
} from '../../src/auth/reputation.js';

let lists: ReputationLists | undefined;
let dir: string | undefined;
afterEach(async () => {
  lists?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  lists = undefined;
  dir = undefined;
});

/**
 * Resolves on the first reload event after which `until` holds (the watcher fires the events; nothing
 * here sleeps). A write can surface as two change events; only the state that matters is awaited.
 */
type Waiter = { until: (s: ReputationListStatus) => boolean; resolve: (s: ReputationListStatus) => void };
function reloadWhere(waiters: Waiter[], until: (s: ReputationListStatus) => boolean) {
  return new Promise<ReputationListStatus>((resolve) => waiters.push({ until, resolve }));
}

describe('parseReputationList', () => {
  it('reads CIDRs and addresses, skips comments and blanks, counts bad lines', () => {
    const p = parseReputationList(
      '# tor exits\n198.51.100.0/24\n\n2001:db8::1  # one host\nnot-an-ip\n10.0.0.0/33\r\n203.0.113.7\n',
    );
    expect(p.entries).toBe(3);
    expect(p.invalidCount).toBe(2);
    expect(p.invalid).toEqual(['line 5: not-an-ip', 'line 6: 10.0.0.0/33']);
    expect(p.matcher.has('198.51.100.200')).toBe(true);
    expect(p.matcher.has('2001:db8::1')).toBe(true);
    expect(p.matcher.has('2001:db8::2')).toBe(false);
  });
});

describe('ReputationLists', () => {
  it('reloads a list when its file is rewritten, or replaced by rename, and keeps the last good list on failure', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-rep-'));
    const file = join(dir, 'bad.txt');
    await writeFile(file, '198.51.100.0/24\n');
    const waiters: Waiter[] = [];
    lists = await ReputationLists.load(
      { bad: { file: 'bad.txt' } },
      {
        baseDir: dir,
        debounceMs: 20,
        onReload: (s) => {
          const w = waiters[0];
          if (w?.until(s)) {
            waiters.shift();
            w.resolve(s);
          }
        },
      },
    );
    expect(lists.listed('bad', '198.51.100.9')).toBe(true);
    expect(lists.listed('bad', '203.0.113.9')).toBe(false);
    expect(lists.listed('nope', '198.51.100.9')).toBe(false);

    // 1. Rewrite in place.
    let reloaded = reloadWhere(waiters, () => lists!.listed('bad', '203.0.113.9'));
    await writeFile(file, '203.0.113.0/24\n# 198.51.100.0/24 removed\n');
    expect((await reloaded).entries).toBe(1);
    expect(lists.listed('bad', '198.51.100.9')).toBe(false);
    expect(lists.listed('bad', '203.0.113.9')).toBe(true);

    // 2. Atomic replace (write a temp file, rename over).
    reloaded = reloadWhere(waiters, () => lists!.listed('bad', '2001:db8::5'));
    await writeFile(join(dir, 'tmp.txt'), '2001:db8::/32\n');
    await rename(join(dir, 'tmp.txt'), file);
    await reloaded;
    expect(lists.listed('bad', '2001:db8::5')).toBe(true);
    expect(lists.listed('bad', '203.0.113.9')).toBe(false);

    // 3. The file disappears: the error is recorded and the last good list stays in force.
    reloaded = reloadWhere(waiters, (st) => st.error !== null);
    await rm(file);
    expect((await reloaded).error).toMatch(/ENOENT/);
    expect(lists.listed('bad', '2001:db8::5')).toBe(true);
    expect(lists.status()[0]).toMatchObject({ name: 'bad', entries: 1 });
    expect(lists.status()[0]!.loads).toBeGreaterThanOrEqual(3);
  });

  it('fails loudly at startup when a list cannot be read', async () => {
    await expect(
      ReputationLists.load({ x: { file: '/nonexistent/sluice/list.txt' } }, { watch: false }),
    ).rejects.toThrow(/ENOENT/);
  });
});
