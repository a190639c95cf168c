// `npm run bench` entry point. Starts a stub model server, the proxies under test and (when
// installed) a private Redis, drives every target with the same load in interleaved rounds, runs
// the micro-benchmarks, the multi-instance accuracy run and the memory run, prints markdown
// tables and writes every figure to bench/results/<date>-<commit>.json.
// See bench/README.md for how to read the output. All traffic stays on 127.0.0.1; every child
// process is killed at the end, on error and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { runAccuracy } from './lib/accuracy.mjs';
import { measureStreaming, measureThroughput, pct, probe, warmUp } from './lib/load.mjs';
import { runMemory } from './lib/memory.mjs';
import { CLK_TCK, HAS_TASKSET, kill, killAll, pinSelf, runCommand, sleep } from './lib/procs.mjs';
import { summariseProfile } from './lib/profile.mjs';
import {
  commandDelta,
  HAS_REDIS_SERVER,
  redisCommandCount,
  redisPing,
  startPrivateRedis,
} from './lib/redis.mjs';
import { renderReport } from './lib/report.mjs';
import {
  cleanupTemp,
  createKey,
  SLUICE_BIN_FILES,
  startSluice,
  tempDir,
  waitForSluice,
  writeConfig,
} from './lib/sluice.mjs';
import { startBare, startFastifyMin, startPortkey, startStub } from './lib/targets.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const DEFAULT_TARGETS = [
  'bare',
  'fastify-min',
  'sluice-memory',
  'sluice-memory-off',
  'sluice-memory-output-on',
  'sluice-memory-output-off',
  'sluice-redis',
  'portkey',
];
const ALL_TARGETS = [
  'bare',
  'bare-pipe',
  'fastify-min',
  'sluice-memory',
  'sluice-memory-off',
  'sluice-memory-output-on',
  'sluice-memory-output-off',
  'sluice-redis',
  'portkey',
];
/** `sluice-memory-off`: the same gateway with abuse detection and content screening off, to show what they cost. */
const DETECTION_OFF = {
  abuse: { enabled: false },
  screening: {
    injection: { action: 'off' },
    secrets: { action: 'off' },
    pii: { action: 'off' },
    output: { secrets: 'off', pii: 'off' },
  },
};
/**
 * The comparison issue 12 names ("TTFB with output screening on is within 0.3 ms of off"):
 * `sluice-memory-output-on` is `sluice-memory` (output screening at its defaults) and
 * `sluice-memory-output-off` the same with only `screening.output` off (input screening and abuse
 * detection as in `sluice-memory`). Two fresh processes rather than `sluice-memory` itself, so
 * that both have the same history (warm-up, JIT, heap): against `sluice-memory`, warmed by the
 * throughput rounds, the output-off process used 140-220 µs more CPU per stream in its first
 * thousands of streams, more than output screening costs. They run only in the streaming phase's
 * on/off comparison (`outputScreeningPhase`), not in the throughput rounds or the streaming table.
 */
