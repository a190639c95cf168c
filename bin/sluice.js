#!/usr/bin/env node
// The bundle of src/cli (scripts/build.mjs): one load instead of hundreds of module files.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// `sluice simulate` runs in a child with a larger young generation (semi-spaces up to 32 MiB): a
// replay keeps thousands of requests in flight between virtual timers, and with V8's default
// sizing many of them outlive two scavenges and are copied into the old generation as garbage.
// Measured on one core with a 120,000-request trace: 13,600-14,000 -> 15,800-16,500 requests/s.
// V8 reads the size only when the heap is made, so it cannot be set from here (v8.setFlagsFromString
// comes too late); the child costs one more Node start (~50 ms). SLUICE_SIMULATE_CHILD marks the child.
if (process.argv[2] === 'simulate' && process.env.SLUICE_SIMULATE_CHILD === undefined) {
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

const { main } = await import('../dist/bundle/index.js');
main(process.argv).catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
