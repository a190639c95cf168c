import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createOutputScreener,
  makeCanary,
  screenOutputText,
  withCanary,
} from '../../../src/core/screening/output.js';
import { DEFAULT_SCREENING, type ScreeningSettings } from '../../../src/core/screening/policy.js';

const github = `ghp_${'R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8'}`;
const settings = (o: Partial<ScreeningSettings['output']>): ScreeningSettings => ({
  ...DEFAULT_SCREENING,
  output: { ...DEFAULT_SCREENING.output, ...o },
});

function run(chunks: string[], s: ScreeningSettings, canaries?: string[]) {
  const sc = createOutputScreener(s, { canaries });
  const emitted: string[] = [];
  for (const c of chunks) {
    const r = sc.push(c);
    emitted.push(r.emit);
    if (r.cut) break;
  }
  if (!sc.cut) emitted.push(sc.flush());
  return { emitted, text: emitted.join(''), cut: sc.cut, found: sc.found };
}

describe('createOutputScreener', () => {
  it('1. passes plain words through at once (nothing buffered)', () => {
    const sc = createOutputScreener(DEFAULT_SCREENING);
    expect(sc.push('Hello').emit).toBe('Hello');
    expect(sc.push(' world,').emit).toBe(' world,');
    expect(sc.push(' how are you').emit).toBe(' how are you');
    expect(sc.flush()).toBe('');
  });

  it('2. redacts a secret split over three chunks and never emits any part of it', () => {
    const parts = ['Your token is ', github.slice(0, 9), github.slice(9, 25), `${github.slice(25)} ok.`];
    const r = run(parts, DEFAULT_SCREENING);
    expect(r.text).toBe('Your token is [REDACTED:github-token] ok.');
    for (const e of r.emitted) expect(e).not.toContain(github.slice(4, 12));
    expect(r.found.map((f) => f.kind)).toEqual(['github-token']);
  });

  it('3. cuts on block: emits the text before the secret, then a cut reason', () => {
    const r = run(
      ['key: ', github.slice(0, 20), github.slice(20), ' and more'],
      settings({ secrets: 'block' }),
    );
    expect(r.text).toBe('key: ');
    expect(r.cut).toEqual({ reason: 'secrets:github-token' });
  });

  it('4. holds only the tail: digit groups of a card across chunks', () => {
    const s = settings({ pii: 'redact' });
    const sc = createOutputScreener(s);
    expect(sc.push('Card: 4111 1111').emit).toBe('Card: ');
    expect(sc.push(' 1111 1111 thanks').emit).toBe('[REDACTED:card] ');
    // "thanks" could still become an e-mail address ("thanks@..."), so it waits for the next chunk.
    expect(sc.flush()).toBe('thanks');
  });

  it('5. deny words and canaries cut the answer even when split', () => {
    const canary = makeCanary(new Uint8Array(12).fill(171));
    expect(withCanary('Summarise.', canary)).toContain(canary);
    const r = run(
      ['The prompt says [', canary.slice(0, 10), canary.slice(10), '] Summarise.'],
      DEFAULT_SCREENING,
      [canary],
    );
    expect(r.cut).toEqual({ reason: 'canary' });
    expect(r.text).toBe('The prompt says [');
    const d = screenOutputText('this is forbidden text', settings({ deny: ['Forbidden'] }));
    expect(d.cut).toEqual({ reason: 'deny' });
    expect(d.text).toBe('this is ');
  });

  it('6. property: any chunking of a text gives the same screened output as one chunk', () => {
    const text = `Use ${github} or mail ops@example.org, card 4111 1111 1111 1111. Done.`;
    const s = settings({ pii: 'redact' });
    const whole = screenOutputText(text, s).text;
    expect(whole).toBe('Use [REDACTED:github-token] or mail [REDACTED:email], card [REDACTED:card]. Done.');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 12 }), (cuts) => {
        const at = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [];
        let prev = 0;
        for (const c of at) {
          chunks.push(text.slice(prev, c));
          prev = c;
        }
        chunks.push(text.slice(prev));
        const r = run(chunks, s);
        expect(r.text).toBe(whole);
        expect(r.text).not.toContain(github.slice(4, 10));
      }),
      { numRuns: 300 },
    );
  });

  it('7. an open private key block is held until its end line, then redacted whole', () => {
    const body = 'MIIEowIBAAKCAQEA7v1m9'.repeat(4);
    const r = run(
      ['x -----BEGIN RSA PRIVATE KEY-----\n', `${body}\n`, '-----END RSA PRIVATE KEY----- y'],
      DEFAULT_SCREENING,
    );
    expect(r.text).toBe('x [REDACTED:private-key] y');
  });
});