const OUTPUT_OFF = { screening: { output: { secrets: 'off', pii: 'off', deny: [] } } };
const COMPARISON_ONLY = new Set(['sluice-memory-output-on', 'sluice-memory-output-off']);

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    instances: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    targets: { type: 'string', default: DEFAULT_TARGETS.join(',') },
    'redis-url': { type: 'string' },
    'memory-keys': { type: 'string' },
    'no-streaming': { type: 'boolean', default: false },
    'no-throughput': { type: 'boolean', default: false },
    'output-pairs': { type: 'string' },
    'output-block': { type: 'string' },
    'output-aa': { type: 'boolean', default: false },
    'no-micro': { type: 'boolean', default: false },
    'no-accuracy': { type: 'boolean', default: false },
    'no-memory': { type: 'boolean', default: false },
    'no-extras': { type: 'boolean', default: false },
    profile: { type: 'boolean' },
    scale: { type: 'boolean', default: false },
    'scale-keys': { type: 'string' },
    'scale-requests': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench -- [options]
  --quick               about a minute: 2 rounds of 3 s, fewer streaming requests, 20,000 memory keys
  --targets LIST        comma list of ${ALL_TARGETS.join(',')}
                        (default ${DEFAULT_TARGETS.join(',')})
  --connections N       autocannon connections (50)
  --duration S          seconds per round (10; quick 3)
  --rounds N            interleaved rounds (3; quick 2)
  --instances N         Sluice instances in the accuracy run (3)
  --redis-url URL       use this Redis instead of a private redis-server
  --memory-keys N       distinct end users in the memory run (100000; quick 20000)
  --output-pairs N      block pairs in the output-screening on/off streaming comparison (40; quick 10)
  --output-block N      streamed requests per target per block in it (100)
  --output-aa           A/A check of that comparison: the "off" process gets output screening on too,
                        so its difference is the measurement's own noise
  --no-throughput       skip the throughput rounds (the streaming phase still runs)
  --profile             CPU-profile Sluice under load (default on, off with --quick)
  --scale               only the scale bench (bench/scale.mjs): N store instances on one Redis and on
                        a 3-master cluster, Zipf keys, plain and --mixed shapes, leases off and on
  --scale-keys N        distinct keys in the scale bench (1000000; quick 100000)
  --scale-requests N    requests per scale run (30000; quick 5000)
  --no-streaming --no-micro --no-accuracy --no-memory --no-extras --no-write`);
  process.exit(0);
}
const quick = args.quick;
const settings = {
  quick,
  connections: Number(args.connections),
  duration: Number(args.duration ?? (quick ? 3 : 10)),
  rounds: Number(args.rounds ?? (quick ? 2 : 3)),
  warmup: quick ? 1 : 3,
  streamRequests: quick ? 200 : 1000,
  streamConcurrency: 10,
  streamRounds: quick ? 1 : 2,
  outputPairs: Number(args['output-pairs'] ?? (quick ? 10 : 40)),
  outputBlock: Number(args['output-block'] ?? 100),
  instances: Number(args.instances),
  memoryKeys: Number(args['memory-keys'] ?? (quick ? 20_000 : 100_000)),
  profile: args.profile ?? !quick,
  targets: args.targets
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
};
for (const t of settings.targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}`);

// Cores: the target under test on core 0; stub, Redis and the load generator (this process) on 1.
const TARGET_CORE = 0;
const LOAD_CORE = cpus().length > 1 ? 1 : 0;
const notes = [];
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// Hard deadline: a wedged child must never hang CI.
const deadlineMs = (quick ? 6 : 30) * 60_000;
const deadline = setTimeout(() => {
  console.error(`bench: deadline of ${deadlineMs / 60_000} min exceeded, stopping`);
  killAll().finally(() => process.exit(2));
}, deadlineMs);
deadline.unref();

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** First line of an error, plus the last line the failed process printed, if any. */
function shortReason(err) {
  const [first, ...rest] = String(err?.message ?? err).split('\n');
  const i = rest.findIndex((l) => l.startsWith('--- '));
  const out = i >= 0 ? rest.slice(i + 1).filter((l) => l.trim() && !/^\s+at /.test(l)) : [];
  return out.length ? `${first} — ${out[out.length - 1].trim().slice(0, 200)}` : first;
}

