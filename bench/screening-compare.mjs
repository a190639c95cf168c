// Before/after in one process: another checkout's screening code against this one's, on the same
// 4 kB prompt as bench/screening.mjs, interleaved batch by batch so both see the same machine
// load. Prints CPU time per call (process.cpuUsage over a batch: min and median over the batches)
// and wall time per call (p50 and p99 over every call; on a loaded machine p99 measures the
// other jobs).
//   mkdir -p /tmp/base && git archive main src | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/
//   npx tsx bench/screening-compare.mjs /tmp/base [ROUNDS] [--new DIR]
// A directory is either a checkout (its src/core/screening/*.ts are imported, through tsx) or an
// esbuild output of src/ as dist/ has it (core/screening/*.js, or dist/core/screening/*.js):
//   npx esbuild src/core/screening/*.ts src/core/screening/model/*.ts src/core/errors.ts \
//     --outdir=/tmp/new-dist --outbase=src --format=esm --platform=node --target=node20
// `--new DIR` measures DIR instead of this checkout's src (to compare two builds).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchPrompt } from './screening-prompt.mjs';

const args = process.argv.slice(2);
const newAt = args.indexOf('--new');
const newDir = newAt >= 0 ? args.splice(newAt, 2)[1] : null;
function screeningDir(dir) {
  for (const [sub, ext] of [
    ['src/core/screening', '.ts'],
    ['core/screening', '.js'],
    ['dist/core/screening', '.js'],
  ])
    if (existsSync(join(dir, sub, `request${ext}`))) return { path: `${join(dir, sub)}/`, ext };
  throw new Error(`no screening code under ${dir}`);
}
const base = screeningDir(args[0] ?? '/tmp/base');
const cur = newDir
  ? screeningDir(newDir)
  : { path: new URL('../src/core/screening/', import.meta.url).pathname, ext: '.ts' };
async function load({ path: dir, ext }) {
  const m = async (name) => import(dir + name + ext);
  return {
    model: (await m('injection-model')).shippedInjectionModel(),
    normalise: (await m('normalise')).normalise,
    scoreInjection: (await m('prompt-injection')).scoreInjection,
    detectSecrets: (await m('secrets')).detectSecrets,
    detectPii: (await m('pii')).detectPii,
    screenRequest: (await m('request')).screenRequest,
    createOutputScreener: (await m('output')).createOutputScreener,
    DEFAULT: (await m('policy')).DEFAULT_SCREENING,
  };
}
const B = await load(base);
const C = await load(cur);
const prompt = benchPrompt();
const deltas = prompt.match(/.{1,12}/gs);
const body = {
  model: 'm',
  messages: [
    { role: 'system', content: 'You are a careful reviewer.' },
    { role: 'user', content: prompt },
  ],
};
const cases = (X) => ({
  normalise: () => X.normalise(prompt),
  injection: () => X.scoreInjection(X.model, prompt),
  secrets: () => X.detectSecrets(prompt),
  pii: () => X.detectPii(prompt),
  all: () => X.screenRequest('chat', body, X.DEFAULT),
  'output stream': () => {
    const s = X.createOutputScreener(X.DEFAULT);
    for (const d of deltas) s.push(d);
    s.flush();
  },
});
const cb = cases(B);
const cc = cases(C);
const BATCH = 50;
const ROUNDS = Number(args[1] ?? 40);
const res = {};
for (const k of Object.keys(cb)) res[k] = { b: [], c: [], wb: [], wc: [] };
for (const k of Object.keys(cb))
  for (let i = 0; i < 200; i++) {
    cb[k]();
    cc[k]();
  }
// The two builds take turns going first (odd rounds: this one), so neither pays more often for the
// other's garbage or cache misses.
for (let r = 0; r < ROUNDS; r++)
  for (const k of Object.keys(cb)) {
    const pair = [
      [cb[k], res[k].b, res[k].wb],
      [cc[k], res[k].c, res[k].wc],
    ];
    if (r % 2 === 1) pair.reverse();
    for (const [fn, cpu, wall] of pair) {
      const batch = k === 'output stream' ? BATCH / 10 : BATCH;
      const c0 = process.cpuUsage();
      for (let i = 0; i < batch; i++) {
        const t0 = process.hrtime.bigint();
        fn();
        wall.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / batch);
    }
  }
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) * f)];
console.log(
  `µs per call, ${ROUNDS} interleaved batches of ${BATCH} (output stream: ${BATCH / 10}), base → new\n` +
    `(CPU: process.cpuUsage per batch, min and median over batches; wall: p50 and p99 over calls)`,
);
for (const [k, v] of Object.entries(res))
  console.log(
    `${k.padEnd(14)} CPU min ${q(v.b, 0).toFixed(0)} → ${q(v.c, 0).toFixed(0)}  median ${q(v.b, 0.5).toFixed(0)} → ${q(v.c, 0.5).toFixed(0)} (${(q(v.c, 0.5) / q(v.b, 0.5)).toFixed(2)}x)   wall p50 ${q(v.wb, 0.5).toFixed(0)} → ${q(v.wc, 0.5).toFixed(0)}  p99 ${q(v.wb, 0.99).toFixed(0)} → ${q(v.wc, 0.99).toFixed(0)}`,
  );
