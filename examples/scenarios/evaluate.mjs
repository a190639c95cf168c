// Runs every scenario family for the given seeds through `sluice simulate`'s engine (the real
// pipeline, default policy) and prints the issue's three figures per family and overall.
// Run after `node scripts/build.mjs`:  node examples/scenarios/evaluate.mjs SEED [SEED...] [--duration S]
import { parseTrace, runSimulation } from '../../dist/abuse/simulator.js';
import { parseConfig } from '../../dist/config/load.js';
import { DEFAULT_SOURCE, resolveConfig } from '../../dist/config/resolve.js';
import { evaluate, FAMILIES as OWN_FAMILIES, generate as ownGenerate } from './generate.mjs';
import { wireVariant } from './wire-variants.mjs';

const args = process.argv.slice(2);
// --generator FILE: another module exporting FAMILIES and generate(family, seed, { duration })
// with the same { text, actors } result (e.g. independent/generate.mjs, written without reading
// the detectors); scored the same way.
const gi = args.indexOf('--generator');
const generatorModule = gi >= 0 ? await import(new URL(args.splice(gi, 2)[1], `file://${process.cwd()}/`).href) : null;
const FAMILIES = generatorModule?.FAMILIES ?? OWN_FAMILIES;
const generate = generatorModule?.generate ?? ownGenerate;
const di = args.indexOf('--duration');
// (another generator keeps its own default duration)
const duration = di >= 0 ? Number(args.splice(di, 2)[1]) : generatorModule ? undefined : 900;
// --wire messages=0.5,stream=0.5: that share of chat requests sent as /v1/messages, streamed.
const wi = args.indexOf('--wire');
const wire = wi >= 0 ? Object.fromEntries(args.splice(wi, 2)[1].split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)])) : null;
// --config FILE: a policy file instead of the built-in default (e.g. with generous static limits).
const ci = args.indexOf('--config');
const configFile = ci >= 0 ? args.splice(ci, 2)[1] : null;
const fi = args.indexOf('--family');
const families = fi >= 0 ? args.splice(fi, 2)[1].split(',') : FAMILIES;
// Seeds as separate arguments or comma-separated; anything else is refused (a NaN seed made
// degenerate traces whose figures looked real).
const seeds = args.flatMap((a) => a.split(',')).map(Number);
if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s))) {
  process.stderr.write('usage: evaluate.mjs SEED [SEED...] [--duration S] [--family F,F] [--wire messages=0.5,stream=0.5] [--config FILE] [--generator FILE]  (seeds are integers)\n');
  process.exit(2);
}
const unknown = families.filter((f) => !FAMILIES.includes(f));
if (unknown.length > 0) {
  process.stderr.write(`unknown family ${unknown.join(', ')}; families: ${FAMILIES.join(', ')}\n`);
  process.exit(2);
}
let abusive = 0;
let caught = 0;
let legit = 0;
let touched = 0;
let flaggedLegit = 0;
let requests = 0;
let cpu = 0;
const times = [];
for (const seed of seeds)
  for (const family of families) {
    const { text, actors } = generate(family, seed, { duration });
    const trace = parseTrace(wire ? wireVariant(text, wire) : text);
    const c0 = process.cpuUsage();
    const r = await runSimulation({
      trace,
      traceName: family,
      source: configFile
        ? resolveConfig({ config: configFile })
        : { file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) },
      seed: 1,
    });
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
    requests += trace.requests.length;
    const e = evaluate(actors, r.report, r.decisions.map((l) => JSON.parse(l)), trace.requests);
    abusive += e.abusive;
    caught += e.caught;
    legit += e.legit;
    touched += e.legitTouched;
    flaggedLegit += e.flaggedLegit.length;
    times.push(...e.times);
    const flags = r.report.actions.filter((a) => a.action === 'flag').length;
    console.log(
      `seed ${seed} ${family}: caught ${e.caught}/${e.abusive}, p95 ${e.p95 === null ? '-' : e.p95.toFixed(1)} s, legit touched ${e.legitTouched}/${e.legit}, legit flagged ${e.flaggedLegit.length}, flags ${flags}, ${trace.requests.length} requests ${e.missed.join(' ')} ${e.touchedLegit.join(' ')} ${e.flaggedLegit.map((n) => `flagged:${n}`).join(' ')}`,
    );
  }
times.sort((a, b) => a - b);
const p95 = times.length ? times[Math.ceil(times.length * 0.95) - 1] : null;
// The p95 above is over caught actors, so missing a slow one lowers it. Over every abusive actor,
// one not caught within 120 s counting as never caught ("-" when the 95th percentile is such a one):
const all = [...times, ...Array(Math.max(0, abusive - times.length)).fill(Number.POSITIVE_INFINITY)];
const p95All = abusive ? all[Math.ceil(abusive * 0.95) - 1] : null;
const p95AllText = Number.isFinite(p95All) ? `${p95All.toFixed(1)} s` : '-';
console.log(
  `ALL seeds ${seeds.join(',')}: caught ${caught}/${abusive} (${((caught / abusive) * 100).toFixed(1)}%), p95 ${p95?.toFixed(1)} s (of all abusive actors, a miss as never: ${p95AllText}), legit touched ${touched}/${legit} (${((touched / legit) * 100).toFixed(2)}%), legit flagged ${flaggedLegit}/${legit}; ${requests} requests, ${(requests / cpu).toFixed(0)} requests per CPU-second`,
);
