/**
 * The trust store on SQLite and PostgreSQL: tier moves and rotation claims are compare-and-set, so
 * of two instances acting on the same read exactly one wins; a warning is marked once per secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlDatabase } from '../../src/stores/sql/db.js';
import { SqlTrustStore } from '../../src/stores/sql/trust-store.js';
import { setTenantTier } from '../../src/trust/tiers.js';
import { DIALECTS, type TestDatabase } from './sql/databases.js';

describe.each(DIALECTS)('trust store ($name)', ({ make }) => {
  let db: TestDatabase;
  let one: SqlTrustStore;
  let two: SqlTrustStore;
  const handles: SqlDatabase[] = [];
  beforeAll(async () => {
    db = make();
    for (let i = 0; i < 2; i++) handles.push(await db.open());
    one = new SqlTrustStore(handles[0]!);
    two = new SqlTrustStore(handles[1]!);
  });
  afterAll(async () => {
    for (const h of handles) await h.close();
    await db.cleanup();
  });

  it('two movers from the same read: exactly one move lands', async () => {
    const next = (tier: string, at: number) => ({
      tier,
      pinned: false,
      since: at,
      reason: 'r',
      updatedAt: at,
    });
    const wins = await Promise.all([
      one.move('t1', undefined, next('silver', 1)),
      two.move('t1', undefined, next('gold', 1)),
    ]);
    expect(wins.filter(Boolean)).toHaveLength(1);
    const row = (await one.tier('t1'))!;
    const again = await Promise.all([
      one.move('t1', row, next('bronze', 2)),
      two.move('t1', row, next('gold', 2)),
    ]);
    expect(again.filter(Boolean)).toHaveLength(1);
    // A stale read no longer matches.
    expect(await one.move('t1', row, next('silver', 3))).toBe(false);
  });

  it('pin and unpin through setTenantTier', async () => {
    const { after } = await setTenantTier(one, 't2', 'gold', 'test', 10);
    expect(after).toMatchObject({ tier: 'gold', pinned: true });
    const un = await setTenantTier(two, 't2', null, 'test', 20);
    expect(un.after).toMatchObject({ tier: 'gold', pinned: false, reason: 'unpinned by test' });
    expect((await one.tiers()).map((r) => r.tenantId)).toContain('t2');
  });

  it('a rotation is claimed once; a warning is marked once; both can be undone', async () => {
    const claims = await Promise.all([one.claim('k1', 100, 200), two.claim('k1', 100, 200)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    await one.undo('k1', 100, 200);
    expect(await two.claim('k1', 100, 300)).toBe(true);
    expect(await one.markWarned('k2', 50, 60)).toBe(true);
    expect(await two.markWarned('k2', 50, 61)).toBe(false);
    await one.clearWarned('k2', 60);
    expect(await two.markWarned('k2', 50, 62)).toBe(true);
    const rows = Object.fromEntries((await one.rotations()).map((r) => [r.keyId, r]));
    expect(rows.k1).toMatchObject({ issuedAt: 300 });
    expect(rows.k2).toMatchObject({ issuedAt: 50, warnedAt: 62 });
  });
});
