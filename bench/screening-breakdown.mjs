// Where the time goes for the bench's 4 kB prompt: CPU µs per call of each screening step, the
// minimum over interleaved batches (process.cpuUsage), so other processes on a loaded machine
// inflate it least.   npx tsx bench/screening-breakdown.mjs [ROUNDS]
import { census } from '../src/core/screening/census.ts';
import { shippedInjectionModel } from '../src/core/screening/injection-model.ts';
import { normalise } from '../src/core/screening/normalise.ts';
import { detectPii, PII_KINDS } from '../src/core/screening/pii.ts';
import { DEFAULT_SCREENING } from '../src/core/screening/policy.ts';
import { injectionMargins, scoreInjection } from '../src/core/screening/prompt-injection.ts';
import { screenRequest } from '../src/core/screening/request.ts';
import { detectSecrets, hintsIn, SECRET_RULES } from '../src/core/screening/secrets.ts';
import { benchPrompt } from './screening-prompt.mjs';

const prompt = benchPrompt();
const body = {
  model: 'm',
  messages: [
    { role: 'system', content: 'You are a careful reviewer.' },
    { role: 'user', content: prompt },
  ],
};
const model = shippedInjectionModel();
const nt = normalise(prompt).text;
const pre = census(prompt);
const cases = {
  'all (screenRequest)': () => screenRequest('chat', body, DEFAULT_SCREENING),
  'injection (normalise included)': () => scoreInjection(model, prompt),
  census: () => census(prompt),
  'normalise (census given)': () => normalise(prompt, pre),
  'secrets (census given)': () => detectSecrets(prompt, { census: pre }),
  'pii (census given)': () => detectPii(prompt, undefined, { census: pre }),
  normalise: () => normalise(prompt),
  'secrets (ungated)': () => detectSecrets(prompt, { gates: false }),
  'pii (ungated)': () => detectPii(prompt, undefined, { gates: false }),
  'classifier pass (injectionMargins)': () => injectionMargins(model, nt),
  'secrets (all)': () => detectSecrets(prompt),
  'secrets: hint pre-scan': () => hintsIn(prompt.toLowerCase()),
  'pii (all)': () => detectPii(prompt),
};
for (const k of PII_KINDS) cases[`pii ungated: ${k}`] = () => detectPii(prompt, [k], { gates: false });
const lower = prompt.toLowerCase();
const hints = hintsIn(lower);
for (const r of SECRET_RULES) {
  if (r.hint && !r.hint.some((h) => hints.has(h))) continue;
  const key = `secret rule (ungated) ${r.kind}${cases[`secret rule (ungated) ${r.kind}`] ? ' #2' : ''}`;
  cases[key] = () => {
    r.re.lastIndex = 0;
    for (const _ of prompt.matchAll(r.re));
  };
}
const ROUNDS = Number(process.argv[2] ?? 20);
const BATCH = 50;
const res = Object.fromEntries(Object.keys(cases).map((k) => [k, Number.POSITIVE_INFINITY]));
for (const fn of Object.values(cases)) for (let i = 0; i < 200; i++) fn();
for (let r = 0; r < ROUNDS; r++)
  for (const [k, fn] of Object.entries(cases)) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < BATCH; i++) fn();
    const c = process.cpuUsage(c0);
    res[k] = Math.min(res[k], (c.user + c.system) / BATCH);
  }
console.log(`CPU µs per call (min of ${ROUNDS} batches of ${BATCH}), ${prompt.length}-char prompt`);
for (const [k, v] of Object.entries(res)) console.log(`| ${k} | ${v.toFixed(1)} |`);