async function startTargets(stub, redis) {
  const targets = [];
  const skipped = [];
  let sluice;
  const wantsSluice = settings.targets.some((t) => t.startsWith('sluice'));
  if (wantsSluice) sluice = await waitForSluice();
  for (const name of settings.targets) {
    try {
      let t;
      if (name === 'bare') t = await startBare({ core: TARGET_CORE, upstreamUrl: stub.url });
      else if (name === 'bare-pipe')
        t = await startBare({ core: TARGET_CORE, upstreamUrl: stub.url, mode: 'pipe' });
      else if (name === 'fastify-min')
        t = await startFastifyMin({ core: TARGET_CORE, upstreamUrl: stub.url });
      else if (name === 'portkey') t = await startPortkey({ core: TARGET_CORE, upstreamUrl: stub.url });
      else if (name.startsWith('sluice-')) {
        if (!sluice.ok) throw new Error(sluice.reason);
        if (name === 'sluice-redis' && !redis) throw new Error('no Redis reachable');
        const dir = tempDir(name);
        const store = name === 'sluice-redis' ? { store: 'redis', url: redis.url } : { store: 'memory' };
        const extra =
          name === 'sluice-memory-off'
            ? DETECTION_OFF
            : name === 'sluice-memory-output-off' && !args['output-aa']
              ? OUTPUT_OFF
              : {};
        const configFile = writeConfig(dir, { upstreamUrl: stub.url, store, extra });
        const dataDir = join(dir, 'data');
        const { key } = createKey({ dataDir, configFile });
        t = await startSluice({ name, configFile, dataDir, core: TARGET_CORE });
        t.headers = { authorization: `Bearer ${key}` };
      }
      t.name = name;
      // A request through each target before anything is measured: it must answer 200.
      const p = await probe(t);
      if (p.status !== 200)
        throw new Error(`probe request through the target answered ${p.status}: ${p.body}`);
      targets.push(t);
      log(`started ${name} at ${t.url} (pid ${t.pid})`);
    } catch (err) {
      const reason = shortReason(err);
      log(`skipping ${name}: ${reason}`);
      if (process.env.BENCH_DEBUG) console.error(err);
      skipped.push({ name, skipped: reason });
    }
  }
  return { targets, skipped };
}

/** The targets of the throughput rounds and the streaming table (not the comparison-only ones). */
const measured = (targets) => targets.filter((t) => !COMPARISON_ONLY.has(t.name));
const measuredNames = () => settings.targets.filter((n) => !COMPARISON_ONLY.has(n));

async function throughputPhase(allTargets, skipped, redis) {
  const targets = measured(allTargets);
  log(`warm-up ${settings.warmup} s per target`);
  for (const t of targets) await warmUp(t, settings.warmup);
  const perRound = [];
  let redisCalls = 0;
  let redisScripts = 0;
  let redisRequests = 0;
  for (let r = 0; r < settings.rounds; r++) {
    const round = {};
    for (const t of targets) {
      const before =
        t.name === 'sluice-redis' && redis?.private ? await redisCommandCount(redis.url) : undefined;
      const m = await measureThroughput(t, {
        connections: settings.connections,
        duration: settings.duration,
      });
      if (before) {
        const d = commandDelta(before, await redisCommandCount(redis.url));
        redisCalls += d.calls;
        redisScripts += (d.byCommand.evalsha ?? 0) + (d.byCommand.eval ?? 0) + (d.byCommand.fcall ?? 0);
        redisRequests += m.ok + m.non2xx;
      }
      round[t.name] = m;
      log(
        `round ${r + 1}/${settings.rounds} ${t.name}: ${Math.round(m.rps)} req/s, p99 ${m.p99} ms, ` +
          `${m.cpuUsPerReq?.toFixed(0)} µs CPU/req, ${m.non2xx} non-2xx, ${m.errors} errors`,
      );
      await sleep(200);
    }
    perRound.push(round);
  }
  const rows = targets.map((t) => {
    const ms = perRound.map((r) => r[t.name]);
    const ratios = perRound.map((r) => (r.bare ? r[t.name].rps / r.bare.rps : undefined));
    const cpuRatios = perRound.map((r) => (r.bare ? r[t.name].cpuUsPerReq / r.bare.cpuUsPerReq : undefined));
    return {
      name: t.name,
      rps: median(ms.map((m) => m.rps)),
      rpsRatio: median(ratios),
      rpsRatioPerRound: ratios,
      p50: median(ms.map((m) => m.p50)),
      p99: median(ms.map((m) => m.p99)),
      cpuUsPerReq: median(ms.map((m) => m.cpuUsPerReq)),
      cpuRatio: median(cpuRatios),
      failures: ms.reduce((a, m) => a + m.non2xx + m.errors, 0),
      rounds: ms,
    };
  });
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  const out = { targets: measuredNames().map((n) => byName[n] ?? skipped.find((s) => s.name === n)) };
  if (byName['sluice-memory'] && byName.portkey) {
    out.sluiceOverPortkey = byName['sluice-memory'].rps / byName.portkey.rps;
  }
  if (redisRequests > 0) {
    // INFO commandstats counts the commands a Lua script runs inside Redis too.
    out.redisCallsPerRequest = redisCalls / redisRequests;
    out.redisScriptsPerRequest = redisScripts / redisRequests;
  }
  return out;
}

