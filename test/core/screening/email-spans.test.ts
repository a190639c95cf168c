// detectPii finds e-mail addresses by trying EMAIL_RE only near each `@`; this checks the spans
// are exactly those of a full regex scan, on texts dense with `@`, dots and long local parts.
import { describe, expect, it } from 'vitest';
import { emailSpans } from '../../../src/core/screening/pii.js';

const EMAIL_RE =
  /(?<![A-Za-z0-9._%+:/-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

describe('emailSpans', () => {
  it('gives the same spans as a full scan with the e-mail regex', () => {
    let x = 5;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return Math.floor((x / 2 ** 32) * n);
    };
    const pieces = [
      'a',
      'b.c',
      '@',
      'ex.com',
      '-',
      ' ',
      ':',
      'x'.repeat(70),
      'q+1',
      '.',
      'org',
      '@@',
      '/',
      'Zz9',
      'john.doe',
      '@mail.example.org',
      'u@h.io',
    ];
    const texts = ['', 'mail me at a@b.co', `${'y'.repeat(80)}@example.com`, 'a@b.cc@d.ee a@b'];
    for (let t = 0; t < 400; t++) {
      let s = '';
      for (let i = 0; i < 14; i++) s += pieces[rnd(pieces.length)];
      texts.push(s);
    }
    let found = 0;
    for (const s of texts) {
      const want = [...s.matchAll(EMAIL_RE)].map((m) => [m.index!, m.index! + m[0].length]);
      found += want.length;
      expect(emailSpans(s), s).toEqual(want);
    }
    expect(found).toBeGreaterThan(100);
  });
});
