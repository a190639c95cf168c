// Resident memory of an idle `sluice serve` (memory store, bench config, no requests) over its first
// minute, for one or more builds started side by side:
//   node bench/idle-memory.mjs --build base=/tmp/base --build new=. [--seconds 60] [--node-args new=ARGS]
// The bench's "idle" figure is taken 1 s after start; V8's memory reducer shrinks the heap V8 grew
// while starting only once the process has been idle for a while (about 40-50 s on the bench
// machine), so the settled figure is the last sample.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { kill, rssKiB, sleep } from './lib/procs.mjs';

const { values: args } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: ['this=.'] },
    seconds: { type: 'string', default: '60' },
    'node-args': { type: 'string', multiple: true, default: [] },
  },
});
const nodeArgsOf = new Map(
  args['node-args'].map((spec) => {
    const i = spec.indexOf('=');
    return [
      spec.slice(0, i),
      spec
        .slice(i + 1)
        .split(' ')
        .filter(Boolean),
    ];
  }),
);
const procs = [];
for (const spec of args.build) {
  const [name, dir] = spec.includes('=') ? spec.split('=') : [spec, spec];
  const lib = await import(join(resolve(dir), 'bench/lib/sluice.mjs'));
  const tmp = lib.tempDir(`idle-${name}`);
  // An upstream that is never called: nothing is sent.
  const configFile = lib.writeConfig(tmp, { upstreamUrl: 'http://127.0.0.1:9', store: { store: 'memory' } });
  const dataDir = join(tmp, 'data');
  lib.createKey({ dataDir, configFile });
  const p = await lib.startSluice({
    name,
    configFile,
    dataDir,
    core: 0,
    nodeArgs: nodeArgsOf.get(name) ?? [],
  });
  procs.push({ name, p, t0: performance.now(), samples: [] });
}
const marks = [1, 5, 10, 20, 30, 45, 60, 90, 120].filter((s) => s <= Number(args.seconds));
for (const s of marks) {
  for (const x of procs) {
    const wait = x.t0 + s * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    x.samples.push(`${s}s ${(rssKiB(x.p.pid) / 1024).toFixed(1)}`);
  }
}
for (const x of procs) console.log(`${x.name.padEnd(8)} VmRSS MiB: ${x.samples.join('  ')}`);
for (const x of procs) await kill(x.p, 5000);
process.exit(0);