async function streamingPhase(allTargets, skipped) {
  const targets = measured(allTargets);
  const perRound = [];
  for (let r = 0; r < settings.streamRounds; r++) {
    const round = {};
    for (const t of targets) {
      round[t.name] = await measureStreaming(t, {
        requests: settings.streamRequests,
        concurrency: settings.streamConcurrency,
      });
      log(
        `streaming ${t.name}: TTFB p50 ${round[t.name].ttfbP50?.toFixed(2)} ms, total p50 ${round[t.name].totalP50?.toFixed(2)} ms`,
      );
    }
    perRound.push(round);
  }
  const rows = targets.map((t) => {
    const ms = perRound.map((r) => r[t.name]);
    const row = { name: t.name };
    for (const k of ['ttfbP50', 'ttfbP99', 'totalP50', 'totalP99', 'cpuUsPerStream'])
      row[k] = median(ms.map((m) => m[k]));
    row.complete = ms.reduce((a, m) => a + m.complete, 0);
    row.failed = ms.reduce((a, m) => a + m.failed, 0);
    return row;
  });
  const bare = rows.find((r) => r.name === 'bare');
  for (const row of rows) {
    if (bare) {
      row.ttfbRatio = row.ttfbP50 / bare.ttfbP50;
      row.totalRatio = row.totalP50 / bare.totalP50;
    }
  }
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  const out = {
    requests: settings.streamRequests,
    concurrency: settings.streamConcurrency,
    rounds: settings.streamRounds,
    targets: measuredNames().map((n) => byName[n] ?? skipped.find((s) => s.name === n)),
  };
  const on = allTargets.find((t) => t.name === 'sluice-memory-output-on');
  const off = allTargets.find((t) => t.name === 'sluice-memory-output-off');
  if (on && off) out.outputScreening = await outputScreeningPhase(on, off);
  return out;
}

/**
 * Issue 12's criterion, measured as it is worded: streaming TTFB of `sluice-memory-output-on`
 * (output screening at its defaults: secrets redacted) against `sluice-memory-output-off` (the same
 * config with only `screening.output` off), at the streaming phase's concurrency. Both processes are
 * pinned to the target core and each is idle while the other is measured.
 *
 * At 10 concurrent streams the TTFB is mostly waiting in the event loop behind other streams'
 * chunks, so it moves with anything else on the machine: two rounds of 1,000 requests per target,
 * minutes apart, gave differences of +0.24 and +1.57 ms (2026-12-07). So the two targets take
 * turns in short blocks (`--output-block` requests, default 100) over one kept-open connection
 * pool each, in pairs whose order alternates (on, off / off, on / ...): each pair's halves are
 * measured about a second apart, drift falls on both alike, and no block pays for new connections.
 * The figures are percentiles over all blocks' requests pooled; the median of the per-pair p50
 * differences is kept beside them as a check that one stretch of noise does not carry the result.
 */
