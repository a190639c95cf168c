// Response cache bench (standalone; `node scripts/build.mjs && node bench/cache.mjs`): one Sluice
// process with the memory cache on, in front of a loopback stub model that answers after a
// fixed delay (default 20 ms, like a fast model). Drives N sequential misses (distinct prompts)
// then N hits (one prompt repeated), and prints latency (p50/p99, ms) and the gateway's CPU per
// request (µs, from /proc/<pid>/stat) for each, as a markdown table and a JSON line. With
// `--tracing` every request is also traced to a loopback OTLP sink (compare with a run without).
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMicros, killAll } from './lib/procs.mjs';
import { cleanupTemp, createKey, startSluice, tempDir, writeConfig } from './lib/sluice.mjs';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '300' },
    'upstream-ms': { type: 'string', default: '20' },
    // Also trace every request to a loopback OTLP sink: compare with a run without it.
    tracing: { type: 'boolean', default: false },
  },
});
const N = Number(args.requests);
const DELAY = Number(args['upstream-ms']);

const answer = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'bench',
  choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(400) }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 20, completion_tokens: 100, total_tokens: 120 },
});
let upstreamCalls = 0;
const stub = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    upstreamCalls++;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answer), DELAY);
  });
});
await new Promise((r) => stub.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${stub.address().port}`;

const dir = tempDir('sluice-bench-cache-');
const configFile = writeConfig(dir, { upstreamUrl, store: { store: 'memory' } });
// The bench config helper writes JSON (which is YAML); add the cache section.
const cfg = JSON.parse(readFileSync(configFile, 'utf8'));
cfg.cache = { enabled: true, ttl: '1h' };
let exported = 0;
if (args.tracing) {
  const sink = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      exported++;
      res.end('{}');
    });
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  sink.unref();
  cfg.tracing = { enabled: true, endpoint: `http://127.0.0.1:${sink.address().port}/v1/traces` };
}
writeFileSync(configFile, JSON.stringify(cfg, null, 2));
const dataDir = join(dir, 'data');
const { key } = createKey({ dataDir, configFile });
const sluice = await startSluice({ name: 'sluice-cache', configFile, dataDir });

async function call(content) {
  const t = performance.now();
  const r = await fetch(`${sluice.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', temperature: 0, messages: [{ role: 'user', content }] }),
  });
  await r.arrayBuffer();
  return { ms: performance.now() - t, cache: r.headers.get('x-sluice-cache') };
}

async function run(label, prompt) {
  for (let i = 0; i < 20; i++) await call(prompt(-1 - i)); // warm-up
  const cpu0 = cpuMicros(sluice.pid);
  const ms = [];
  const seen = {};
  for (let i = 0; i < N; i++) {
    const r = await call(prompt(i));
    ms.push(r.ms);
    seen[r.cache] = (seen[r.cache] ?? 0) + 1;
  }
  const cpu = (cpuMicros(sluice.pid) - cpu0) / N;
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { label, p50: q(0.5), p99: q(0.99), cpuMicrosPerRequest: cpu, outcomes: seen };
}

try {
  const calls0 = upstreamCalls;
  const miss = await run('miss', (i) => `question ${i} ${Math.random()}`);
  const hit = await run('hit', () => 'the same question');
  const rows = [miss, hit];
  console.log(`\nResponse cache (upstream answers after ${DELAY} ms; ${N} sequential requests each)\n`);
  console.log('| | p50 ms | p99 ms | gateway CPU µs/request | outcomes |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.label} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpuMicrosPerRequest.toFixed(0)} | ${JSON.stringify(r.outcomes)} |`,
    );
  console.log(
    `\nupstream calls: ${upstreamCalls - calls0}; tracing ${args.tracing ? `on (${exported} exports)` : 'off'}`,
  );
  console.log(
    JSON.stringify({ bench: 'cache', tracing: args.tracing, upstreamMs: DELAY, requests: N, rows }),
  );
} finally {
  await killAll();
  stub.close();
  cleanupTemp();
}
