// detectSecrets pre-scans the text once for every rule's hints; this checks that the pre-scan
// finds exactly the hints `includes` finds, on texts made of overlapping hint fragments.
import { describe, expect, it } from 'vitest';
import { hintsIn, SECRET_HINTS } from '../../../src/core/screening/secrets.js';

describe('secret rule hints pre-scan', () => {
  it('finds the same hints as includes(), overlaps and adjacent hints included', () => {
    let x = 99;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return Math.floor((x / 2 ** 32) * n);
    };
    const texts = ['', 'sq0csp-eaaa', 'ops_eyjeyj', 'gh_gl|sk-ant-', SECRET_HINTS.join('')];
    for (let t = 0; t < 300; t++) {
      let s = '';
      for (let i = 0; i < 12; i++) {
        const h = SECRET_HINTS[rnd(SECRET_HINTS.length)]!;
        s += rnd(2) ? h.slice(rnd(h.length)) : h.slice(0, 1 + rnd(h.length)); // whole hints and fragments
        if (rnd(3) === 0) s += ' ';
      }
      texts.push(s);
    }
    let found = 0;
    for (const s of texts) {
      const want = SECRET_HINTS.filter((h) => s.includes(h));
      found += want.length;
      expect([...hintsIn(s)].sort(), s).toEqual(want.sort());
    }
    expect(found).toBeGreaterThan(100);
  });
});
