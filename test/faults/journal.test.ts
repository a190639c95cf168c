/**
 * The local journal (src/stores/journal.ts): group commit, barrier, recovery of what the database
 * did not acknowledge, segment deletion once acknowledged, a torn last line skipped.
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endAfter, Journal } from '../../src/stores/journal.js';
import { tempDir } from '../e2e/harness.js';

describe('journal', () => {
  it('barrier resolves once appended records are on disk; a new journal recovers them in order', async () => {
    const dir = join(tempDir('sluice-journal-'), 'j');
    const j = new Journal({ dir, syncDelayMs: 1000 });
    for (let i = 0; i < 5; i++) j.append(i % 2 ? 'a' : 'u', { n: i });
    // 1. A waiter does not wait for the delay: the idle disk writes the group at once.
    await j.barrier();
    expect(j.stats()).toMatchObject({ pending: 5, groups: 1 });
    // 2. Another process (the next start) finds them.
    const again = new Journal({ dir });
    expect(again.recover()).toEqual({ usage: [{ n: 0 }, { n: 2 }, { n: 4 }], audit: [{ n: 1 }, { n: 3 }] });
    again.reset();
    expect(new Journal({ dir }).recover()).toEqual({ usage: [], audit: [] });
    await j.close();
  });

  it('groups records appended while a write is in flight; many waiters, few writes', async () => {
    const dir = join(tempDir('sluice-journal-'), 'j');
    const j = new Journal({ dir, syncBatch: 1000, syncDelayMs: 1000 });
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      j.append('u', { n: i });
      waits.push(j.barrier());
    }
    await Promise.all(waits);
    expect(j.stats().groups).toBeLessThanOrEqual(2);
    expect(new Journal({ dir }).recover().usage.length).toBe(300);
    await j.close();
  });

  it('acknowledged segments are deleted; the active one stays; a torn last line is skipped', async () => {
    const dir = join(tempDir('sluice-journal-'), 'j');
    const j = new Journal({ dir, segmentBytes: 50 }); // one record per segment
    for (let i = 0; i < 6; i++) {
      j.append('u', { pad: 'x'.repeat(60), n: i });
      await j.barrier();
    }
    expect(readdirSync(dir).length).toBe(6);
    j.ack('u', 4);
    expect(readdirSync(dir).length).toBe(2);
    expect(j.stats().pending).toBe(2);
    // A kill in the middle of a write leaves half a line: recovery skips it.
    const files = readdirSync(dir).sort();
    appendFileSync(join(dir, files[files.length - 1]!), '{"k":"u","r":{"n":');
    expect(new Journal({ dir }).recover().usage).toEqual([
      { pad: 'x'.repeat(60), n: 4 },
      { pad: 'x'.repeat(60), n: 5 },
    ]);
    await j.close();
  });

  it('endAfter ends a body only after the records are durable', async () => {
    const order: string[] = [];
    async function* body() {
      yield 'a';
      yield 'b';
    }
    for await (const chunk of endAfter(body(), async () => {
      order.push('wait');
      await new Promise((r) => setImmediate(r));
      order.push('durable');
    }))
      order.push(chunk);
    order.push('end');
    expect(order).toEqual(['a', 'b', 'wait', 'durable', 'end']);
  });
});

describe("journal with sync: 'none'", () => {
  it('many waiters share few writes; a new journal recovers the records in order', async () => {
    const dir = join(tempDir('sluice-journal-'), 'j');
    const j = new Journal({ dir, sync: 'none', syncDelayMs: 1000 });
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      j.append(i % 2 ? 'a' : 'u', { n: i });
      waits.push(j.barrier());
    }
    await Promise.all(waits);
    // The first waiter's write goes at once; the 49 appended while it was in flight share the next.
    expect(j.stats().groups).toBeLessThanOrEqual(2);
    const again = new Journal({ dir }).recover();
    expect(again.usage).toHaveLength(25);
    expect(again.audit).toHaveLength(25);
    expect(again.usage[0]).toEqual({ n: 0 });
    expect(again.audit[24]).toEqual({ n: 49 });
    await j.close();
  });
});
