// Sluice's injection classifier beside offline npm detectors and a keyword regex, measured in one
// run on the same texts:   npx tsx scripts/screening-baselines.mjs
//
//   - written held-out: data/screening/written-holdout.jsonl (hand-written for Sluice, 15
//     languages, obfuscations, hard negatives; never trained on — see train-screening.mjs);
//   - shared: ../shared/data/screening prompts_injection + prompts_benign. Sluice's shipped model
//     was trained on these rows, so its figure here is the 5-fold cross-validated one recorded
//     in the model file (out-of-fold scores); the baselines are not trained, so theirs is direct.
//
// llm-guard (npm) and @andersmyrmel/vard are pattern matchers shipped as code: no model, no
// download at run time (checked: no network calls in their dist/). Both run with their defaults;
// llm-guard with only its promptInjection and jailbreak guards (PII, toxicity and relevance off).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import vard from '@andersmyrmel/vard';
import { LLMGuard } from 'llm-guard';
import { shippedInjectionModel, shippedInjectionModelMeta } from '../src/core/screening/injection-model.ts';
import { scoreInjection } from '../src/core/screening/prompt-injection.ts';

const root = new URL('..', import.meta.url).pathname;
const shared = process.env.SLUICE_SCREENING_DATA ?? resolve(root, '..', 'shared', 'data', 'screening');
const jsonl = (f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

const KEYWORDS = [
  /ignore (all |the |your )?(previous|prior|above|earlier) (instructions|prompts|directions)/i,
  /disregard (all |the |your )?(previous|prior|above|earlier)/i,
  /forget (all |everything|your) ?(instructions|rules|above)?/i,
  /system prompt/i,
  /you are now/i,
  /\bDAN\b/,
  /jailbreak/i,
  /developer mode/i,
  /do anything now/i,
  /no (restrictions|limits|rules|filters)/i,
  /reveal (your|the) (instructions|prompt|system)/i,
  /bypass (your|the|all) (rules|filters|restrictions|safety)/i,
];

const model = shippedInjectionModel();
const guard = new LLMGuard({
  promptInjection: true,
  jailbreak: true,
  pii: false,
  profanity: false,
  toxicity: false,
  relevance: false,
});
const detectors = {
  'Sluice classifier (threshold 0.5)': async (t) => scoreInjection(model, t).score >= 0.5,
  'keyword regex': async (t) => KEYWORDS.some((re) => re.test(t)),
  '@andersmyrmel/vard (default)': async (t) => !vard.safe(t).safe,
  'llm-guard npm (injection + jailbreak)': async (t) => !(await guard.validate(t)).isValid,
};

async function measure(rows) {
  const out = {};
  for (const [name, fn] of Object.entries(detectors)) {
    // Warm up (JIT, Sluice's one-time weight decoding) before timing.
    for (const r of rows.slice(0, 50)) await fn(r.text);
    let tp = 0;
    let fp = 0;
    let pos = 0;
    let neg = 0;
    const t0 = process.hrtime.bigint();
    for (const r of rows) {
      const hit = await fn(r.text);
      if (r.y) {
        pos++;
        if (hit) tp++;
      } else {
        neg++;
        if (hit) fp++;
      }
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / rows.length;
    out[name] = { recall: tp / pos, fpr: fp / neg, us };
  }
  return out;
}

const holdout = jsonl(join(root, 'data', 'screening', 'written-holdout.jsonl')).map((r) => ({
  text: r.text,
  y: r.label === 'injection',
}));
const sharedRows = [
  ...jsonl(join(shared, 'prompts_injection.jsonl')).map((r) => ({ text: r.text, y: true })),
  ...jsonl(join(shared, 'prompts_benign.jsonl')).map((r) => ({ text: r.text, y: false })),
];
const h = await measure(holdout);
const s = await measure(sharedRows);
const cv = shippedInjectionModelMeta().cv ?? {};
const f = (x) => x.toFixed(3);
console.log(
  `written held-out: ${holdout.length} rows (${holdout.filter((r) => r.y).length} injection); shared: ${sharedRows.length} rows (${sharedRows.filter((r) => r.y).length} injection)\n`,
);
console.log(
  '| detector | held-out recall | held-out FPR | shared recall | shared FPR | µs / prompt (shared) |',
);
console.log('|---|---|---|---|---|---|');
for (const name of Object.keys(detectors)) {
  const ours = name.startsWith('Sluice');
  const sr = ours ? `${f(cv.sharedRecall)} (5-fold CV)` : f(s[name].recall);
  const sf = ours ? `${f(cv.sharedFpr)} (5-fold CV)` : f(s[name].fpr);
  console.log(
    `| ${name} | ${f(h[name].recall)} | ${f(h[name].fpr)} | ${sr} | ${sf} | ${s[name].us.toFixed(1)} |`,
  );
}
if (cv.sharedRecall !== undefined)
  console.log(
    `\n(Sluice on the shared rows it was trained on, for reference only: recall ${f(s['Sluice classifier (threshold 0.5)'].recall)}, FPR ${f(s['Sluice classifier (threshold 0.5)'].fpr)}.)`,
  );
