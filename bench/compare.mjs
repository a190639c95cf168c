// Compares Sluice builds in one run: the bare proxy, then `sluice serve` (memory store, default checks)
// from each checkout given, in interleaved rounds; prints the median ratios to bare of throughput and
// CPU per request (non-streaming, autocannon) and, with --stream, of streaming TTFB and CPU per stream.
// Each checkout needs `node scripts/build.mjs` run in it first. A second checkout of an older commit:
//   git archive <commit> | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/node_modules
//   (cd /tmp/base && node scripts/build.mjs)
//   node bench/compare.mjs --build base=/tmp/base --build new=. --stream
// `--rate N`: N requests/s in all (below saturation) instead of as many as each target answers; then
// throughput is the same for all and CPU per request is the figure to read.
// `--node-args name=ARGS` starts build `name` with node options (e.g. `new=--max-semi-space-size=4`);
// one checkout may be given twice under two names to compare options. Each build's idle VmRSS (3 s
// after it answered /healthz, before any load) is printed too.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { measureStreaming, measureThroughput, warmUp } from './lib/load.mjs';
import { cpuMicros, pinSelf, rssKiB, sleep } from './lib/procs.mjs';
import { startPrivateRedis } from './lib/redis.mjs';
import { startBare, startStub } from './lib/targets.mjs';

const { values: args } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: ['this=.'] },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '3' },
    streams: { type: 'string', default: '300' },
    stream: { type: 'boolean', default: false },
    off: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    rate: { type: 'string' },
    'node-args': { type: 'string', multiple: true, default: [] },
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
const bare = await startBare({ core: 0, upstreamUrl: stub.url });
bare.name = 'bare';
// --redis: every build on the Redis limit store, one private redis-server on core 1 (each build
// sends with its own key, so each has its own buckets).
const redis = args.redis ? await startPrivateRedis({ core: 1 }) : undefined;
const targets = [bare];
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
const idleRss = new Map();
for (const spec of args.build) {
  const [name, dir] = spec.includes('=') ? spec.split('=') : [spec, spec];
  // Each build's own bench helpers start its own bin/sluice.js.
  const lib = await import(join(resolve(dir), 'bench/lib/sluice.mjs'));
  const tmp = lib.tempDir(name);
  const configFile = lib.writeConfig(tmp, {
    upstreamUrl: stub.url,
    store: redis ? { store: 'redis', url: redis.url } : { store: 'memory' },
    extra: args.off ? OFF : {},
  });
  const dataDir = join(tmp, 'data');
  const { key } = lib.createKey({ dataDir, configFile });
  const t = await lib.startSluice({
    name,
    configFile,
    dataDir,
    core: 0,
    nodeArgs: nodeArgsOf.get(name) ?? [],
  });
  await sleep(3000);
  idleRss.set(name, rssKiB(t.pid) / 1024);
  t.headers = { authorization: `Bearer ${key}` };
  t.name = name;
  targets.push(t);
}
const rounds = Number(args.rounds);
const duration = Number(args.duration);
const streams = Number(args.streams);
for (const t of targets) await warmUp(t, 2);
const res = new Map(targets.map((t) => [t.name, []]));
for (let r = 0; r < rounds; r++) {
  for (const t of targets) {
    const m = await measureThroughput(t, {
      connections: 50,
      duration,
      rate: args.rate ? Number(args.rate) : undefined,
    });
    const o = { rps: m.rps, cpu: m.cpuUsPerReq };
    if (args.stream) {
      const c0 = cpuMicros(t.pid);
      const s = await measureStreaming(t, { requests: streams, concurrency: 10 });
      o.ttfb = s.ttfbP50;
      o.scpu = (cpuMicros(t.pid) - c0) / streams;
    }
    res.get(t.name).push(o);
  }
}
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const base = res.get('bare');
for (const [name, v] of res) {
  const ratio = (k) => med(v.map((x, r) => x[k] / base[r][k]));
  let line = `${name.padEnd(8)} throughput ${ratio('rps').toFixed(2)}x  CPU/request ${ratio('cpu').toFixed(2)}x (per round: ${v.map((x, r) => (x.cpu / base[r].cpu).toFixed(2)).join(' ')})`;
  if (args.stream)
    line += `  TTFB p50 +${med(v.map((x, r) => x.ttfb - base[r].ttfb)).toFixed(2)} ms (${ratio('ttfb').toFixed(2)}x)  CPU/stream ${ratio('scpu').toFixed(2)}x`;
  line += `  CPU µs/request ${med(v.map((x) => x.cpu)).toFixed(0)}`;
  if (idleRss.has(name)) line += `  idle VmRSS ${idleRss.get(name).toFixed(1)} MiB`;
  console.log(line);
}
process.exit(0);
