// The incremental output screener (src/core/screening/output.ts) skips the detectors on windows
// that cannot match and keeps its left context in a ring of code units instead of strings; none
// of that may change what goes out. This runs it and the screener as it was before
// (reference/output-reference.ts, a verbatim copy) side by side over many random chunkings of the
// shared screening data (when present), the snapshot texts, and synthetic answers with secrets and
// PII placed at random, split anywhere, under several policies: every push must emit the same
// text, cut at the same place and report the same findings, in the same order.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createOutputScreener, screenOutputText } from '../../../src/core/screening/output.js';
import { DEFAULT_SCREENING, type ScreeningSettings } from '../../../src/core/screening/policy.js';
import * as reference from './reference/output-reference.js';

const root = resolve(new URL('.', import.meta.url).pathname, '../../..');
const shared = process.env.SLUICE_SCREENING_DATA ?? resolve(root, '..', 'shared', 'data', 'screening');
const jsonl = (f: string): string[] =>
  existsSync(join(shared, f))
    ? readFileSync(join(shared, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l).text as string)
    : [];
const snapshot: string[] = JSON.parse(
  readFileSync(join(root, 'test/fixtures/screening-snapshot.json'), 'utf8'),
).map((r: { text: string }) => r.text);

let x = 20261207;
const rnd = (n: number) => {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  return Math.floor((x / 2 ** 32) * n);
};
const pick = <T>(a: ArrayLike<T>): T => a[rnd(a.length)]!;
const from = (chars: string, n: number) => Array.from({ length: n }, () => pick(chars)).join('');
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const digits = (n: number) => from('0123456789', n);
const hex = (n: number) => from('0123456789abcdef', n);

