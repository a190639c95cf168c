// CPU profile of `sluice serve` (memory store, default checks) under the throughput load, and its
// idle resident memory, without the rest of `npm run bench`:
//   node bench/profile.mjs [--duration 8] [--top 30] [--stream] [--off] [--redis] [--json out.json] [--save x.cpuprofile]
// Prints the idle VmRSS after start, the CPU per request, then the stage, owner and top-function
// shares of busy time (bench/lib/profile.mjs) for the samples taken while the load ran.
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measureStreaming, measureThroughput, warmUp } from './lib/load.mjs';
import { kill, pinSelf, rssKiB, sleep } from './lib/procs.mjs';
import { summariseProfile } from './lib/profile.mjs';
import { startPrivateRedis } from './lib/redis.mjs';
import { createKey, startSluice, tempDir, writeConfig } from './lib/sluice.mjs';
import { startStub } from './lib/targets.mjs';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    top: { type: 'string', default: '30' },
    stream: { type: 'boolean', default: false },
    off: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    json: { type: 'string' },
    save: { type: 'string' },
  },
});
const OFF = {
  abuse: { enabled: false },
  screening: {
    injection: { action: 'off' },
    secrets: { action: 'off' },
    pii: { action: 'off' },
    output: { secrets: 'off', pii: 'off' },
  },
};
pinSelf(1);
const stub = await startStub({ core: 1 });
const dir = tempDir('profile');
// --redis: the Redis limit store on a private redis-server (pinned with the load, core 1).
const redis = args.redis ? await startPrivateRedis({ core: 1 }) : undefined;
const configFile = writeConfig(dir, {
  upstreamUrl: stub.url,
  store: redis ? { store: 'redis', url: redis.url } : { store: 'memory' },
  extra: args.off ? OFF : {},
});
const dataDir = join(dir, 'data');
const { key } = createKey({ dataDir, configFile });
const profDir = join(dir, 'prof');
const t = await startSluice({
  name: 'sluice-profiled',
  configFile,
  dataDir,
  core: 0,
  nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
});
t.headers = { authorization: `Bearer ${key}` };
await sleep(3000);
console.log(`idle VmRSS ${(rssKiB(t.pid) / 1024).toFixed(1)} MiB (profiler on)`);
await warmUp(t, 2);
const tStart = performance.now();
let line;
if (args.stream) {
  const s = await measureStreaming(t, { requests: 500, concurrency: 10 });
  line = `streams: TTFB p50 ${s.ttfbP50?.toFixed(2)} ms`;
} else {
  const m = await measureThroughput(t, { connections: 50, duration: Number(args.duration) });
  line = `${m.rps.toFixed(0)} req/s, ${m.cpuUsPerReq.toFixed(0)} CPU µs/req (profiler on)`;
}
const tEnd = performance.now();
await kill(t, 10_000);
const tExit = performance.now();
console.log(line);
const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
if (files.length === 0) {
  console.log('no .cpuprofile written');
  process.exit(1);
}
const s = summariseProfile(join(profDir, files[0]), {
  topN: Number(args.top),
  fromEndMs: [tExit - tEnd, tExit - tStart],
});
const pc = (x) => `${(x * 100).toFixed(1).padStart(5)} %`;
console.log('\n-- pipeline stage');
for (const r of s.pipeline) console.log(`${pc(r.share)}  ${r.stage}`);
console.log('\n-- innermost Sluice file');
for (const r of s.stages.slice(0, 25)) console.log(`${pc(r.share)}  ${r.stage}`);
console.log('\n-- self time by owner');
for (const r of s.owners.slice(0, 25)) console.log(`${pc(r.share)}  ${r.stage}`);
console.log('\n-- top functions (self)');
for (const r of s.top) console.log(`${pc(r.share)}  ${r.fn}  (${r.owner})`);
if (args.save) copyFileSync(join(profDir, files[0]), args.save);
if (args.json) writeFileSync(args.json, JSON.stringify(s, null, 2));
process.exit(0);