async function outputScreeningPhase(on, off) {
  const concurrency = settings.streamConcurrency;
  const pools = new Map([on, off].map((t) => [t, new Pool(t.url, { connections: concurrency })]));
  const block = (t, requests) =>
    measureStreaming(t, { requests, concurrency, samples: true, pool: pools.get(t) });
  try {
    // The same warm-up for both (neither is in the throughput rounds): load, then streams.
    for (const t of [on, off]) await warmUp(t, settings.warmup);
    for (let i = 0; i < 4; i++) for (const t of i % 2 ? [off, on] : [on, off]) await block(t, 250);
    const pooled = {
      on: { ttfb: [], total: [], cpu: 0, streams: 0 },
      off: { ttfb: [], total: [], cpu: 0, streams: 0 },
    };
    const pairs = [];
    for (let r = 0; r < settings.outputPairs; r++) {
      const order = r % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      const pair = {};
      for (const side of order) {
        const m = await block(side === 'on' ? on : off, settings.outputBlock);
        const p = pooled[side];
        p.ttfb.push(...m.ttfb);
        p.total.push(...m.total);
        p.cpu += m.cpuUsPerStream * (m.complete + m.failed);
        p.streams += m.complete + m.failed;
        p.complete = (p.complete ?? 0) + m.complete;
        p.failed = (p.failed ?? 0) + m.failed;
        pair[side] = m;
      }
      pairs.push({
        order: order.join(','),
        ttfbP50Diff: pair.on.ttfbP50 - pair.off.ttfbP50,
        ttfbP99Diff: pair.on.ttfbP99 - pair.off.ttfbP99,
        onTtfbP50: pair.on.ttfbP50,
        offTtfbP50: pair.off.ttfbP50,
      });
    }
    const summary = (p) => {
      const ttfb = p.ttfb.sort((a, b) => a - b);
      const total = p.total.sort((a, b) => a - b);
      return {
        ttfbP50: pct(ttfb, 50),
        ttfbP99: pct(ttfb, 99),
        totalP50: pct(total, 50),
        totalP99: pct(total, 99),
        // CPU time of the target process over all its blocks (/proc ticks: 10 ms each, so summed, not per block).
        cpuUsPerStream: p.streams > 0 ? p.cpu / p.streams : undefined,
        complete: p.complete,
        failed: p.failed,
      };
    };
    const onS = summary(pooled.on);
    const offS = summary(pooled.off);
    const diffs = pairs.map((p) => p.ttfbP50Diff).sort((a, b) => a - b);
    const out = {
      on: onS,
      off: offS,
      ttfbP50Diff: onS.ttfbP50 - offS.ttfbP50,
      ttfbP99Diff: onS.ttfbP99 - offS.ttfbP99,
      cpuUsPerStreamDiff: onS.cpuUsPerStream - offS.cpuUsPerStream,
      pairTtfbP50Diff: { median: median(diffs), p25: pct(diffs, 25), p75: pct(diffs, 75) },
      ...(args['output-aa'] ? { aa: true } : {}),
      blockRequests: settings.outputBlock,
      pairs: settings.outputPairs,
      concurrency,
      perPair: pairs,
    };
    log(
      `output screening on/off: TTFB p50 ${onS.ttfbP50.toFixed(2)} / ${offS.ttfbP50.toFixed(2)} ms ` +
        `(${out.ttfbP50Diff >= 0 ? '+' : ''}${out.ttfbP50Diff.toFixed(2)}; per pair median ${out.pairTtfbP50Diff.median.toFixed(2)}), ` +
        `p99 ${onS.ttfbP99.toFixed(2)} / ${offS.ttfbP99.toFixed(2)} ms, CPU/stream ${onS.cpuUsPerStream?.toFixed(0)} / ${offS.cpuUsPerStream?.toFixed(0)} µs`,
    );
    return out;
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
}

function microPhase(redis) {
  const present = ['limiter', 'authz'].filter((n) => existsSync(join(ROOT, 'bench', `${n}.ts`)));
  if (present.length === 0)
    return {
      limiter: { skipped: 'bench/limiter.ts not present' },
      authz: { skipped: 'bench/authz.ts not present' },
    };
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  const argv = [
    tsx,
    join(ROOT, 'bench', 'micro.mjs'),
    ...(quick ? ['--quick'] : []),
    ...(redis ? ['--redis-url', redis.url] : []),
  ];
  // The micro-benchmarks run alone, on the target core (Redis stays on the load core).
  const cmd = HAS_TASKSET ? 'taskset' : argv[0];
  const cmdArgs = HAS_TASKSET ? ['-c', String(TARGET_CORE), ...argv] : argv.slice(1);
  const out = runCommand(cmd, cmdArgs, { cwd: ROOT, timeoutMs: (quick ? 60 : 300) * 1000 });
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`micro-benchmarks printed no result:\n${out.slice(-2000)}`);
  return JSON.parse(line.slice('BENCH_JSON '.length));
}

