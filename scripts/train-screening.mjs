// Trains the prompt-injection classifier shipped in src/core/screening/model/injection-model.json.
//
//   npm run train:screening            (tsx scripts/train-screening.mjs)
//   SLUICE_SCREENING_DATA=/path/to/shared/data/screening npm run train:screening
//
// Data: the shared labelled sets (prompts_injection.jsonl, prompts_benign.jsonl; see their README)
// plus the text written for Sluice in data/screening/src/*.txt (`I|lang|text` or `B|lang|text`).
// A fixed 30 % of the written rows (chosen by a hash of the text) is HELD OUT: never trained on,
// scored only by the final model, so the figure printed for it estimates generalisation to
// hand-written, multilingual text honestly.
//
// Method: logistic regression (AdaGrad SGD, L2, class-balanced) over the hashed features of
// src/core/screening/injection-features.ts; 5-fold stratified cross-validation on the training
// rows; threshold = the lowest CV margin whose false-positive rate is <= 2 % on all training rows
// AND <= 4 % on the written rows alone (hand-written, multilingual hard negatives: the kind of text
// a held-out set of hand-written prompts is made of; the shared benign rows are far easier and
// would otherwise set the threshold alone); the final model is trained on all training rows and
// its bias shifted so that threshold is probability 0.5.
// Deterministic: a seeded PRNG orders everything, so two runs write the same file.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mulberry32 } from '../src/core/prng.ts';
import { FEATURE_BITS, featureList, LENGTH_PRIOR } from '../src/core/screening/injection-features.ts';
import { normalise } from '../src/core/screening/normalise.ts';
import {
  decodeInjectionModel,
  encodeInjectionModel,
  scoreInjection,
} from '../src/core/screening/prompt-injection.ts';

const root = new URL('..', import.meta.url).pathname;
const shared = process.env.SLUICE_SCREENING_DATA ?? resolve(root, '..', 'shared', 'data', 'screening');
const SEED = 12;
const FOLDS = 5;
const EPOCHS = 12;
const LR = 0.4;
const L2 = 1e-6;
const TARGET_FPR = 0.02;
/** Largest CV false-positive rate allowed on the written rows alone (see the header). */
const TARGET_WRITTEN_FPR = 0.04;
const HOLDOUT_SHARE = 0.3;
/** Written rows count this many times: they are the closest to hand-written, multilingual traffic. */
const WRITTEN_WEIGHT = 3;

