/** The pure capacity plan (src/core/limits/capacity.ts): which buckets join a request's reserve. */
import { describe, expect, it } from 'vitest';
import { planCapacity, rateBucket } from '../../src/core/limits/capacity.js';
import type { LimitBucket } from '../../src/core/ports.js';

const own: LimitBucket = {
  id: 'rpm',
  key: '{t:acme}:rpm:g:k:k1',
  kind: 'requests',
  algorithm: 'gcra',
  limit: 10,
  burst: 0,
  windowMs: 60_000,
  shadow: false,
  per: 'key',
};
const req = { buckets: [own], costs: [1], upstream: 'openai', tenantId: 'acme', tokens: 500 };

describe('planCapacity', () => {
  it('without a capacity returns the request own arrays untouched', () => {
    const p = planCapacity(req, undefined, {}, 1000);
    expect(p.buckets).toBe(req.buckets);
    expect(p.costs).toBe(req.costs);
  });

  it('adds the upstream and the tenant share per dimension, after the request own buckets', () => {
    const p = planCapacity(
      req,
      { requestsPerMinute: 600, tokensPerMinute: 60_000 },
      { requestsPerMinute: 120, tokensPerMinute: 6_000 },
      1000,
    );
    expect(p.buckets.map((b) => b.key)).toEqual([
      own.key,
      '{u:openai}:upstream:g:r',
      '{t:acme}:fair-share:openai:g:r',
      '{u:openai}:upstream:g:t',
      '{t:acme}:fair-share:openai:g:t',
    ]);
    expect(p.costs).toEqual([1, 1, 1, 500, 500]);
    // 600/min holding 1 s: a depth of 10, one every 100 ms; the share 120/min: 2 every second.
    expect(p.buckets[1]).toMatchObject({ limit: 10, windowMs: 1000, burst: 0 });
    expect(p.buckets[2]).toMatchObject({ limit: 2, windowMs: 1000, per: 'tenant' });
    expect(req.buckets).toHaveLength(1); // the input is not mutated
  });

  it('a share above the capacity is capped at it; no share, no share bucket', () => {
    const p = planCapacity(req, { requestsPerMinute: 60 }, { requestsPerMinute: 600 }, 1000);
    expect(p.buckets[2]!.limit).toBe(p.buckets[1]!.limit);
    const q = planCapacity(req, { requestsPerMinute: 60 }, {}, 1000);
    expect(q.buckets.map((b) => b.id)).toEqual(['rpm', 'upstream:openai']);
  });

  it('a cost above the bucket depth raises its burst so the request can still pass once drained', () => {
    expect(rateBucket('x', 'k', 'tokens', 'upstream', 6000, 1000, 250)).toMatchObject({
      limit: 100,
      burst: 150,
    });
  });
});
