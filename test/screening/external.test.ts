import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { readGuard, readModeration } from '../../src/screening/external.js';

describe('reading an external classifier', () => {
  it("reads OpenAI's moderation answer: the endpoint's own flag, or only the categories the policy names", () => {
    const body = {
      results: [
        { flagged: false, categories: { hate: false, violence: false } },
        { flagged: true, categories: { hate: false, violence: true, 'self-harm': true } },
      ],
    };
    expect(readModeration(body, [])).toEqual({ unsafe: true, categories: ['violence', 'self-harm'] });
    expect(readModeration(body, ['hate'])).toEqual({ unsafe: false, categories: [] });
    expect(readModeration(body, ['violence'])).toEqual({ unsafe: true, categories: ['violence'] });
    expect(readModeration({ results: [{ flagged: false, categories: {} }] }, [])).toEqual({
      unsafe: false,
      categories: [],
    });
  });

  it('treats anything else as unreadable (the policy decides: fail open or closed)', () => {
    for (const bad of [
      null,
      'x',
      {},
      { results: [] },
      { results: [{ categories: {} }] },
      { error: { message: 'x' } },
    ])
      expect(readModeration(bad, [])).toBeNull();
  });

  it('reads a Llama-Guard-style answer: safe, or unsafe with its category codes', () => {
    const answer = (content: unknown) => ({ choices: [{ message: { role: 'assistant', content } }] });
    expect(readGuard(answer('safe'))).toEqual({ unsafe: false, categories: [] });
    expect(readGuard(answer('\n\nunsafe\nS1,S10'))).toEqual({ unsafe: true, categories: ['S1', 'S10'] });
    expect(readGuard(answer('UNSAFE'))).toEqual({ unsafe: true, categories: [] });
    expect(readGuard(answer('I think this is fine'))).toBeNull();
    expect(readGuard(answer(null))).toBeNull();
    expect(readGuard({ choices: [] })).toBeNull();
  });
});

describe('screening.external in the policy', () => {
  const base = `upstreams:
  - { name: local, kind: mock }
  - { name: guard, kind: openai, baseUrl: "http://127.0.0.1:9/v1" }
models: [{ match: "*", upstream: local }]
`;
  const tiers = 'tiers: { default: {} }\n';
  it('is off by default, and takes an openai-kind upstream at the top level and per tier', () => {
    expect(parseConfig(base + tiers).screening.external.action).toBe('off');
    const cfg = parseConfig(
      `${base}screening: { external: { upstream: guard, action: block } }
tiers: { default: {}, strict: { screening: { external: { onError: block } } } }
`,
    );
    expect(cfg.screening.external).toMatchObject({
      upstream: 'guard',
      action: 'block',
      onError: 'allow',
      timeoutMs: 1000,
    });
    expect(cfg.tiers.strict?.screening?.external).toEqual({ onError: 'block' });
  });

  it('refuses an unknown upstream and one of another kind, naming where', () => {
    expect(() =>
      parseConfig(`${base}${tiers}screening: { external: { upstream: nope, action: flag } }\n`),
    ).toThrow(/screening\.external\.upstream.*unknown upstream "nope"/s);
    expect(() =>
      parseConfig(`${base}tiers: { default: {}, t: { screening: { external: { upstream: local } } } }\n`),
    ).toThrow(/tiers\.t\.screening\.external\.upstream.*kind mock/s);
  });
});
