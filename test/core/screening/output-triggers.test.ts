// The output screener skips the detectors on a window without a trigger (output.ts,
// `hasTrigger`). That is only right while every secret and PII finding needs one: this checks
// that no text without a trigger has a finding, on the shared screening data, the snapshot texts,
// 140-character windows cut from them at random (the screener's windows are slices, which can
// turn a look-behind from failing to passing), and random text built from secrets, PII and the
// trigger words themselves. If a detector gains a pattern without a trigger, this fails.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENERIC_KEYS, hasTrigger } from '../../../src/core/screening/output.js';
import { detectPii, PII_KINDS } from '../../../src/core/screening/pii.js';
import { detectSecrets, SECRET_HINTS } from '../../../src/core/screening/secrets.js';

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

let x = 977;
const rnd = (n: number) => {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  return Math.floor((x / 2 ** 32) * n);
};
const pick = <T>(a: ArrayLike<T>): T => a[rnd(a.length)]!;
const from = (chars: string, n: number) => Array.from({ length: n }, () => pick(chars)).join('');
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Pieces that are, or nearly are, secrets and PII, and text around them. */
const PIECES: (() => string)[] = [
  () => from(`${ALNUM}_-`, 10 + rnd(30)),
  () => from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 15 + rnd(10)),
  () => from('0123456789abcdef', 30 + rnd(6)),
  () => `${pick(SECRET_HINTS)}${from(`${ALNUM}_-.`, 5 + rnd(60))}`,
  () =>
    `${pick(GENERIC_KEYS)}${pick(['', '_id', 's'])}${pick([': ', '=', ' is ', '="', ' = '])}${from(ALNUM, 8 + rnd(20))}`,
  () => `${pick(['Bearer ', 'Authorization: ', 'token: '])}${from(`${ALNUM}.-_`, 12 + rnd(40))}`,
  () => `-----BEGIN ${pick(['RSA ', 'EC ', ''])}PRIVATE KEY-----\n${from(`${ALNUM}+/`, 40)}`,
  () => `${from('abcdefgh', 5)}@${from('abcdef', 4)}.${pick(['com', 'io'])}`,
  () => from('0123456789 -().+', 8 + rnd(16)),
  () =>
    pick(['GB82 WEST 1234 5698 7654 32', 'AB 12 34 56 C', '2001:db8::1', 'fe80::1', 'abc::def', '10.0.0.1']),
  () => pick(['to\u212Aen: ', '\u212Aey=', '\u0130', 'ＡＫＩＡ', 'ſecret']),
  () => pick(['the ', 'a ', 'and ', 'of ', '\n', ', ', '. ', ' ']),
];
const random = Array.from({ length: 3000 }, () => {
  let s = '';
  for (let n = 1 + rnd(8); n > 0; n--) s += pick(PIECES)();
  return s;
});

const data = [
  ...jsonl('pii.jsonl'),
  ...jsonl('prompts_benign.jsonl'),
  ...jsonl('prompts_injection.jsonl'),
  ...snapshot,
];
const windows = data.flatMap((t) =>
  t.length <= 140 ? [] : Array.from({ length: 3 }, () => t.slice(rnd(t.length - 140)).slice(0, 140)),
);

describe('output screening triggers', () => {
  it('1. every hint, generic key, 20-character run, U+0130 and U+212A is a secret trigger', () => {
    for (const w of [...SECRET_HINTS, ...GENERIC_KEYS]) {
      expect(hasTrigger(`plain ${w} words`, true, false), w).toBe(true);
      expect(hasTrigger(`plain ${w.toUpperCase()} words`, true, false), w).toBe(true);
    }
    expect(hasTrigger('a'.repeat(20), true, false)).toBe(true);
    expect(hasTrigger('a'.repeat(19), true, false)).toBe(false);
    expect(hasTrigger('to\u212Aen', true, false)).toBe(true);
    expect(hasTrigger('\u0130', true, false)).toBe(true);
    expect(hasTrigger('Please review the notes and summarise the risks for the team.', true, false)).toBe(
      false,
    );
  });

  it('2. a digit, @ and : are PII triggers; letters are not', () => {
    for (const t of ['room 5', 'a@b', 'a::b']) expect(hasTrigger(t, false, true), t).toBe(true);
    expect(hasTrigger('Please review the notes, thanks!', false, true)).toBe(false);
    expect(hasTrigger('a'.repeat(30), false, true)).toBe(false);
  });

  it('3. no secret or PII finding in any text or window without a trigger', () => {
    let secretFree = 0;
    let piiFree = 0;
    for (const t of [...data, ...windows, ...random]) {
      if (!hasTrigger(t, true, false)) {
        secretFree++;
        expect(detectSecrets(t), t).toEqual([]);
        expect(detectSecrets(t, { gates: false }), t).toEqual([]);
      }
      if (!hasTrigger(t, false, true)) {
        piiFree++;
        expect(detectPii(t, PII_KINDS), t).toEqual([]);
        expect(detectPii(t, PII_KINDS, { gates: false }), t).toEqual([]);
      }
    }
    // The check must have had texts to check.
    expect(secretFree).toBeGreaterThan(500);
    expect(piiFree).toBeGreaterThan(500);
  });
});
