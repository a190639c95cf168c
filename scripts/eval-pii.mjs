// Per-kind detection figures of the secret and PII detectors on the shared pii.jsonl
// (row level: a row counts for kind K when its labels include K; a detection when the detector
// reports K anywhere in the row).   npx tsx scripts/eval-pii.mjs [--misses KIND]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { detectPii } from '../src/core/screening/pii.ts';
import { detectSecrets } from '../src/core/screening/secrets.ts';

const root = new URL('..', import.meta.url).pathname;
const shared = process.env.SLUICE_SCREENING_DATA ?? resolve(root, '..', 'shared', 'data', 'screening');
const rows = readFileSync(join(shared, 'pii.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const KINDS = {
  email: 'email',
  phone: 'phone',
  credit_card: 'card',
  iban: 'iban',
  us_ssn: 'ssn',
  ip_address: 'ip',
  uk_nino: 'nino',
  secret: 'secret',
};
const showMisses = process.argv.includes('--misses')
  ? process.argv[process.argv.indexOf('--misses') + 1]
  : null;
const stats = {};
const all = { tp: 0, fp: 0, fn: 0 };
for (const r of rows) {
  const found = new Set(detectPii(r.text).map((f) => f.kind));
  if (detectSecrets(r.text).length > 0) found.add('secret');
  for (const [label, kind] of Object.entries(KINDS)) {
    stats[kind] ??= { tp: 0, fp: 0, fn: 0, pos: 0 };
    const s = stats[kind];
    const truth = r.kinds.includes(label);
    const got = found.has(kind);
    if (truth) s.pos++;
    if (truth && got) s.tp++;
    else if (got) s.fp++;
    else if (truth) s.fn++;
    if (showMisses === kind && truth !== got)
      console.log(`${truth ? 'FN' : 'FP'} ${JSON.stringify(r.text.slice(0, 160))} ${r.source.slice(-45)}`);
  }
  const truthAny = r.kinds.some((k) => k in KINDS);
  const gotAny = found.size > 0;
  if (truthAny && gotAny) all.tp++;
  else if (gotAny) all.fp++;
  else if (truthAny) all.fn++;
}
const f = (s) => {
  const p = s.tp / (s.tp + s.fp || 1);
  const r = s.tp / (s.tp + s.fn || 1);
  return { p, r, f1: (2 * p * r) / (p + r || 1) };
};
console.log(`pii.jsonl: ${rows.length} rows; row-level precision / recall / F1 per kind`);
console.log('| kind | rows | precision | recall | F1 |\n|---|---|---|---|---|');
for (const [k, s] of Object.entries(stats)) {
  const m = f(s);
  console.log(`| ${k} | ${s.pos} | ${m.p.toFixed(3)} | ${m.r.toFixed(3)} | ${m.f1.toFixed(3)} |`);
}
const m = f(all);
console.log(
  `| any structured kind | ${all.tp + all.fn} | ${m.p.toFixed(3)} | ${m.r.toFixed(3)} | ${m.f1.toFixed(3)} |`,
);
