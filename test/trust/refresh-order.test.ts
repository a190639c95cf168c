// The trust service's view of the tenant tiers follows the latest read, not the last to answer: a
// periodic read begun before an operator pinned a tier, and answered after the read the pin
// triggered, put the old tier back until the next read.
import { describe, expect, it } from 'vitest';
import type { TenantTierRow } from '../../src/stores/sql/trust-store.js';
import { TrustService, type TrustServiceOptions } from '../../src/trust/service.js';

describe('tenant tier reads', () => {
  it('keeps the answer of the latest read when an earlier read answers after it', async () => {
    const answers: ((rows: TenantTierRow[]) => void)[] = [];
    const store = { tiers: () => new Promise<TenantTierRow[]>((resolve) => answers.push(resolve)) };
    const trust = new TrustService({ store, config: () => ({}) } as unknown as TrustServiceOptions);
    const before = trust.refresh(); // the timer's read
    const after = trust.refresh(); // the read an operator's pin triggered
    const pinned = {
      tenantId: 'acme',
      tier: 'silver',
      pinned: true,
      since: 1,
      reason: 'set by admin',
      updatedAt: 2,
    };
    answers[1]!([pinned]);
    await after;
    expect(trust.tierOf({ tenantId: 'acme', tier: 'default' })).toBe('silver');
    answers[0]!([]);
    await before;
    expect(trust.tierOf({ tenantId: 'acme', tier: 'default' })).toBe('silver');
    // A later read still applies.
    const next = trust.refresh();
    answers[2]!([]);
    await next;
    expect(trust.tierOf({ tenantId: 'acme', tier: 'default' })).toBe('default');
  });
});
