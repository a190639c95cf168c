// bench/screening.mjs in N fresh processes, and the median of their figures. One process gives
// one draw of V8's state (what it compiled, when, with which feedback; the heap's layout), and
// before 2026-12-07 one process in four ran `screenRequest` 40 % slower (a deopt loop: see the
// note on OSR above `census` in src/core/screening/census.ts), so a single run's p99 says little.
// Every call is still timed on its own, inside each process, exactly as bench/screening.mjs does;
// this only runs it several times and reports each run and the medians.
//   node bench/screening-processes.mjs [--runs=8] [--base=DIR] [--row=NAME] [ARGS for screening.mjs]
// `--base=DIR`: another checkout (with node_modules) whose bench/screening.mjs runs alternately
// with this one's (A B A B ...), so both see the same machine load; figures side by side.
// `--row`: the row reported (default `all (screenRequest)`); ARGS go to every run (e.g. --only=all).
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const runs = Number(opt('runs', 8));
const base = opt('base', null);
const row = opt('row', 'all (screenRequest)');
const pass = args.filter((a) => !/^--(runs|base|row)=/.test(a));
const here = resolve(import.meta.dirname, '..');

function once(dir) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/screening.mjs', ...pass], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 600_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`no BENCH_JSON from ${dir}:\n${r.stdout}\n${r.stderr}`);
  const res = JSON.parse(line.slice(11)).screening[row];
  if (!res) throw new Error(`no row "${row}" in ${dir}'s output`);
  return res;
}

const sides = base
  ? [
      ['base', resolve(base)],
      ['this', here],
    ]
  : [['this', here]];
const got = Object.fromEntries(sides.map(([k]) => [k, []]));
for (let i = 0; i < runs; i++)
  for (const [k, dir] of sides) {
    const r = once(dir);
    got[k].push(r);
    console.log(
      `run ${i + 1} ${k.padEnd(4)}  p50 ${r.p50.toFixed(1).padStart(6)}  p99 ${r.p99.toFixed(1).padStart(7)}  cpu ${r.cpu.toFixed(1).padStart(6)}`,
    );
  }
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
console.log(`\n${row}, ${runs} processes each (µs; median over processes, and the worst)`);
console.log('| build | p50 | p99 | cpu (mean) | worst p50 | worst p99 | p99 ≤ 200 | p99 ≤ 170 |');
console.log('|---|---|---|---|---|---|---|---|');
const summary = {};
for (const [k] of sides) {
  const xs = got[k];
  const s = {
    p50: median(xs.map((r) => r.p50)),
    p99: median(xs.map((r) => r.p99)),
    cpu: median(xs.map((r) => r.cpu)),
    worstP50: Math.max(...xs.map((r) => r.p50)),
    worstP99: Math.max(...xs.map((r) => r.p99)),
    under200: xs.filter((r) => r.p99 <= 200).length,
    under170: xs.filter((r) => r.p99 <= 170).length,
    runs: xs,
  };
  summary[k] = s;
  console.log(
    `| ${k} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.cpu.toFixed(1)} | ${s.worstP50.toFixed(1)} | ${s.worstP99.toFixed(1)} | ${s.under200}/${runs} | ${s.under170}/${runs} |`,
  );
}
console.log(`BENCH_JSON ${JSON.stringify({ screeningProcesses: { row, runs, ...summary } })}`);
