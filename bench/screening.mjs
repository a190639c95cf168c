// Screening cost per request: p50 / p99 per detector and with all detectors on, for a 4 kB
// prompt (mixed prose, code, an e-mail address and a key), in one process.
//   npx tsx bench/screening.mjs [--quick] [--only=NAME,NAME]
// Wall-clock percentiles include time the process spent preempted (on a shared machine the p99
// mostly measures the other jobs); `cpu` is the mean CPU time per call over the same runs
// (process.cpuUsage: user + system), which other processes do not inflate.
// `all (screenRequest)` scans every text on every call (no memo): the cost of a request whose
// texts were not seen before. `all, texts seen before (memo)` is the same request when its texts
// are in the gateway's memo of findings (src/core/screening/memo.ts), as a chat's history is from
// its second turn on. `output stream` is the output screener (secrets redact, its default) on a
// 4 kB answer arriving in 12-character deltas; `output whole answer` the same text in one push.
// Prints a table and one line `BENCH_JSON <json>` (for bench/run.mjs to collect).

import { shippedInjectionModel } from '../src/core/screening/injection-model.ts';
import { ScreeningMemo } from '../src/core/screening/memo.ts';
import { normalise } from '../src/core/screening/normalise.ts';
import { createOutputScreener, screenOutputText } from '../src/core/screening/output.ts';
import { detectPii } from '../src/core/screening/pii.ts';
import { DEFAULT_SCREENING } from '../src/core/screening/policy.ts';
import { scoreInjection } from '../src/core/screening/prompt-injection.ts';
import { screenRequest } from '../src/core/screening/request.ts';
import { detectSecrets } from '../src/core/screening/secrets.ts';

const quick = process.argv.includes('--quick');
const N = quick ? 500 : 5000;
const parts = [
  'Please review the following deployment notes and summarise the risks for the team.',
  'The service reads its configuration from environment variables; the database URL and the cache host are set per region.',
  '```python\ndef retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except TimeoutError:\n            continue\n```',
  'Contact the on-call engineer at oncall@example.com if the error rate goes above 2% for five minutes.',
  'Les journaux montrent des délais de 250 ms au 99e centile; nous devons vérifier le pool de connexions.',
  'Rollout happens in three waves: canary (5%), half (50%), and everyone, with a pause of 30 minutes between waves.',
  'The old token ghp_R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8 was revoked yesterday and must not be reused.',
];
let prompt = '';
for (let i = 0; prompt.length < 4096; i++) prompt += `${parts[i % parts.length]}\n\n`;
prompt = prompt.slice(0, 4096);
const body = {
  model: 'm',
  messages: [
    { role: 'system', content: 'You are a careful reviewer.' },
    { role: 'user', content: prompt },
  ],
};
const model = shippedInjectionModel();

function time(fn) {
  // Warm-up: a gateway's screening code has long been optimised by the time it serves traffic; the
  // first few hundred calls after start run while V8 is still compiling it (in a 5,000-call run
  // after 300 warm-up calls the slowest 2 % were mostly the first hundred). 2,000 calls reach the
  // steady state (p99 257 → 236 µs, p50 116 either way, 2026-12-07).
  for (let i = 0; i < Math.min(2000, N); i++) fn();
  const xs = new Float64Array(N);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    xs[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const c = process.cpuUsage(c0);
  xs.sort();
  return { p50: xs[Math.floor(N * 0.5)], p99: xs[Math.floor(N * 0.99)], cpu: (c.user + c.system) / N };
}

const deltas = prompt.match(/.{1,12}/gs);
const memo = new ScreeningMemo();
const cases = {
  normalise: () => normalise(prompt),
  injection: () => scoreInjection(model, prompt),
  secrets: () => detectSecrets(prompt),
  pii: () => detectPii(prompt),
  'all (screenRequest)': () => screenRequest('chat', body, DEFAULT_SCREENING),
  'all, texts seen before (memo)': () => screenRequest('chat', body, DEFAULT_SCREENING, { memo }),
  'output stream (12-char deltas)': () => {
    const s = createOutputScreener(DEFAULT_SCREENING);
    for (const d of deltas) s.push(d);
    s.flush();
  },
  // The same answer in one push: the cost of screening it once, which the stream row is read
  // against (the incremental screener re-reads a delta a bounded number of times, not per delta).
  'output whole answer (one push)': () => screenOutputText(prompt, DEFAULT_SCREENING),
};
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const results = {};
for (const [k, fn] of Object.entries(cases))
  if (!only || only.some((o) => k.startsWith(o))) results[k] = time(fn);
console.log(`screening, ${prompt.length}-char prompt, ${N} runs each (µs)`);
console.log('| detector | p50 µs | p99 µs | cpu µs (mean) |\n|---|---|---|---|');
for (const [k, v] of Object.entries(results))
  console.log(`| ${k} | ${v.p50.toFixed(1)} | ${v.p99.toFixed(1)} | ${v.cpu.toFixed(1)} |`);
console.log(
  `BENCH_JSON ${JSON.stringify({ screening: { promptChars: prompt.length, runs: N, ...results } })}`,
);
