/**
 * `rawClientFingerprint` skips the names of NOT_FINGERPRINT by comparing a header name only with
 * those of its length (it hashed every name and looked the hash up before): it must still give
 * `clientFingerprint` of the lower-cased list without them, whatever the case and whatever the
 * look-alikes (same length, one letter off; other non-ASCII case forms).
 */
import { describe, expect, it } from 'vitest';
import { clientFingerprint, NOT_FINGERPRINT, rawClientFingerprint } from '../../../src/core/anomaly/text.js';
import { prng } from '../../helpers/prng.js';

/** What the fingerprint means: the first 32 kept names, lower-cased (ASCII, as header names are). */
function reference(userAgent: string | null, raw: string[], net: string): number {
  const names: string[] = [];
  for (let i = 0; i < raw.length && names.length < 32; i += 2) {
    const lower = raw[i]!.replace(/[A-Z]/g, (c) => c.toLowerCase());
    if (!NOT_FINGERPRINT.includes(lower)) names.push(lower);
  }
  return clientFingerprint(userAgent, names, net);
}

describe('raw client fingerprints', () => {
  it('equal the fingerprint of the filtered, lower-cased names on random header lists', () => {
    const rnd = prng(41);
    const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
    const other = [
      'user-agent',
      'content-type',
      'accept',
      'x-sluice-end-user',
      'hosts',
      'cookies',
      'x-api-kez',
    ];
    const mutate = (s: string) => {
      const r = rnd();
      if (r < 0.3) return s.toUpperCase();
      if (r < 0.5) return s.replace(/(^|-)([a-z])/g, (_, d, c) => d + c.toUpperCase());
      if (r < 0.6) {
        // One letter off, same length.
        const i = Math.floor(rnd() * s.length);
        return s.slice(0, i) + (s[i] === 'z' ? 'y' : 'z') + s.slice(i + 1);
      }
      if (r < 0.65) return s.replace('i', 'İ').replace('k', 'K');
      return s;
    };
    let skipped = 0;
    for (let round = 0; round < 3000; round++) {
      const raw: string[] = [];
      const n = Math.floor(rnd() * 40);
      for (let i = 0; i < n; i++) raw.push(mutate(rnd() < 0.5 ? pick(NOT_FINGERPRINT) : pick(other)), 'v');
      const ua = rnd() < 0.2 ? null : pick(['curl/8', 'openai-node/4.77.0']);
      const a = rawClientFingerprint(ua, raw, '192.0.2.0/24');
      expect(a, JSON.stringify(raw)).toBe(reference(ua, raw, '192.0.2.0/24'));
      if (
        a !==
        clientFingerprint(
          ua,
          raw.filter((_, i) => i % 2 === 0).map((x) => x.toLowerCase()),
          '192.0.2.0/24',
        )
      )
        skipped++;
    }
    // The lists did hold names to leave out.
    expect(skipped).toBeGreaterThan(1000);
  });
});
