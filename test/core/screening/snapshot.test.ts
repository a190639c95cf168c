// The latency work on the screening detectors must not change a single answer: this checks the
// current code against scores, spans and normalised forms recorded with the code before it
// (test/fixtures/screening-snapshot.json, written by scripts/snapshot-screening.mjs). The
// injection scores were re-recorded once, when the classifier was retrained on 2-, 3- and
// 5-grams; normalised texts and secret/PII spans were checked unchanged before that.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shippedInjectionModel } from '../../../src/core/screening/injection-model.js';
import { normalise } from '../../../src/core/screening/normalise.js';
import { detectPii } from '../../../src/core/screening/pii.js';
import { scoreInjection } from '../../../src/core/screening/prompt-injection.js';
import { detectSecrets } from '../../../src/core/screening/secrets.js';

interface Row {
  text: string;
  injection: {
    score: number;
    source: string;
    window: { start: number; end: number } | null;
    signals: string[];
  };
  normalised: unknown;
  secrets: unknown[];
  pii: unknown[];
}
const rows: Row[] = JSON.parse(
  readFileSync(new URL('../../fixtures/screening-snapshot.json', import.meta.url), 'utf8'),
);
const model = shippedInjectionModel();
const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

describe('screening snapshot (answers unchanged by the fast paths)', () => {
  it('covers plain, evasive, long and PII/secret texts', () => {
    expect(rows.length).toBeGreaterThan(200);
    expect(rows.some((r) => r.injection.source === 'window')).toBe(true);
    expect(rows.some((r) => r.injection.source === 'base64')).toBe(true);
    expect(rows.some((r) => r.secrets.length > 0)).toBe(true);
    expect(rows.some((r) => r.pii.length > 0)).toBe(true);
  });
  it('injection scores match to 1e-9, with the same source, window and signals', () => {
    for (const r of rows) {
      const s = scoreInjection(model, r.text);
      const at = r.text.slice(0, 80);
      expect(Math.abs(s.score - r.injection.score), at).toBeLessThanOrEqual(1e-9);
      expect(s.source, at).toBe(r.injection.source);
      expect(s.window ?? null, at).toEqual(r.injection.window);
      expect(s.signals, at).toEqual(r.injection.signals);
    }
  });
  it('normalise gives the same text, probes and signals', () => {
    for (const r of rows) expect(plain(normalise(r.text)), r.text.slice(0, 80)).toEqual(r.normalised);
  });
  it('secret and PII findings are the same', () => {
    for (const r of rows) {
      expect(plain(detectSecrets(r.text)), r.text.slice(0, 80)).toEqual(r.secrets);
      expect(plain(detectPii(r.text)), r.text.slice(0, 80)).toEqual(r.pii);
    }
  });
});
