/** The per-limit `slice` option (hot-key slices, issue 18): carried to the bucket, refused where it cannot apply. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { compileLimitPlan } from '../../../src/core/limits/plan.js';

const base = `
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  free:
    limits:
`;
const ctx = {
  keyId: 'k_1',
  tenantId: 't_1',
  projectId: null,
  tier: 'free',
  endUser: null,
  ip: '203.0.113.9',
  action: 'chat.create',
  model: 'm',
};

describe('limit slice option', () => {
  it('is carried to the bucket of a requests limit, and absent (off) by default', () => {
    const cfg = parseConfig(
      `${base}      - { id: hot, requests: 6000, window: 1m, slice: 20 }\n      - { id: cold, requests: 60, window: 1m }\n`,
    );
    const buckets = compileLimitPlan(cfg).bucketsFor(ctx);
    expect(buckets.find((b) => b.id === 'hot')!.slice).toBe(20);
    expect(buckets.find((b) => b.id === 'cold')!.slice).toBeUndefined();
  });

  it('is refused on a tokens limit and on a window of 1 h or more', () => {
    expect(() => parseConfig(`${base}      - { id: t, tokens: 6000, window: 1m, slice: 20 }\n`)).toThrow(
      /slice/,
    );
    expect(() => parseConfig(`${base}      - { id: d, requests: 6000, window: 1h, slice: 20 }\n`)).toThrow(
      /slice/,
    );
  });
});
