/**
 * The exception store and service on SQLite and PostgreSQL, with a fake clock: round trip,
 * compare-and-set decisions, the overlay reload, the sweep of lapsed requests and grants (audited),
 * and webhooks on request and decision.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { AuditEventInput } from '../../src/core/ports.js';
import {
  type ExceptionNotice,
  ExceptionService,
  MAX_PENDING_PER_TENANT,
} from '../../src/gateway/portal/exception-service.js';
import { SqlExceptionStore } from '../../src/stores/sql/exception-store.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

const DAY = 86_400_000;
const config = parseConfig(
  `upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers: { default: { limits: [{ id: rpm, requests: 100, window: 1m }] } }
exceptions: { maxDuration: 2d, pendingTtl: 1d }
`,
  'test',
);

describe.each(DIALECTS)('exceptions on $name', ({ make }) => {
  let tdb: TestDatabase;
  let store: SqlExceptionStore;
  const clock = {
    t: 1_900_000_000_000,
    now() {
      return this.t;
    },
  };
  const events: AuditEventInput[] = [];
  const notices: ExceptionNotice[] = [];
  let svc: ExceptionService;
  let tenant: string;

  beforeAll(async () => {
    tdb = make();
    store = new SqlExceptionStore(await tdb.open());
    tenant = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
    svc = new ExceptionService({
      store,
      clock,
      audit: {
        emit: (e) => void events.push(e),
        flush: async () => {},
        stats: () => ({ queued: 0, overflowed: 0, written: 0 }),
      },
      config: () => config,
      notify: (n) => void notices.push(n),
    });
  });
  afterAll(async () => {
    await tdb?.cleanup();
  });

  it('stores a request as sent, and refuses one longer than the policy allows', async () => {
    const r = await svc.request(
      {
        limits: [{ id: 'rpm', limit: 300 }],
        models: ['o3*'],
        justification: 'batch backfill this week',
        duration: 3600,
      },
      { tenantId: tenant, keyId: 'k1' },
    );
    expect(await store.get(r.id)).toEqual(r);
    expect((await svc.list({ tenantId: tenant })).map((x) => x.id)).toEqual([r.id]);
    await expect(
      svc.request(
        { models: ['x'], justification: 'too long a request', duration: 3 * 86_400 },
        { tenantId: tenant, keyId: 'k1' },
      ),
    ).rejects.toMatchObject({ kind: 'invalid' });
    expect(notices.at(-1)).toMatchObject({ type: 'exception.requested', tenantId: tenant });
  });

  it('approval is compare-and-set: the second decision on the same request fails', async () => {
    const r = await svc.request(
      { limits: [{ id: 'rpm', limit: 200 }], justification: 'second one for the race', duration: 600 },
      { tenantId: tenant, keyId: 'k2' },
    );
    // 1. step-up: models and scopes always need it; a 2x limit for 10 min does not
    expect(await svc.approvalNeedsStepUp(r.id, {})).toBe(false);
    // 2. two operators at once: exactly one wins
    const results = await Promise.allSettled([
      svc.approve(r.id, {}, 'ann', false),
      svc.deny(r.id, null, 'bob'),
    ]);
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((x) => x.status === 'rejected')[0]).toMatchObject({ reason: { kind: 'state' } });
    expect(notices.at(-1)).toMatchObject({ type: 'exception.decided' });
  });

  it('the overlay reloads approved grants; the sweep records lapsed ones as expired, audited', async () => {
    const first = (await svc.list({ tenantId: tenant })).find((x) => x.requestedBy === 'k1')!;
    await expect(svc.approve(first.id, {}, 'ann', false)).rejects.toMatchObject({ kind: 'step-up' });
    const approved = await svc.approve(first.id, { duration: 1800 }, 'ann', true);
    expect(approved.expiresAt).toBe(clock.t + 1_800_000);
    await svc.reload();
    const b = [
      {
        id: 'rpm',
        key: 'x',
        kind: 'requests',
        algorithm: 'gcra',
        limit: 100,
        burst: 0,
        windowMs: 60_000,
        shadow: false,
        per: 'key',
      },
    ] as const;
    expect(svc.overlay().buckets(tenant, 'k1', clock.t, b)[0]!.limit).toBe(300);
    // 1. past its expiry the overlay stops applying it before any sweep ran
    clock.t += 1_800_000;
    expect(svc.overlay().buckets(tenant, 'k1', clock.t, b)).toBe(b);
    // 2. an unanswered request lapses after pendingTtl (1 d)
    const lonely = await svc.request(
      { limits: [{ id: 'rpm', limit: 150 }], justification: 'nobody will answer this', duration: 600 },
      { tenantId: tenant, keyId: 'k3' },
    );
    clock.t += DAY;
    const before = events.length;
    expect(await svc.sweep()).toBeGreaterThanOrEqual(2);
    expect((await store.get(first.id))!.status).toBe('expired');
    expect((await store.get(lonely.id))!.status).toBe('expired');
    const swept = events.slice(before).filter((e) => e.action === 'exception.expire');
    expect(swept.map((e) => (e.details as { exception: string }).exception)).toEqual(
      expect.arrayContaining([first.id, lonely.id]),
    );
    expect(await svc.sweep()).toBe(0);
    // 3. at most MAX_PENDING_PER_TENANT open requests per tenant
    const flood = { models: ['m'], justification: 'one of very many requests', duration: 60 };
    for (let i = 0; i < MAX_PENDING_PER_TENANT; i++)
      await svc.request(flood, { tenantId: tenant, keyId: 'k4' });
    await expect(svc.request(flood, { tenantId: tenant, keyId: 'k4' })).rejects.toMatchObject({
      kind: 'state',
    });
    await expect(svc.revoke(first.id, null, 'ann')).rejects.toMatchObject({ kind: 'state' });
  });
});
