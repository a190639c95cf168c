/**
 * Issue 18, memory: at most 200 B per tracked key in the memory store, measured over 1,000,000 keys
 * (one per-key GCRA limit each, the common shape) in a child `node --expose-gc` running
 * bench/scale-memory.mjs on the build (heap + external after a full GC, key strings included).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('memory limit store footprint', () => {
  it.skipIf(!existsSync('dist/stores/memory-limit-store.js'))(
    '1,000,000 GCRA keys cost at most 200 B each',
    async () => {
      const { stdout } = await run(process.execPath, [
        '--expose-gc',
        'bench/scale-memory.mjs',
        '--keys',
        '1000000',
      ]);
      const r = JSON.parse(stdout.trim()) as { keys: number; bytesPerKey: number };
      expect(r.keys).toBe(1_000_000);
      expect(r.bytesPerKey).toBeGreaterThan(50); // the measurement sees the keys at all
      expect(r.bytesPerKey).toBeLessThanOrEqual(200);
    },
    120_000,
  );
});