/** Secrets, PII and near misses, each a function so every use is a fresh value. */
const PLANTS: (() => string)[] = [
  () => `ghp_${from(ALNUM, 36)}`,
  () => `github_pat_${from(`${ALNUM}_`, 70)}`,
  () => `sk-proj-${from(ALNUM, 48)}`,
  () => `sk-${from(ALNUM, 48)}`,
  () => `sk-ant-api03-${from(`${ALNUM}_-`, 90)}`,
  () => `AKIA${from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
  () => `aws_secret_access_key = ${from(`${ALNUM}/+`, 40)}`,
  () => `xoxb-${digits(11)}-${digits(12)}-${from(ALNUM, 24)}`,
  () => `sk_live_${from(ALNUM, 24)}`,
  () => `AIza${from(`${ALNUM}_-`, 35)}`,
  () => `hf_${from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 34)}`,
  () => `npm_${from(ALNUM, 36)}`,
  () => `SK${hex(32)}`,
  () => `${from('MNO', 1)}${from(ALNUM, 23)}.${from(ALNUM, 6)}.${from(ALNUM, 27)}`,
  () => `eyJ${from(ALNUM, 20)}.eyJ${from(ALNUM, 30)}.${from(`${ALNUM}_-`, 30)}`,
  () => `postgres://admin:${from(ALNUM, 14)}@db.internal:5432/app`,
  () => `Authorization: Bearer ${from(`${ALNUM}.-_`, 40)}`,
  () => `password: ${from(ALNUM, 14)}`,
  () => `api_key="${from(ALNUM, 24)}"`,
  () => `token is ${from(ALNUM, 18)}`,
  () => `curl -u admin:${from(ALNUM, 12)} https://x`,
  () =>
    `-----BEGIN RSA PRIVATE KEY-----\n${from(`${ALNUM}+/`, 64)}\n${from(`${ALNUM}+/`, 40)}\n-----END RSA PRIVATE KEY-----`,
  () => '-----BEGIN OPENSSH PRIVATE KEY-----',
  () => `${from('abcdefghij', 6)}.${from('klmnop', 4)}@example.${pick(['com', 'org', 'co.uk'])}`,
  () => pick(['4111 1111 1111 1111', '4111-1111-1111-1111', '5500 0000 0000 0004', '4012888888881881']),
  () => pick(['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'FR1420041010050500013M02606']),
  () => pick(['078-05-1120', '123-45-6789', '219 09 9999']),
  () => pick(['+44 20 7946 0958', '(555) 123-4567', '555-123-4567', '06 12 34 56 78', 'call 2025550123']),
  () => pick(['192.168.1.20', '10.0.0.1/24', '2001:db8::8a2e:370:7334', 'fe80::1', 'version 1.2.3.4']),
  () => pick(['AB 12 34 56 C', 'QQ123456C']),
  () => pick(['YOUR_API_KEY', 'sk-xxxxxxxxxxxxxxxxxxxx', 'password: changeme', 'AKIAIOSFODNN7EXAMPLE']),
  () => pick(['\u212Aey: ', 'to\u212Aen ', '\u0130', 'ſecret', 'ＡＫＩＡ']),
  () => digits(1 + rnd(20)),
  () => from(`${ALNUM}_-`, 15 + rnd(30)),
  () => pick(['forbidden', 'FORBIDDEN word', 'passphrase', 'forbid', 'sluice-canary-0011223344556677']),
];
const WORDS =
  'the a of to and in is it you that for on with as was are this be at or key auth token secret monkey'.split(
    ' ',
  );
const SEPS = [' ', ' ', ' ', '\n', ', ', '. ', ': ', '\t', '  ', '\n\n', '"', "'", '(', ')', '='];

function synthetic(): string {
  let s = '';
  const n = 3 + rnd(25);
  for (let i = 0; i < n; i++) {
    s += rnd(4) === 0 ? pick(PLANTS)() : pick(WORDS);
    s += pick(SEPS);
  }
  return s;
}

/** Split `text` at random points; `max` bounds a chunk's length. */
function chunks(text: string, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + rnd(max);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

type Screener = ReturnType<typeof createOutputScreener>;
type Make = (s: ScreeningSettings, o: { canaries?: string[] }) => Screener;

/** Every push's result, then the flush, the cut and the findings. */
/**
 * Every push's result, then the flush, the cut and the findings. `flushAt` lists pushes after
 * which the answer is flushed mid-way (as the stream transform does before a lifecycle event) and
 * then goes on.
 */
function trace(
  make: Make,
  parts: string[],
  s: ScreeningSettings,
  canaries?: string[],
  flushAt: ReadonlySet<number> = new Set(),
) {
  const sc = make(s, { canaries });
  const steps: unknown[] = [];
  for (const [i, p] of parts.entries()) {
    const r = sc.push(p);
    steps.push(r);
    if (r.cut) break;
    if (flushAt.has(i)) {
      steps.push({ flush: sc.flush() });
      if (sc.cut) break;
    }
  }
  if (!sc.cut) steps.push({ flush: sc.flush() });
  return { steps, cut: sc.cut, found: [...sc.found] };
}

const withOutput = (o: Partial<ScreeningSettings['output']>, kinds?: string[]): ScreeningSettings => ({
  ...DEFAULT_SCREENING,
  pii: kinds ? { ...DEFAULT_SCREENING.pii, kinds } : DEFAULT_SCREENING.pii,
  output: { ...DEFAULT_SCREENING.output, ...o },
});
const POLICIES: [string, ScreeningSettings, string[]?][] = [
  ['defaults (secrets redact)', DEFAULT_SCREENING],
  ['secrets and pii redact', withOutput({ pii: 'redact' })],
  ['secrets block', withOutput({ secrets: 'block' })],
  ['pii block, secrets off', withOutput({ secrets: 'off', pii: 'block' })],
  ['secrets and pii flag', withOutput({ secrets: 'flag', pii: 'flag' })],
  ['pii redact (email, card), secrets off', withOutput({ secrets: 'off', pii: 'redact' }, ['email', 'card'])],
  ['deny list', withOutput({ deny: ['forbidden', '/pass\\w+/'] })],
  ['canary', DEFAULT_SCREENING, ['sluice-canary-0011223344556677']],
];

const data = [
  ...jsonl('pii.jsonl'),
  ...jsonl('prompts_benign.jsonl'),
  ...jsonl('prompts_injection.jsonl'),
  ...snapshot,
];
const synth = Array.from({ length: 1000 }, synthetic);

/**
 * CI runs a sample: half the synthetic texts and a sixth of the data per policy (each text is
 * checked under some policy); `SLUICE_OUTPUT_DIFF=full` checks every text under every policy
 * (minutes). The reference is slow on long texts in tiny chunks (it re-reads its window per delta),
 * so 1-3 character chunks are used on data texts under 600 characters only.
 */
const full = process.env.SLUICE_OUTPUT_DIFF === 'full';

describe('output screener against the reference copy', () => {
  for (const [pi, [name, s, canaries]] of POLICIES.entries())
    it(`same pushes, cut and findings on random chunkings: ${name}`, () => {
      let compared = 0;
      // Synthetic texts in chunks of 1-3, 1-12 and 1-60 characters; data texts in one random
      // chunking each (1-3 characters for some, else 1-12 or 1-80) and whole (`screenOutputText`).
      const cases: [string, number][] = [];
      for (let i = 0; i < synth.length; i++)
        if (full || i % 2 === pi % 2) for (const max of [3, 12, 60]) cases.push([synth[i]!, max]);
      const mine = data.filter((_, i) => full || i % 6 === pi % 6);
      for (const [i, t] of mine.entries())
        cases.push([t, i % 17 === 0 && t.length < 600 ? 3 : pick([12, 80])]);
      for (const [n, [text, max]] of cases.entries()) {
        const parts = chunks(text, max);
        // One case in four is flushed mid-way after some pushes and goes on.
        const flushAt = new Set(n % 4 === 0 ? parts.map((_, i) => i).filter(() => rnd(6) === 0) : []);
        const want = trace(reference.createOutputScreener as Make, parts, s, canaries, flushAt);
        const got = trace(createOutputScreener as Make, parts, s, canaries, flushAt);
        if (JSON.stringify(got) !== JSON.stringify(want))
          expect({ text, parts, got }).toEqual({ text, parts, got: want });
        compared++;
      }
      for (const text of mine) {
        const o = { canaries };
        expect(screenOutputText(text, s, o)).toEqual(reference.screenOutputText(text, s, o));
      }
      expect(compared).toBeGreaterThan(2000);
    }, 180_000);

  it('same on a long answer in 12-character deltas, secrets planted every few hundred characters', {
    timeout: 180_000,
  }, () => {
    let text = '';
    while (text.length < 20_000) text += `${synthetic()} ${data.length > 0 ? pick(data).slice(0, 300) : ''} `;
    for (const [, s, canaries] of POLICIES) {
      const parts = text.match(/[\s\S]{1,12}/g)!;
      expect(trace(createOutputScreener as Make, parts, s, canaries)).toEqual(
        trace(reference.createOutputScreener as Make, parts, s, canaries),
      );
    }
  });
});
