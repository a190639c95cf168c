/**
 * Deprecation notices on SQLite and PostgreSQL: each affected tenant is told once — across two
 * instances and a restart — with a `deprecation` alert naming the replacement; every use counts in
 * the per-tenant metric. Claims are awaited (`idle()`), never slept on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeprecationEntry } from '../../src/core/deprecations.js';
import type { AlertEvent } from '../../src/observability/alerts.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { SqlDeprecationNotices } from '../../src/stores/sql/deprecation-notices.js';
import { DeprecationNotifier } from '../../src/wiring/deprecation-notices.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

const T0 = Date.UTC(2026, 2, 1);
const entry: DeprecationEntry = {
  match: { model: 'gpt-3.5-*' },
  announced: Date.UTC(2026, 0, 15),
  sunset: Date.UTC(2026, 5, 30),
  replacement: 'gpt-4o-mini',
  link: 'https://example.com/notices/gpt-3.5',
};

describe.each(DIALECTS)('deprecation notices on $name', ({ make }) => {
  let tdb: TestDatabase;
  let notices: SqlDeprecationNotices;
  beforeAll(async () => {
    tdb = make();
    notices = new SqlDeprecationNotices(await tdb.open());
  });
  afterAll(async () => {
    await tdb?.cleanup();
  });

  it('tells each tenant once across instances and restarts, and counts every use per tenant', async () => {
    const alerts: AlertEvent[] = [];
    const metrics = createMetrics({ defaultMetrics: false });
    const instance = () =>
      new DeprecationNotifier({
        clock: { now: () => T0 },
        claim: (e, t, now) => notices.claim(e, t, now),
        notify: (e) => alerts.push(e),
        count: (t, k) => metrics.deprecatedUse(t, k),
      });
    // 1. two instances see acme's calls at the same time; globex calls once
    const a = instance();
    const b = instance();
    for (let i = 0; i < 3; i++) {
      a.seen('acme', entry, false);
      b.seen('acme', entry, false);
    }
    a.seen('globex', entry, false);
    await Promise.all([a.idle(), b.idle()]);
    expect(alerts.map((e) => e.tenantId).sort()).toEqual(['acme', 'globex']);
    expect(alerts.find((e) => e.tenantId === 'acme')).toMatchObject({
      type: 'deprecation',
      subject: 'model:gpt-3.5-*@2026-06-30',
      message:
        'model:gpt-3.5-* is deprecated (announced 2026-01-15) and retires on 2026-06-30; tenant "acme" uses it; use "gpt-4o-mini" instead (see https://example.com/notices/gpt-3.5)',
    });
    // 2. after a restart (a new instance), nobody is told again
    const c = instance();
    c.seen('acme', entry, true);
    await c.idle();
    expect(alerts).toHaveLength(2);
    // 3. every use counted, per tenant
    const text = await metrics.text();
    expect(text).toContain(
      'sluice_deprecated_requests_total{tenant="acme",deprecation="model:gpt-3.5-*@2026-06-30"} 7',
    );
    expect(text).toContain(
      'sluice_deprecated_requests_total{tenant="globex",deprecation="model:gpt-3.5-*@2026-06-30"} 1',
    );
  });

  it('a claim that fails is retried on the next use, and only then told', async () => {
    const alerts: AlertEvent[] = [];
    let down = true;
    const n = new DeprecationNotifier({
      clock: { now: () => T0 },
      claim: (e, t, now) => (down ? Promise.reject(new Error('store down')) : notices.claim(e, t, now)),
      notify: (e) => alerts.push(e),
    });
    n.seen('initech', entry, false);
    await n.idle();
    expect(alerts).toHaveLength(0);
    down = false;
    n.seen('initech', entry, false);
    await n.idle();
    expect(alerts.map((e) => e.tenantId)).toEqual(['initech']);
  });
});