async function profilePhase(stub) {
  const avail = await waitForSluice();
  if (!avail.ok) return { skipped: avail.reason };
  const dir = tempDir('profile');
  const configFile = writeConfig(dir, { upstreamUrl: stub.url, store: { store: 'memory' } });
  const dataDir = join(dir, 'data');
  const { key } = createKey({ dataDir, configFile });
  const profDir = join(dir, 'prof');
  const t = await startSluice({
    name: 'sluice-profiled',
    configFile,
    dataDir,
    core: TARGET_CORE,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
    bin: SLUICE_BIN_FILES,
  });
  t.headers = { authorization: `Bearer ${key}` };
  await warmUp(t, settings.warmup);
  const tStart = performance.now();
  const m = await measureThroughput(t, { connections: settings.connections, duration: settings.duration });
  const tEnd = performance.now();
  await kill(t, 10_000);
  const tExit = performance.now();
  const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0)
    return { skipped: 'no .cpuprofile written (does `sluice serve` exit cleanly on SIGTERM?)' };
  // Only the samples taken while the load ran: not start-up, warm-up or shutdown.
  const summary = summariseProfile(join(profDir, files[0]), {
    fromEndMs: [tExit - tEnd, tExit - tStart],
  });
  return { rpsWhileProfiled: m.rps, ...summary };
}

/**
 * Screening cost per detector for a 4 kB prompt (bench/screening.mjs), run FIRST, before the stub,
 * Redis or any target starts and while this process waits in `spawnSync`: its p99 is a wall-clock
 * percentile of ~150 µs calls, so a single wake-up of another process on its core (Redis's cron
 * runs ten times a second) lands in it. It ran after every other phase before, on the core the
 * stub and Redis were pinned to. It is NOT pinned: pinned to one core, V8's own background threads
 * (concurrent GC marking, optimising compiler) take turns with the main thread on that core and
 * the p99 doubled (2026-12-07, same build, alternating: pinned 582–665 µs, free 268–305 µs, p50
 * 116–119 either way). Nothing else runs at this point, so the two cores are its own.
 * Returns the report section and the JSON figures.
 */
function screeningPhase() {
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
  const argv = [tsx, join(ROOT, 'bench', 'screening.mjs'), ...(quick ? ['--quick'] : [])];
  const [cmd, ...cmdArgs] = argv;
  const label = 'Content screening, 4 kB prompt (µs; run before the bench starts any server, not pinned)';
  try {
    const text = runCommand(cmd, cmdArgs, { cwd: ROOT, timeoutMs: (quick ? 120 : 400) * 1000 });
    const sj = text.split('\n').find((l) => l.startsWith('BENCH_JSON '));
    return {
      text: `\n### ${label}\n\n${text.trim()}\n`,
      screening: sj ? JSON.parse(sj.slice('BENCH_JSON '.length)) : undefined,
    };
  } catch (err) {
    return { text: `\n### ${label}\n\nskipped: ${String(err.message).split('\n')[0]}\n` };
  }
}

/**
 * The standalone benches of later capabilities, run after the throughput phase on a quiet machine:
 * a cache hit next to a miss with tracing off and on (bench/cache.mjs), after the screening
 * figures (`screeningPhase`, run before everything else). Their tables are appended to the report.
 */
