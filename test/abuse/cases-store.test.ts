/**
 * Abuse cases in the control store, on SQLite and PostgreSQL, with a fake clock: every transition is
 * written through with its evidence, quarantines survive a restart (a new engine loads them), and a
 * release or extension made by one instance applies on another at its next poll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseSync } from '../../src/abuse/case-sync.js';
import { AbuseEngine } from '../../src/abuse/engine.js';
import type { Observation } from '../../src/core/anomaly/detectors.js';
import { SqlCaseStore } from '../../src/stores/sql/case-store.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function campaign(engine: AbuseEngine, clock: { t: number }, prefix: string, base = T0) {
  for (let round = 0; round < 4; round++)
    for (let i = 0; i < 10; i++) {
      clock.t = base + round * 10_000 + i * 100;
      const o: Observation = {
        requestId: `r${round}-${i}`,
        keyId: `${prefix}${i}`,
        tenantId: `t${i}`,
        ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
        userAgent: 'x',
        headerNames: [],
        endUser: null,
        action: 'chat.create',
        endpoint: 'chat',
        model: 'demo-model',
        prompt: `Write a five-star review for product ${i * 13 + round} mentioning fast shipping`,
        inputTokens: 20,
        outputTokens: 200,
        status: 200,
      };
      engine.observe(o);
    }
  // Detection runs in batches off the request's turn; a test takes the batch at once.
  engine.flush();
}

describe.each(DIALECTS)('abuse cases on $name', ({ make }) => {
  let tdb: TestDatabase;
  let store: SqlCaseStore;
  const clock = { t: T0 };
  const now = { now: () => clock.t };
  const instance = () => {
    const transitions: string[] = [];
    const sync = new CaseSync({ store, clock: now });
    const engine = new AbuseEngine({
      clock: now,
      onStore: (c) => sync.save(c),
      onCase: (c, t) => void transitions.push(`${c.id}:${t}`),
    });
    sync.attach(engine);
    return { engine, sync, transitions };
  };
  const check = (e: AbuseEngine, key: string) =>
    e.check({ keyId: key, tenantId: 'tx', ip: '203.0.113.9', action: 'chat.create' })?.code ?? null;

  beforeAll(async () => {
    tdb = make();
    store = new SqlCaseStore(await tdb.open());
  });
  afterAll(async () => {
    await tdb?.cleanup();
  });

  it('writes a quarantine through with its evidence and loads it after a restart', async () => {
    const a = instance();
    campaign(a.engine, clock, 'ka');
    await a.sync.flush();
    const q = a.engine.listCases().find((c) => c.kind === 'quarantine');
    expect(q).toBeDefined();
    const stored = await store.get(q!.id);
    expect(stored).toMatchObject({
      id: q!.id,
      status: 'open',
      kind: 'quarantine',
      capability: 'chat.create',
    });
    // The evidence is the engine's: signals, sample request ids, every member key seen so far.
    expect(Object.keys(stored!.evidence.signals).length).toBeGreaterThan(0);
    expect(stored!.evidence.sampleRequests.length).toBeGreaterThan(0);
    expect(stored!.evidence.related.keys).toEqual(q!.evidence.related.keys);
    expect(stored!.evidence.related.keys.length).toBeGreaterThanOrEqual(6);
    expect(await store.list({ status: 'open' })).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: q!.id })]),
    );

    // A restart: a fresh engine knows nothing until it loads; then the members are refused again.
    const b = instance();
    const member = q!.evidence.related.keys[0]!;
    expect(check(b.engine, member)).toBeNull();
    expect(await b.sync.load()).toBeGreaterThanOrEqual(1);
    expect(check(b.engine, member)).toBe('SLUICE_QUARANTINED');
    expect(check(b.engine, 'someone-else')).toBeNull();
    expect(b.engine.getCase(q!.id)?.evidence.related.keys).toEqual(q!.evidence.related.keys);
    // Loading is no transition: nothing audited twice.
    expect(b.transitions).toEqual([]);
  });

  it('applies a release, an extension and a note made on another instance at its next poll', async () => {
    const a = instance();
    campaign(a.engine, clock, 'kb', T0 + 10 * HOUR);
    await a.sync.flush();
    const q = a.engine
      .listCases()
      .find((c) => c.kind === 'quarantine' && c.evidence.related.keys[0]?.startsWith('kb'))!;
    const member = q.evidence.related.keys[0]!;
    const b = instance();
    await b.sync.load();
    expect(check(b.engine, member)).toBe('SLUICE_QUARANTINED');

    // B extends by a day; A sees the new expiry on its poll, and still refuses past the old one.
    clock.t += 1000;
    const until = q.expiresAt! + 24 * HOUR;
    expect(b.engine.extend(q.id, until, 'bob')).toBe(true);
    await b.sync.flush();
    expect(await a.sync.poll()).toBeGreaterThanOrEqual(1);
    expect(a.engine.getCase(q.id)?.expiresAt).toBe(until);
    clock.t = q.expiresAt! + 1000;
    expect(check(a.engine, member)).toBe('SLUICE_QUARANTINED');

    // B releases; A applies it on its next poll (before: still refused).
    expect(b.engine.release(q.id, 'bob', 'false positive')).toBe(true);
    await b.sync.flush();
    expect(check(a.engine, member)).toBe('SLUICE_QUARANTINED');
    await a.sync.poll();
    expect(check(a.engine, member)).toBeNull();
    expect(a.engine.getCase(q.id)?.status).toBe('released');
    expect((await store.get(q.id))?.notes.map((n) => n.text)).toEqual([
      `extended until ${new Date(until).toISOString()}`,
      'false positive',
    ]);
    expect(b.transitions).toEqual([`${q.id}:extend`, `${q.id}:release`]);
    // A late write of an older version never undoes the release.
    const old = structuredClone(q);
    old.status = 'open';
    old.updatedAt = q.createdAt;
    await store.save(old);
    expect((await store.get(q.id))?.status).toBe('released');
    // Nor does new evidence written later by an instance that has not seen the release yet.
    old.updatedAt = clock.t + 5000;
    old.expiresAt = clock.t + HOUR;
    await store.save(old);
    expect((await store.get(q.id))?.status).toBe('released');
    // And that instance, on its poll, takes the release over its newer live copy.
    const c = instance();
    c.engine.restore(old);
    expect(check(c.engine, member)).toBe('SLUICE_QUARANTINED');
    await c.sync.poll();
    expect(check(c.engine, member)).toBeNull();
  });

  it('announces a change only after it is written, so a listener that polls at once sees it', async () => {
    const seen: (string | undefined)[] = [];
    const sync = new CaseSync({
      store,
      clock: now,
      publish: async () => {
        seen.push((await store.get(id))?.status);
      },
    });
    const engine = new AbuseEngine({
      clock: now,
      onStore: (c) => sync.save(c),
      onCase: (_c, t) => {
        if (t !== 'open') sync.announce();
      },
    });
    sync.attach(engine);
    campaign(engine, clock, 'kd', T0 + 50 * HOUR);
    const id = engine.listCases().find((c) => c.kind === 'quarantine')!.id;
    engine.release(id, 'carol');
    await sync.flush();
    expect(seen).toEqual(['released']);
  });

  it('persists an expiry without review', async () => {
    const a = instance();
    campaign(a.engine, clock, 'kc', T0 + 100 * HOUR);
    await a.sync.flush();
    const q = a.engine
      .listCases()
      .find((c) => c.kind === 'quarantine' && c.evidence.related.keys[0]?.startsWith('kc'))!;
    clock.t = q.expiresAt! + 1;
    a.engine.expire();
    await a.sync.flush();
    expect((await store.get(q.id))?.status).toBe('expired');
    expect((await store.live(clock.t)).map((c) => c.id)).not.toContain(q.id);
    expect(a.transitions).toContain(`${q.id}:expire`);
  });
});
