#!/usr/bin/env node
// The bundle of src/cli (scripts/build.mjs): one load instead of hundreds of module files.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// `sluice simulate` on a large trace runs in a child with a larger young generation (semi-spaces up
// to 32 MiB): a replay keeps thousands of requests in flight between virtual timers, and with V8's
// default sizing many of them outlive two scavenges and are copied into the old generation as
// garbage. Measured on one core with a 120,000-request trace: 13,600-14,000 -> 15,800-16,500
// requests/s. V8 reads the size only when the heap is made, so it cannot be set from here
// (v8.setFlagsFromString comes too late). The child costs one more Node start (~140 ms on one core),
// more than the larger young generation saves on a run of a few seconds, so a trace under
// SIMULATE_CHILD_BYTES runs here (SLUICE_SIMULATE_CHILD_BYTES overrides it, for tests). SLUICE_SIMULATE_CHILD
// marks the child.
const SIMULATE_CHILD_BYTES = Number(process.env.SLUICE_SIMULATE_CHILD_BYTES ?? 48 << 20);
if (
  process.argv[2] === 'simulate' &&
  process.env.SLUICE_SIMULATE_CHILD === undefined &&
  !process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) &&
  traceBytes(process.argv.slice(3)) >= SIMULATE_CHILD_BYTES
) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(
    process.execPath,
    [
      '--max-semi-space-size=32',
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, SLUICE_SIMULATE_CHILD: '1' } },
  );
  if (r.error) {
    console.error(r.error.message);
    process.exit(1);
  }
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status ?? 1);
}

/** Size of the largest file the arguments name (the trace; an option's value may name another). */
function traceBytes(args) {
  let max = 0;
  for (const a of args) {
    if (a.startsWith('-')) continue;
    try {
      const s = statSync(a);
      if (s.isFile()) max = Math.max(max, s.size);
    } catch {}
  }
  return max;
}

const { main } = await import('../dist/bundle/index.js');
main(process.argv).catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