function shuffle(arr, rnd) {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
  return arr;
}
function fnv(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
const jsonl = (f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

// ---------- data ----------
const rows = [];
for (const r of jsonl(join(shared, 'prompts_injection.jsonl')))
  rows.push({ text: r.text, y: 1, source: r.source.split(':')[0].split('@')[0], lang: 'en', set: 'shared' });
for (const r of jsonl(join(shared, 'prompts_benign.jsonl')))
  rows.push({ text: r.text, y: 0, source: r.source.split(':')[0].split('@')[0], lang: 'en', set: 'shared' });
const writtenDir = join(root, 'data', 'screening', 'src');
const holdout = [];
for (const f of readdirSync(writtenDir)
  .filter((f) => f.endsWith('.txt'))
  .sort()) {
  for (const line of readFileSync(join(writtenDir, f), 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [lab, lang, ...rest] = line.split('|');
    const text = rest.join('|').replace(/\\n/g, '\n');
    const row = { text, y: lab === 'I' ? 1 : 0, source: `sluice:${f}`, lang, set: 'written' };
    if ((fnv(text) % 1000) / 1000 < HOLDOUT_SHARE) holdout.push(row);
    else rows.push(row);
  }
}
writeFileSync(
  join(root, 'data', 'screening', 'written-holdout.jsonl'),
  holdout
    .map((r) => JSON.stringify({ text: r.text, label: r.y ? 'injection' : 'benign', lang: r.lang }))
    .join('\n') + '\n',
);
console.log(
  `data: ${rows.length} training rows (${rows.filter((r) => r.y).length} injection), ` +
    `${rows.filter((r) => r.set === 'written').length} of them written for Sluice; ` +
    `${holdout.length} written rows held out (${holdout.filter((r) => r.y).length} injection)`,
);

// ---------- features ----------
const D = 1 << FEATURE_BITS;
const feats = rows.map((r) => featureList(normalise(r.text).text));

function train(idx, seed) {
  const w = new Float64Array(D);
  const g2 = new Float64Array(D).fill(1e-8);
  let b = 0;
  let gb = 1e-8;
  const rw = (i) => (rows[i].set === 'written' ? WRITTEN_WEIGHT : 1);
  let pos = 0;
  let neg = 0;
  for (const i of idx) {
    if (rows[i].y === 1) pos += rw(i);
    else neg += rw(i);
  }
  const cw = [(pos + neg) / (2 * neg), (pos + neg) / (2 * pos)];
  const rnd = mulberry32(seed);
  const order = idx.slice();
  for (let e = 0; e < EPOCHS; e++) {
    shuffle(order, rnd);
    for (const i of order) {
      const x = feats[i];
      const v = 1 / Math.sqrt(x.length + LENGTH_PRIOR);
      let z = b;
      for (let k = 0; k < x.length; k++) z += w[x[k]] * v;
      const p = 1 / (1 + Math.exp(-z));
      const g = (p - rows[i].y) * cw[rows[i].y] * rw(i);
      for (let k = 0; k < x.length; k++) {
        const j = x[k];
        const gr = g * v + L2 * w[j];
        g2[j] += gr * gr;
        w[j] -= (LR * gr) / Math.sqrt(g2[j]);
      }
      gb += g * g;
      b -= (LR * g) / Math.sqrt(gb);
    }
  }
  return { bits: FEATURE_BITS, bias: b, weights: Float32Array.from(w) };
}

/** Scores through the same function the gateway uses (normalisation, windows and probes included). */
const marginOf = (model, text) => {
  const s = scoreInjection(model, text).score;
  return Math.log(Math.max(s, 1e-12) / Math.max(1 - s, 1e-12));
};

// ---------- cross-validation ----------
const rnd = mulberry32(SEED);
const foldOf = new Array(rows.length);
for (const y of [0, 1]) {
  const ids = shuffle(
    rows.map((r, i) => (r.y === y ? i : -1)).filter((i) => i >= 0),
    rnd,
  );
  ids.forEach((i, k) => {
    foldOf[i] = k % FOLDS;
  });
}
const oof = new Float64Array(rows.length);
for (let f = 0; f < FOLDS; f++) {
  const trainIdx = rows.map((_, i) => i).filter((i) => foldOf[i] !== f);
  const m = train(trainIdx, SEED + f);
  for (let i = 0; i < rows.length; i++) if (foldOf[i] === f) oof[i] = marginOf(m, rows[i].text);
}

function rates(scores, labels, thr) {
  let tp = 0;
  let fp = 0;
  let pos = 0;
  let neg = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i]) {
      pos++;
      if (scores[i] >= thr) tp++;
    } else {
      neg++;
      if (scores[i] >= thr) fp++;
    }
  }
  return { recall: pos ? tp / pos : 0, fpr: neg ? fp / neg : 0, tp, fp, pos, neg };
}
function auc(scores, labels) {
  const idx = [...scores.keys()].sort((a, b) => scores[a] - scores[b]);
  let rank = 0;
  let sumPos = 0;
  let pos = 0;
  for (const i of idx) {
    rank++;
    if (labels[i]) {
      sumPos += rank;
      pos++;
    }
  }
  const neg = scores.length - pos;
  return (sumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}
const labels = rows.map((r) => r.y);
const negScores = [...oof].filter((_, i) => !labels[i]).sort((a, b) => b - a);
// Lowest threshold whose CV false-positive rate is <= TARGET_FPR overall and <= TARGET_WRITTEN_FPR
// on the written rows.
const allowedFp = Math.floor(TARGET_FPR * negScores.length);
const writtenNeg = rows
  .map((r, i) => (r.set === 'written' && !r.y ? oof[i] : null))
  .filter((x) => x !== null)
  .sort((a, b) => b - a);
const threshold = Math.max(
  negScores[allowedFp] + 1e-9,
  writtenNeg[Math.floor(TARGET_WRITTEN_FPR * writtenNeg.length)] + 1e-9,
);
const cv = rates(oof, labels, threshold);
const sharedIdx = rows.map((r, i) => (r.set === 'shared' ? i : -1)).filter((i) => i >= 0);
const cvShared = rates(
  sharedIdx.map((i) => oof[i]),
  sharedIdx.map((i) => labels[i]),
  threshold,
);
const writtenIdx = rows.map((r, i) => (r.set === 'written' ? i : -1)).filter((i) => i >= 0);
const cvWritten = rates(
  writtenIdx.map((i) => oof[i]),
  writtenIdx.map((i) => labels[i]),
  threshold,
);
const fmt = (x) => x.toFixed(3);
console.log(`\n${FOLDS}-fold cross-validation (out-of-fold scores, same scoring path as the gateway)`);
console.log(
  `  AUC ${fmt(auc(oof, labels))}; threshold (margin) ${threshold.toFixed(3)} chosen for FPR <= ${TARGET_FPR} overall, <= ${TARGET_WRITTEN_FPR} on written rows`,
);
console.log(
  `  all training rows : recall ${fmt(cv.recall)} (${cv.tp}/${cv.pos})  FPR ${fmt(cv.fpr)} (${cv.fp}/${cv.neg})`,
);
console.log(
  `  shared data only  : recall ${fmt(cvShared.recall)} (${cvShared.tp}/${cvShared.pos})  FPR ${fmt(cvShared.fpr)} (${cvShared.fp}/${cvShared.neg})`,
);
console.log(
  `  written rows only : recall ${fmt(cvWritten.recall)} (${cvWritten.tp}/${cvWritten.pos})  FPR ${fmt(cvWritten.fpr)} (${cvWritten.fp}/${cvWritten.neg})`,
);
const bySource = new Map();
rows.forEach((r, i) => {
  const k = `${r.y ? 'inj' : 'ben'} ${r.source}`;
  const s = bySource.get(k) ?? { n: 0, hit: 0 };
  s.n++;
  if (oof[i] >= threshold) s.hit++;
  bySource.set(k, s);
});
console.log('  per source (benign: false positives; injection: detected):');
for (const [k, s] of [...bySource].sort()) console.log(`    ${k.padEnd(58)} ${s.hit}/${s.n}`);

// ---------- final model ----------
const final = train(
  rows.map((_, i) => i),
  SEED + 100,
);
final.bias -= threshold;
const trainedAt = { rows: rows.length, holdout: holdout.length, seed: SEED, epochs: EPOCHS, folds: FOLDS };
const file = encodeInjectionModel(final, {
  trainedAt,
  cv: {
    recall: cv.recall,
    fpr: cv.fpr,
    sharedRecall: cvShared.recall,
    sharedFpr: cvShared.fpr,
    writtenRecall: cvWritten.recall,
    writtenFpr: cvWritten.fpr,
  },
});
const shipped = decodeInjectionModel(file);
const hs = holdout.map((r) => scoreInjection(shipped, r.text).score);
const hl = holdout.map((r) => r.y);
const h = rates(hs, hl, 0.5);
console.log(`\nwritten held-out set, final quantised model, default threshold 0.5:`);
console.log(
  `  recall ${fmt(h.recall)} (${h.tp}/${h.pos})  FPR ${fmt(h.fpr)} (${h.fp}/${h.neg})  AUC ${fmt(auc(hs, hl))}`,
);
console.log(
  '  other thresholds: ' +
    [0.3, 0.4, 0.6, 0.7, 0.8]
      .map((t) => {
        const r = rates(hs, hl, t);
        return `${t}: recall ${fmt(r.recall)} FPR ${fmt(r.fpr)}`;
      })
      .join('; '),
);
const byLang = new Map();
holdout.forEach((r, i) => {
  const s = byLang.get(r.lang) ?? { tp: 0, pos: 0, fp: 0, neg: 0 };
  if (r.y) {
    s.pos++;
    if (hs[i] >= 0.5) s.tp++;
  } else {
    s.neg++;
    if (hs[i] >= 0.5) s.fp++;
  }
  byLang.set(r.lang, s);
});
console.log(
  '  per language (detected/injections, false positives/benign): ' +
    [...byLang]
      .sort()
      .map(([l, s]) => `${l} ${s.tp}/${s.pos} ${s.fp}/${s.neg}`)
      .join(', '),
);
if (process.env.SHOW_MISSES === '1')
  holdout.forEach((r, i) => {
    if (hs[i] >= 0.5 !== (r.y === 1))
      console.log(`  miss ${r.y ? 'FN' : 'FP'} ${hs[i].toFixed(2)} ${r.text.slice(0, 100)}`);
  });
file.meta.holdout = { recall: h.recall, fpr: h.fpr };
// A TypeScript module rather than a .json file: it is imported like any other module (no file
// read at run time, no import attributes for the build to keep), and esbuild copies it to dist.
const out = join(root, 'src', 'core', 'screening', 'model', 'injection-model.ts');
writeFileSync(
  out,
  `// Generated by scripts/train-screening.mjs (npm run train:screening); do not edit by hand.\n` +
    `import type { InjectionModelFile } from '../prompt-injection.js';\n\n` +
    `const model: InjectionModelFile = ${JSON.stringify(file, null, 2)};\n\nexport default model;\n`,
);
execFileSync(join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', out], { stdio: 'ignore' });
console.log(`\nwrote ${out} (${(JSON.stringify(file).length / 1024).toFixed(0)} KiB)`);
