import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';

describe('cache metrics', () => {
  it('counts hits, misses, tokens saved and bytes served/stored', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.cache('miss', 0, 0);
    m.cache('stored', 0, 1200);
    m.cache('hit', 120, 1200);
    m.cache('hit', 120, 1200);
    const text = await m.text();
    expect(text).toContain('sluice_cache_requests_total{outcome="miss"} 1');
    expect(text).toContain('sluice_cache_requests_total{outcome="hit"} 2');
    expect(text).toContain('sluice_cache_tokens_saved_total 240');
    expect(text).toContain('sluice_cache_bytes_total{op="stored"} 1200');
    expect(text).toContain('sluice_cache_bytes_total{op="served"} 2400');
  });
});
