// The secret and PII detectors skip regexes that the text's census (census.ts) shows cannot
// match. A gate may only ever skip work, never a finding: this compares gated against ungated
// results on the snapshot texts, the shared screening data (when present) and random strings
// built from the characters and fragments the gates look at.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { census, mayContain } from '../../../src/core/screening/census.js';
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

let x = 12345;
const rnd = (n: number) => {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  return Math.floor((x / 2 ** 32) * n);
};
const pick = <T>(a: ArrayLike<T>): T => a[rnd(a.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => rnd(10)).join('');
const upper = (n: number) => Array.from({ length: n }, () => String.fromCharCode(65 + rnd(26))).join('');
const alnum = (n: number) =>
  Array.from({ length: n }, () =>
    pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'),
  ).join('');
const hex = (n: number) => Array.from({ length: n }, () => pick('0123456789abcdef')).join('');
/** Fragments near the gates' edges: separators, shapes one digit short, keywords, hints. */
const FRAGMENTS: (() => string)[] = [
  () =>
    `${digits(3)}${pick([' ', '-', '.', '', '\u00a0', '\u2009'])}${digits(3)}${pick(['-', ' ', '.'])}${digits(4)}`,
  () =>
    `+${digits(1 + rnd(3))} ${pick(['(', ''])}${digits(2)}${pick([')', ''])} ${digits(3)} ${digits(2 + rnd(3))}`,
  () => `${digits(3)}-${digits(4)}${pick([' x', ' ext. ', 'x', ' EXT '])}${digits(1 + rnd(4))}`,
  () => `phone: ${digits(3)} ${digits(4)}`,
  () => `${digits(3)}${pick(['-', ' ', '.'])}${digits(2)}${pick(['-', ' ', '.'])}${digits(4)}`,
  () => Array.from({ length: 4 }, () => digits(4)).join(pick([' ', '-', ''])),
  () => pick(['4111 1111 1111 1111', '4012-8888-8888-1881', '378282246310005', '5555555555554444']),
  () => pick(['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'FR1420041010050500013M02606']),
  () =>
    `${upper(2)}${pick([' ', ''])}${digits(2)}${pick([' ', ''])}${digits(2)} ${digits(2)} ${pick('ABCD')}`,
  () => `${upper(2)}${digits(2)}${alnum(12 + rnd(10)).toUpperCase()}`,
  () => `${rnd(256)}.${rnd(256)}.${rnd(256)}.${rnd(256)}${pick(['', '/24', '.'])}`,
  () => pick(['2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::1', 'std::vector', '10::30', 'a:b:c']),
  () =>
    `${pick(['jane.doe', 'x', 'a+b', 'ünï', 'first last'])}@${pick(['example.org', 'x.io', 'localhost', ''])}`,
  () => `${pick(['AKIA', 'ASIA', 'A3TX'])}${upper(16)}`,
  () => `${pick(['SK', 'AC'])}${hex(32)}`,
  () => `${pick('MNOA')}${alnum(22 + rnd(3))}${pick(['', '-', '_'])}.${alnum(6)}.${alnum(27)}`,
  () => `A3-${upper(6)}-${upper(11)}-${upper(5)}-${upper(5)}-${upper(5)}`,
  () =>
    `${pick(['api_key', 'SECRET', 'Token', 'password', 'pwd', 'creds', 'auth', 'LOGIN', 'key'])}${pick(['=', ': ', ' is ', '="'])}${alnum(10 + rnd(30))}`,
  () =>
    `${pick(['ghp_', 'sk-', 'sk-ant-api03-', 'xoxb-', 'eyJ', 'glpat-', 'npm_', 'hf_', 'AIza'])}${alnum(20 + rnd(30))}`,
  () => `eyJ${alnum(12)}.eyJ${alnum(12)}.${alnum(10)}`,
  () => `-----BEGIN ${pick(['RSA ', ''])}PRIVATE KEY-----\n${alnum(40)}\n-----END PRIVATE KEY-----`,
  () => pick(SECRET_HINTS).toUpperCase(),
  () => pick(SECRET_HINTS),
  () =>
    pick([
      '\u0130',
      '\u212a',
      'ſ',
      'K',
      'İ',
      '\u200b',
      '日本',
      '😀',
      '\u00a0',
      ' ',
      '\n',
      '.',
      ':',
      '@',
      '-',
      '|',
    ]),
  () => alnum(1 + rnd(40)),
  () => digits(1 + rnd(16)),
];

function randomText(): string {
  let s = '';
  const parts = 1 + rnd(12);
  for (let i = 0; i < parts; i++) s += pick(FRAGMENTS)() + (rnd(3) ? ' ' : pick(['', '\n', ', ', '-']));
  return s;
}

const same = (text: string) => {
  expect(detectSecrets(text), text.slice(0, 120)).toEqual(detectSecrets(text, { gates: false }));
  expect(detectPii(text), text.slice(0, 120)).toEqual(detectPii(text, PII_KINDS, { gates: false }));
};

describe('census gates never hide a finding', () => {
  it('same secret and PII findings on the snapshot texts and the shared data', () => {
    const texts = [
      ...snapshot,
      ...jsonl('pii.jsonl'),
      ...jsonl('prompts_benign.jsonl'),
      ...jsonl('prompts_injection.jsonl'),
    ];
    let found = 0;
    for (const t of texts) {
      same(t);
      found += detectSecrets(t).length + detectPii(t).length;
    }
    expect(found).toBeGreaterThan(100);
  });

  it('same findings on random strings made of what the gates look at', () => {
    let found = 0;
    let gatedOff = 0;
    const kinds = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const t = randomText();
      same(t);
      const fs = [...detectSecrets(t), ...detectPii(t)];
      found += fs.length;
      for (const f of fs) kinds.add(f.kind);
      const c = census(t);
      if (c.phoneRunDigits < 7 || !c.upperPairDigits || c.upperDigitRun < 20) gatedOff++;
    }
    // Not vacuous: plenty of findings, and plenty of texts where some gate was closed.
    expect(found).toBeGreaterThan(1000);
    expect(gatedOff).toBeGreaterThan(300);
    // The gated shapes are found, not only skipped.
    for (const k of ['discord-token', 'twilio-key', 'aws-access-key', 'card', 'phone', 'iban'])
      expect(kinds, k).toContain(k);
  });

  it('mayContain is a superset of includes on the lower-cased text', () => {
    for (let i = 0; i < 500; i++) {
      const t = randomText();
      const lower = t.toLowerCase();
      const c = census(t);
      for (const h of [...SECRET_HINTS, 'key', 'token', 'passw', 'a3-'])
        if (lower.includes(h)) expect(mayContain(c, h), `${h} in ${t}`).toBe(true);
    }
    // And it does rule things out.
    expect(mayContain(census('plain words only'), 'sk-ant-')).toBe(false);
    expect(census('Kelvin \u212a').pairs).toBeNull();
  });

  it('decode-probe gates equal the regexes normalise used before them', () => {
    const probeBits: (() => string)[] = [
      () => alnum(10 + rnd(12)),
      () => hex(10 + rnd(12)),
      () => pick(['+', '/', '_', '-', '=', '%', '%4', '%41', '%zz', '%2F', ' ', '.', 'é', '日']),
      () => `${pick(['aGVsbG8gd29ybGQ', 'SWdub3Jl'])}${pick(['', '=', '=='])}`,
    ];
    let open = 0;
    for (let i = 0; i < 3000; i++) {
      let t = '';
      for (let j = 0, n = 1 + rnd(8); j < n; j++) t += pick(probeBits)();
      const c = census(t);
      expect(c.b64Run >= 16, t).toBe(/[A-Za-z0-9+/_-]{16}/.test(t));
      expect(c.hexRun >= 16, t).toBe(/[0-9a-fA-F]{16}/.test(t));
      expect(c.pctEscapes, t).toBe(t.match(/%[0-9a-fA-F]{2}/g)?.length ?? 0);
      if (c.b64Run >= 16 || c.hexRun >= 16 || c.pctEscapes >= 3) open++;
    }
    expect(open).toBeGreaterThan(300);
    expect(open).toBeLessThan(2900);
  });

  it('Latin-1 flag, leetspeak runs and base64 runs equal the regexes normalise used before them', () => {
    const bits: (() => string)[] = [
      () => pick(['a', 'Z', '0', '1', '3', '4', '5', '7', '2', '9', '@', '$', '_', '-', '+', '/', '=']),
      () => pick([' ', '\n', 'é', 'À', 'ÿ', '\u00a0', '\u00bf', '\u0456', '日', '\u0130', '\u200b']),
      () => alnum(1 + rnd(20)),
      () => pick(['h3ll0', 'pr3v10us', '1gn0r3', '4ll', 'a1b2c3d4', 'l33t', 'c0d3$', 'SWdub3JlIGFsbA==']),
    ];
    let leet = 0;
    for (let i = 0; i < 3000; i++) {
      let t = '';
      for (let j = 0, n = 1 + rnd(12); j < n; j++) t += pick(bits)();
      const c = census(t);
      expect(c.latin1, t).toBe(!/[^\x00-\x7f\u00c0-\u00ff]/.test(t));
      const runs: number[] = [];
      for (const m of t.matchAll(/[A-Za-z013457@$]+/g)) {
        const w = m[0];
        const letters = w.replace(/[^A-Za-z]/g, '').length;
        if (/^(?=.*[A-Za-z])(?=.*[013457@$])[A-Za-z013457@$]{4,}$/.test(w) && letters * 2 >= w.length)
          runs.push(m.index, m.index + w.length);
      }
      expect(c.leetRuns, t).toEqual(runs);
      if (runs.length > 0) leet++;
      const b64: number[] = [];
      for (const m of t.matchAll(/[A-Za-z0-9+/_-]{16,}/g)) b64.push(m.index, m.index + m[0].length);
      expect(c.b64Runs, t).toEqual(b64);
    }
    expect(leet).toBeGreaterThan(300);
  });

  it('the census reads the shapes it promises', () => {
    const c = census('call 555-123 4567 or AB 12 from 10.0.0.1 at fe80::1 a@b');
    expect(c.phoneRunDigits).toBe(10);
    expect(c.upperPairDigits).toBe(true);
    expect(c.digitDotRunDots).toBe(3);
    expect(c.colonPair).toBe(true);
    expect(c.at).toBe(true);
    const d = census('ghp_R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8 2% 250 ms');
    expect(d.phoneRunDigits).toBe(3);
    expect(d.upperPairDigits).toBe(false);
    expect(d.alnumRun).toBe(36);
    expect(d.wordDashRun).toBe(40);
    expect(d.wordDashBeforeDot).toBe(0);
    expect(census('see N-abc_defghijklmnopqrstuvw.abcdef. and a.b').wordDashBeforeDot).toBe(26);
  });
});