function extrasPhase(screening) {
  const out = { text: screening?.text ?? '' };
  if (screening?.screening) out.screening = screening.screening;
  const run = (label, cmd, cmdArgs) => {
    try {
      const text = runCommand(cmd, cmdArgs, { cwd: ROOT, timeoutMs: (quick ? 120 : 400) * 1000 });
      out.text += `\n### ${label}\n\n${text.trim()}\n`;
      return text;
    } catch (err) {
      out.text += `\n### ${label}\n\nskipped: ${String(err.message).split('\n')[0]}\n`;
      return '';
    }
  };
  const n = quick ? '100' : '300';
  for (const tracing of [false, true]) {
    const text = run(`Response cache, tracing ${tracing ? 'on' : 'off'}`, process.execPath, [
      join(ROOT, 'bench', 'cache.mjs'),
      '--requests',
      n,
      ...(tracing ? ['--tracing'] : []),
    ]);
    const j = text
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{"bench":"cache"'));
    if (j) out[tracing ? 'cacheTracing' : 'cache'] = JSON.parse(j);
  }
  return out;
}

/**
 * `--scale`: bench/scale.mjs in a child, once per shape (key + tenant; plus IP and global) and once
 * with hot-key leases on; its JSON lines are collected into one results file beside the others.
 */
function scalePhase(env) {
  const runs = [
    { name: 'plain', extra: [] },
    { name: 'mixed', extra: ['--mixed'] },
    { name: 'leases', extra: ['--leases'] },
  ];
  const common = [
    '--keys',
    String(args['scale-keys'] ?? (quick ? 100_000 : 1_000_000)),
    '--requests',
    String(args['scale-requests'] ?? (quick ? 5_000 : 30_000)),
    '--instances',
    String(settings.instances),
  ];
  const out = { env, scale: {} };
  for (const r of runs) {
    log(`scale bench: ${r.name}`);
    const text = runCommand(process.execPath, [join(ROOT, 'bench', 'scale.mjs'), ...common, ...r.extra], {
      cwd: ROOT,
      timeoutMs: (quick ? 5 : 20) * 60_000,
    });
    out.scale[r.name] = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  }
  const cols = [
    'backend',
    'decisionsPerSec',
    'roundTripsPerRequest',
    'redisCommandsPerRequest',
    'redisCpuUsPerRequest',
    'p50Ms',
    'p99Ms',
    'hotKeyOverAdmission',
    'overAdmissionBound',
  ];
  let report = `| shape | ${cols.join(' | ')} |\n|${'---|'.repeat(cols.length + 1)}\n`;
  for (const [shape, rows] of Object.entries(out.scale))
    for (const row of rows) report += `| ${shape} | ${cols.map((c) => row[c] ?? '—').join(' | ')} |\n`;
  console.log(report);
  if (!args['no-write']) {
    mkdirSync(args.out, { recursive: true });
    const file = join(args.out, `${env.date}-${env.commit}-scale${quick ? '-quick' : ''}.json`);
    writeFileSync(file, `${JSON.stringify({ ...out, report }, null, 2)}\n`);
    log(`wrote ${file}`);
  }
}

async function main() {
  const env = {
    date: new Date().toISOString().slice(0, 10),
    time: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    taskset: HAS_TASKSET,
    clkTck: CLK_TCK,
    loadGenerator: 'autocannon (in-process)',
  };
  if (args.scale) {
    scalePhase(env);
    return;
  }
  // Before anything is started or pinned: see screeningPhase.
  let screening;
  if (!args['no-extras']) {
    log('screening cost (first, before any server starts)');
    screening = screeningPhase();
  }
  if (HAS_TASKSET) pinSelf(LOAD_CORE);
  const results = { env, settings, notes };

  const stub = await startStub({ core: LOAD_CORE });
  log(`stub model server at ${stub.url}`);

  let redis;
  if (args['redis-url']) {
    if (await redisPing(args['redis-url'])) redis = { url: args['redis-url'], private: false };
    else notes.push(`Redis at ${args['redis-url']} not reachable: Redis sections skipped`);
  } else if (HAS_REDIS_SERVER) {
    redis = await startPrivateRedis({ core: LOAD_CORE });
    log(`private redis-server at ${redis.url}`);
  } else if (await redisPing('redis://127.0.0.1:6379')) {
    redis = { url: 'redis://127.0.0.1:6379', private: false };
  } else notes.push('no redis-server binary and nothing on 127.0.0.1:6379: Redis sections skipped');
  if (redis && !redis.private) {
    notes.push('shared Redis: command counts per request include other clients of that server');
  }
  env.redis = redis ? (redis.private ? 'private redis-server' : redis.url) : 'none';

  const { targets, skipped } = await startTargets(stub, redis);
  if (targets.some((t) => t.name === 'bare')) {
    if (!args['no-throughput']) results.throughput = await throughputPhase(targets, skipped, redis);
    if (!args['no-streaming']) results.streaming = await streamingPhase(targets, skipped);
    const pk = targets.find((t) => t.name === 'portkey');
    if (pk?.log.join('').includes('TypeError: immutable')) {
      notes.push(
        'portkey: streamed requests fail with "TypeError: immutable" in its updateHeaders (a known Portkey bug ' +
          'with @hono/node-server > 1.14.2, Portkey-AI/gateway#1389 and #1550), so it has no streaming figures',
      );
    }
  } else notes.push('bare proxy did not start: no throughput figures');
  await Promise.all(targets.map((t) => kill(t)));

  if (!args['no-micro']) {
    log('micro-benchmarks');
    try {
      results.micro = microPhase(redis);
    } catch (err) {
      results.micro = { error: { skipped: String(err.message).split('\n')[0] } };
    }
  }

  const avail = await waitForSluice();
  if (!args['no-accuracy']) {
    log(`accuracy run: ${settings.instances} instances`);
    if (!avail.ok) results.accuracy = { skipped: avail.reason };
    else if (!redis) results.accuracy = { skipped: 'no Redis' };
    else {
      // Two configurations: the default store timeout (50 ms; on timeout a local limiter with
      // its share takes over), and a long one, so that the Redis path alone is judged even when
      // a busy machine starves the instances of CPU.
      results.accuracy = { runs: [] };
      for (const [label, limitsConfig] of [
        ['default (timeout 50ms, onStoreFailure local)', {}],
        ['store timeout 2s', { timeout: '2s' }],
      ]) {
        // --quick: the long-timeout run only when the default one went degraded or over-admitted.
        const first = results.accuracy.runs[0];
        if (quick && first && !first.skipped && !first.degradedEpisodes && !first.overAdmitted) break;
        try {
          const r = await runAccuracy({
            upstreamUrl: stub.url,
            redisUrl: redis.url,
            instances: settings.instances,
            core: TARGET_CORE,
            attemptsPerKey: quick ? 300 : 600,
            limitsConfig,
          });
          results.accuracy.runs.push({ label, ...r });
        } catch (err) {
          results.accuracy.runs.push({ label, skipped: `failed: ${String(err.message).split('\n')[0]}` });
          if (process.env.BENCH_DEBUG) console.error(err);
        }
      }
    }
  }

  if (!args['no-memory']) {
    log(`memory run: ${settings.memoryKeys} end users`);
    if (!avail.ok) results.memory = { skipped: avail.reason };
    else {
      try {
        results.memory = await runMemory({
          upstreamUrl: stub.url,
          keys: settings.memoryKeys,
          core: TARGET_CORE,
        });
        if (!results.memory.perEndUserLimitEnforced) {
          notes.push(
            `memory run: could not confirm one bucket per end user (ratelimit header for a new user: ${results.memory.fresh.header}; for a seen one: ${results.memory.seen.header})`,
          );
        }
      } catch (err) {
        results.memory = { skipped: `failed: ${String(err.message).split('\n')[0]}` };
        if (process.env.BENCH_DEBUG) console.error(err);
      }
    }
  }

  if (settings.profile) {
    log('CPU profile of Sluice under load');
    try {
      results.profile = await profilePhase(stub);
    } catch (err) {
      results.profile = { skipped: `failed: ${String(err.message).split('\n')[0]}` };
    }
  }

  if (!args['no-extras']) {
    log('response cache and tracing');
    results.extras = extrasPhase(screening);
  }

  if (HAS_TASKSET === false) notes.push('taskset not found: target, stub and load generator share all cores');
  let report = renderReport(results);
  if (results.extras?.text) report += `\n${results.extras.text}`;
  console.log(report);
  if (!args['no-write']) {
    mkdirSync(args.out, { recursive: true });
    const file = join(args.out, `${env.date}-${env.commit}${quick ? '-quick' : ''}.json`);
    writeFileSync(file, `${JSON.stringify({ ...results, report }, null, 2)}\n`);
    log(`wrote ${file}`);
  }
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await killAll();
  cleanupTemp();
  clearTimeout(deadline);
}
process.exit(exitCode);
