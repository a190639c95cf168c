import { describe, expect, it } from 'vitest';
import { diffPolicies, formatChanges } from '../src/config/diff.js';
import { parseConfig } from '../src/config/load.js';

const policy = (rpm: number, extra = '', apiKey = 'sk-one') => `upstreams:
  - { name: oa, kind: openai, baseUrl: "https://x.test/v1", apiKey: "${apiKey}" }
models: [{ match: "*", upstream: oa }]
tiers:
  free:
    scopes: ["chat.create"]
    limits:
      - { id: rpm, requests: ${rpm}, window: 1m }
${extra}`;

describe('policy diff', () => {
  it('says which limits were raised or lowered, and which scopes granted', () => {
    const a = parseConfig(policy(20));
    const b = parseConfig(policy(40).replace('["chat.create"]', '["chat.create", "embeddings.create"]'));
    const changes = diffPolicies(a, b);
    expect(changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'raised', path: 'tiers.free.limits.rpm' }),
        expect.objectContaining({
          kind: 'added',
          path: 'tiers.free.scopes',
          text: 'scopes granted: embeddings.create',
        }),
      ]),
    );
    expect(diffPolicies(b, a).find((c) => c.path === 'tiers.free.limits.rpm')?.kind).toBe('lowered');
  });

  it('names a changed upstream credential without printing it', () => {
    const text = formatChanges(diffPolicies(parseConfig(policy(20)), parseConfig(policy(20, '', 'sk-two'))));
    expect(text).toContain('upstreams.oa: upstream settings changed: apiKey');
    expect(text).not.toContain('sk-one');
    expect(text).not.toContain('sk-two');
  });

  it('an identical policy has no changes', () => {
    expect(formatChanges(diffPolicies(parseConfig(policy(20)), parseConfig(policy(20))))).toBe(
      'no changes\n',
    );
  });
});
