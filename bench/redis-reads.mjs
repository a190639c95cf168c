// Socket reads Redis made per gateway request (INFO stats `total_reads_processed`: each is one batch
// of commands a client wrote), and CPU per request, for builds on the Redis limit store in
// alternating rounds on one private redis-server:
//   node bench/redis-reads.mjs --build base=/tmp/base --build new=. [--rounds 3] [--duration 4]
// Needs `redis-server` and `redis-cli`. Each request makes two limit-store script calls (reserve,
// settle) plus the abuse engine's shared-signal batches.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { measureThroughput, warmUp } from './lib/load.mjs';
import { pinSelf } from './lib/procs.mjs';
import { startPrivateRedis } from './lib/redis.mjs';
import { startStub } from './lib/targets.mjs';

const { values: args } = parseArgs({
  options: {
    build: { type: 'string', multiple: true, default: ['this=.'] },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '4' },
  },
});
pinSelf(1);
const stub = await startStub({ core: 1 });
const redis = await startPrivateRedis({ core: 1 });
const port = new URL(redis.url).port;
const reads = () =>
  Number(
    /total_reads_processed:(\d+)/.exec(
      execFileSync('redis-cli', ['-p', port, 'info', 'stats'], { encoding: 'utf8' }),
    )[1],
  );
const targets = [];
for (const spec of args.build) {
  const [name, dir] = spec.includes('=') ? spec.split('=') : [spec, spec];
  const lib = await import(join(resolve(dir), 'bench/lib/sluice.mjs'));
  const tmp = lib.tempDir(name);
  const configFile = lib.writeConfig(tmp, {
    upstreamUrl: stub.url,
    store: { store: 'redis', url: redis.url },
  });
  const dataDir = join(tmp, 'data');
  const { key } = lib.createKey({ dataDir, configFile });
  const t = await lib.startSluice({ name, configFile, dataDir, core: 0 });
  t.headers = { authorization: `Bearer ${key}` };
  t.name = name;
  targets.push(t);
  await warmUp(t, 2);
}
for (let r = 0; r < Number(args.rounds); r++) {
  for (const t of targets) {
    const r0 = reads();
    const m = await measureThroughput(t, { connections: 50, duration: Number(args.duration) });
    const perReq = (reads() - r0) / (m.ok + m.non2xx);
    console.log(
      `round ${r} ${t.name.padEnd(6)} ${m.rps.toFixed(0)} req/s  ${m.cpuUsPerReq.toFixed(0)} CPU µs/request  Redis reads/request ${perReq.toFixed(2)}`,
    );
  }
}
process.exit(0);
