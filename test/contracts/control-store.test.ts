/**
 * ControlStore and UsageLedger contract: the same tests against SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKeyRecord, UsageRecord } from '../../src/core/ports.js';
import { SqlControlStore } from '../../src/stores/sql/control-store.js';
import { SqlUsageLedger } from '../../src/stores/sql/usage-ledger.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

let seq = 0;
const uid = (p: string) => `${p}_${Date.now().toString(36)}_${++seq}`;

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'resolved';
}

function fullKey(id: string, tenantId: string): ApiKeyRecord {
  return {
    id,
    hash: 'a'.repeat(64),
    prevHash: 'b'.repeat(64),
    prevExpiresAt: 1_700_000_100_000,
    tenantId,
    projectId: 'p_1',
    tier: 'gold',
    name: 'ci key',
    owner: 'ops@example.com',
    notes: 'rotated weekly',
    scopes: ['chat.create', 'embeddings.create'],
    models: ['gpt-*'],
    allowIps: ['10.0.0.0/8'],
    denyIps: ['10.1.0.0/16'],
    dpop: 'required',
    totpSecret: 'JBSWY3DPEHPK3PXP',
    expiresAt: 1_800_000_000_000,
    revokedAt: null,
    createdAt: 1_700_000_000_000,
    lastUsedAt: 1_700_000_050_000,
    lastUsedIp: '10.0.0.7',
  };
}

describe.each(DIALECTS)('ControlStore contract ($name)', ({ make }) => {
  let tdb: TestDatabase;
  let store: SqlControlStore;
  let ledger: SqlUsageLedger;

  beforeAll(async () => {
    tdb = make();
    const sql = await tdb.open();
    store = new SqlControlStore(sql);
    ledger = new SqlUsageLedger(sql);
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it('migrate is idempotent', async () => {
    await store.migrate();
    await store.migrate();
    expect(await store.getTenant('nope')).toBeUndefined();
  });

  describe('tenants', () => {
    it('creates, reads and lists tenants oldest first', async () => {
      const a = uid('t');
      const b = uid('t');
      await store.createTenant({ id: b, name: 'Beta', tier: null, createdAt: 2000 });
      await store.createTenant({ id: a, name: 'Acme', tier: 'gold', createdAt: 1000 });
      expect(await store.getTenant(a)).toEqual({
        id: a,
        name: 'Acme',
        tier: 'gold',
        createdAt: 1000,
        deletedAt: null,
      });
      const ids = (await store.listTenants()).map((t) => t.id).filter((id) => id === a || id === b);
      expect(ids).toEqual([a, b]);
    });

    it('returns undefined for a missing tenant', async () => {
      expect(await store.getTenant(uid('missing'))).toBeUndefined();
    });

    it('refuses a duplicate id with CONFLICT', async () => {
      const id = uid('t');
      await store.createTenant({ id, name: 'One', createdAt: 1 });
      expect(await codeOf(store.createTenant({ id, name: 'Two', createdAt: 2 }))).toBe('CONFLICT');
      expect((await store.getTenant(id))?.name).toBe('One');
    });

    it('soft-deletes once and keeps the first deletion time', async () => {
      const id = uid('t');
      await store.createTenant({ id, name: 'Gone', createdAt: 1 });
      await store.deleteTenant(id, 500);
      await store.deleteTenant(id, 900);
      expect((await store.getTenant(id))?.deletedAt).toBe(500);
      expect((await store.listTenants()).find((t) => t.id === id)?.deletedAt).toBe(500);
      expect(await codeOf(store.deleteTenant(uid('missing'), 1))).toBe('NOT_FOUND');
    });
  });

  describe('projects', () => {
    it('round-trips scopes and models, lists by tenant', async () => {
      const t1 = uid('t');
      const t2 = uid('t');
      const p1 = uid('p');
      const p2 = uid('p');
      const p3 = uid('p');
      await store.createProject({
        id: p1,
        tenantId: t1,
        name: 'web',
        scopes: ['chat.create'],
        models: ['gpt-4o*'],
        createdAt: 1,
      });
      await store.createProject({
        id: p2,
        tenantId: t1,
        name: 'batch',
        scopes: null,
        models: null,
        createdAt: 2,
      });
      await store.createProject({ id: p3, tenantId: t2, name: 'other', createdAt: 3 });
      expect(await store.getProject(p1)).toEqual({
        id: p1,
        tenantId: t1,
        name: 'web',
        scopes: ['chat.create'],
        models: ['gpt-4o*'],
        createdAt: 1,
      });
      expect((await store.getProject(p3))?.scopes).toBeNull();
      expect((await store.listProjects(t1)).map((p) => p.id)).toEqual([p1, p2]);
      const all = (await store.listProjects()).map((p) => p.id);
      expect(all).toEqual(expect.arrayContaining([p1, p2, p3]));
      expect(await store.getProject(uid('missing'))).toBeUndefined();
      expect(await codeOf(store.createProject({ id: p1, tenantId: t2, name: 'dup', createdAt: 4 }))).toBe(
        'CONFLICT',
      );
    });
  });

  describe('keys', () => {
    it('round-trips every field', async () => {
      const k = fullKey(uid('k'), uid('t'));
      await store.createKey(k);
      expect(await store.getKey(k.id)).toEqual(k);
    });

    it('stores absent optional fields as null', async () => {
      const id = uid('k');
      await store.createKey({ id, hash: 'c'.repeat(64), tenantId: 't', tier: 'default', createdAt: 5 });
      const got = await store.getKey(id);
      expect(got).toMatchObject({
        id,
        tier: 'default',
        scopes: null,
        models: null,
        allowIps: null,
        dpop: null,
      });
      expect(got?.expiresAt).toBeNull();
      expect(got?.lastUsedAt).toBeNull();
    });

    it('refuses a duplicate key id with CONFLICT', async () => {
      const k = fullKey(uid('k'), uid('t'));
      await store.createKey(k);
      expect(await codeOf(store.createKey({ ...k, hash: 'd'.repeat(64) }))).toBe('CONFLICT');
      expect((await store.getKey(k.id))?.hash).toBe(k.hash);
    });

    it('lists by tenant and project, hiding revoked keys unless asked', async () => {
      const t = uid('t');
      const k1 = { ...fullKey(uid('k'), t), projectId: 'pa', createdAt: 1 };
      const k2 = { ...fullKey(uid('k'), t), projectId: 'pb', createdAt: 2 };
      const k3 = { ...fullKey(uid('k'), t), projectId: 'pa', createdAt: 3, revokedAt: 10 };
      const other = fullKey(uid('k'), uid('t'));
      for (const k of [k3, other, k2, k1]) await store.createKey(k);
      expect((await store.listKeys({ tenantId: t })).map((k) => k.id)).toEqual([k1.id, k2.id]);
      expect((await store.listKeys({ tenantId: t, includeRevoked: true })).map((k) => k.id)).toEqual([
        k1.id,
        k2.id,
        k3.id,
      ]);
      expect(
        (await store.listKeys({ tenantId: t, projectId: 'pa', includeRevoked: true })).map((k) => k.id),
      ).toEqual([k1.id, k3.id]);
      const all = (await store.listKeys()).map((k) => k.id);
      expect(all).toEqual(expect.arrayContaining([k1.id, k2.id, other.id]));
      expect(all).not.toContain(k3.id);
    });

    it('updates only the fields in the patch; null clears', async () => {
      const k = fullKey(uid('k'), uid('t'));
      await store.createKey(k);
      await store.updateKey(k.id, {
        revokedAt: 77,
        scopes: ['chat.create'],
        notes: null,
        prevHash: undefined,
      });
      expect(await store.getKey(k.id)).toEqual({ ...k, revokedAt: 77, scopes: ['chat.create'], notes: null });
      await store.updateKey(k.id, {
        hash: 'e'.repeat(64),
        prevHash: k.hash,
        prevExpiresAt: 99,
        models: null,
      });
      expect(await store.getKey(k.id)).toMatchObject({
        hash: 'e'.repeat(64),
        prevHash: k.hash,
        prevExpiresAt: 99,
        models: null,
      });
      await store.updateKey(k.id, {});
      expect(await codeOf(store.updateKey(uid('missing'), { revokedAt: 1 }))).toBe('NOT_FOUND');
      expect(await codeOf(store.updateKey(uid('missing'), {}))).toBe('NOT_FOUND');
    });

    it('touchKeys keeps the latest use per key and never goes backwards', async () => {
      const a = { ...fullKey(uid('k'), uid('t')), lastUsedAt: null, lastUsedIp: null };
      const b = { ...fullKey(uid('k'), uid('t')), lastUsedAt: 5000, lastUsedIp: '1.1.1.1' };
      await store.createKey(a);
      await store.createKey(b);
      await store.touchKeys([
        { id: a.id, at: 100, ip: '10.0.0.1' },
        { id: a.id, at: 300, ip: '10.0.0.3' },
        { id: a.id, at: 200, ip: '10.0.0.2' },
        { id: b.id, at: 4000, ip: '2.2.2.2' },
        { id: uid('missing'), at: 1, ip: null },
      ]);
      expect(await store.getKey(a.id)).toMatchObject({ lastUsedAt: 300, lastUsedIp: '10.0.0.3' });
      expect(await store.getKey(b.id)).toMatchObject({ lastUsedAt: 5000, lastUsedIp: '1.1.1.1' });
      await store.touchKeys([{ id: b.id, at: 6000, ip: null }]);
      expect(await store.getKey(b.id)).toMatchObject({ lastUsedAt: 6000, lastUsedIp: null });
      await store.touchKeys([]);
    });
  });

  describe('policy versions', () => {
    it('numbers versions, returns the latest, lists without source', async () => {
      expect(await store.latestPolicyVersion()).toBeUndefined();
      const v1 = await store.savePolicyVersion({
        hash: 'h1',
        source: 'tiers: {}\n',
        author: 'ann',
        message: 'first',
        createdAt: 10,
      });
      const v2 = await store.savePolicyVersion({
        hash: 'h2',
        source: 'tiers: {a: 1}\n',
        author: 'bob',
        message: 'second',
        createdAt: 20,
      });
      expect(v1).toEqual({
        version: 1,
        hash: 'h1',
        source: 'tiers: {}\n',
        author: 'ann',
        message: 'first',
        createdAt: 10,
      });
      expect(v2.version).toBe(2);
      expect(await store.getPolicyVersion(1)).toEqual(v1);
      expect(await store.getPolicyVersion(99)).toBeUndefined();
      expect(await store.latestPolicyVersion()).toEqual(v2);
      expect(await store.listPolicyVersions()).toEqual([
        { version: 1, hash: 'h1', author: 'ann', message: 'first', createdAt: 10 },
        { version: 2, hash: 'h2', author: 'bob', message: 'second', createdAt: 20 },
      ]);
    });

    it('gives concurrent saves distinct consecutive numbers', async () => {
      const before = (await store.latestPolicyVersion())?.version ?? 0;
      const saved = await Promise.all(
        [1, 2, 3, 4, 5].map((i) =>
          store.savePolicyVersion({
            hash: `c${i}`,
            source: `# ${i}`,
            author: 'ci',
            message: `c${i}`,
            createdAt: 100 + i,
          }),
        ),
      );
      expect(saved.map((v) => v.version).sort((x, y) => x - y)).toEqual(
        [1, 2, 3, 4, 5].map((i) => before + i),
      );
      for (const v of saved) expect((await store.getPolicyVersion(v.version))?.hash).toBe(v.hash);
    });
  });

  describe('admin users', () => {
    it('creates, finds by token hash, lists; duplicate id or token hash is a CONFLICT', async () => {
      const id = uid('adm');
      const tokenHash = uid('tok');
      const u = {
        id,
        name: 'root',
        role: 'admin' as const,
        tokenHash,
        totpSecret: null,
        createdAt: 1,
        disabledAt: null,
      };
      await store.createAdminUser(u);
      await store.createAdminUser({
        id: uid('adm'),
        name: 'aud',
        role: 'auditor',
        tokenHash: uid('tok'),
        createdAt: 2,
      });
      expect(await store.getAdminUserByTokenHash(tokenHash)).toEqual(u);
      expect(await store.getAdminUserByTokenHash('nope')).toBeUndefined();
      expect((await store.listAdminUsers()).map((x) => x.id)).toContain(id);
      expect(await codeOf(store.createAdminUser({ ...u, tokenHash: uid('tok') }))).toBe('CONFLICT');
      expect(await codeOf(store.createAdminUser({ ...u, id: uid('adm') }))).toBe('CONFLICT');
    });
  });

  describe('usage ledger', () => {
    const H = 3_600_000;
    const D = 86_400_000;
    const base = 20_000 * D; // a UTC midnight
    const tenant = uid('t');
    const row = (over: Partial<UsageRecord>): UsageRecord => ({
      requestId: uid('req'),
      at: base,
      keyId: 'k1',
      tenantId: tenant,
      projectId: 'p1',
      model: 'gpt-4o',
      action: 'chat.create',
      upstream: 'openai',
      inputTokens: 10,
      outputTokens: 5,
      images: 0,
      usd: 0.25,
      status: 200,
      latencyMs: 12.5,
      ...over,
    });

    beforeAll(async () => {
      await ledger.record([
        row({ at: base + 10 }),
        row({ at: base + H - 1, inputTokens: 20, outputTokens: 7, usd: 0.5 }),
        row({ at: base + H + 5, keyId: 'k2', projectId: null, model: 'claude-3', images: 2, usd: 1 }),
        row({ at: base + D + 1, keyId: 'k2', inputTokens: 1000, outputTokens: 1, usd: 2 }),
        row({ at: base + 2 * D, keyId: 'k1' }), // == until below: excluded
        row({ at: base + 30, tenantId: 'someone-else', keyId: 'k9' }),
      ]);
    });

    it('sums per key and hour, inside [since, until)', async () => {
      const rows = await ledger.query({
        groupBy: 'key',
        bucket: 'hour',
        since: base,
        until: base + 2 * D,
        tenantId: tenant,
      });
      expect(rows).toEqual([
        {
          group: 'k1',
          bucketStart: base,
          requests: 2,
          inputTokens: 30,
          outputTokens: 12,
          images: 0,
          usd: 0.75,
        },
        {
          group: 'k2',
          bucketStart: base + H,
          requests: 1,
          inputTokens: 10,
          outputTokens: 5,
          images: 2,
          usd: 1,
        },
        {
          group: 'k2',
          bucketStart: base + D,
          requests: 1,
          inputTokens: 1000,
          outputTokens: 1,
          images: 0,
          usd: 2,
        },
      ]);
    });

    it('groups by tenant and day; tenant filter is optional', async () => {
      const rows = await ledger.query({ groupBy: 'tenant', bucket: 'day', since: base, until: base + 2 * D });
      expect(rows.filter((r) => r.group === tenant)).toEqual([
        {
          group: tenant,
          bucketStart: base,
          requests: 3,
          inputTokens: 40,
          outputTokens: 17,
          images: 2,
          usd: 1.75,
        },
        {
          group: tenant,
          bucketStart: base + D,
          requests: 1,
          inputTokens: 1000,
          outputTokens: 1,
          images: 0,
          usd: 2,
        },
      ]);
      expect(rows.find((r) => r.group === 'someone-else')?.requests).toBe(1);
    });

    it('groups by project (no project as "") and by model, with a key filter', async () => {
      const byProject = await ledger.query({
        groupBy: 'project',
        bucket: 'day',
        since: base,
        until: base + D,
        tenantId: tenant,
      });
      expect(byProject.map((r) => [r.group, r.requests])).toEqual([
        ['', 1],
        ['p1', 2],
      ]);
      const byModel = await ledger.query({
        groupBy: 'model',
        bucket: 'day',
        since: base,
        until: base + 3 * D,
        tenantId: tenant,
        keyId: 'k2',
      });
      expect(byModel.map((r) => [r.group, r.bucketStart, r.requests])).toEqual([
        ['claude-3', base, 1],
        ['gpt-4o', base + D, 1],
      ]);
    });

    it('a batch is all or none: a batch that fails leaves nothing behind', async () => {
      const good = row({ at: base + 5 * D, keyId: 'katomic' });
      // A row that violates NOT NULL fails the whole transaction.
      const bad = { ...row({ at: base + 5 * D + 1, keyId: 'katomic' }), model: null as unknown as string };
      await expect(ledger.record([good, bad])).rejects.toThrow();
      const q = {
        groupBy: 'key' as const,
        bucket: 'day' as const,
        since: base + 5 * D,
        until: base + 6 * D,
        keyId: 'katomic',
      };
      expect(await ledger.query(q)).toEqual([]);
      await ledger.record([good]);
      expect((await ledger.query(q))[0]).toMatchObject({ group: 'katomic', requests: 1, inputTokens: 10 });
      await ledger.record([]);
    });

    it('records a large batch in one call', async () => {
      const many = Array.from({ length: 1200 }, (_, i) => row({ at: base + 10 * D + i, keyId: 'kbulk' }));
      await ledger.record(many);
      const rows = await ledger.query({
        groupBy: 'key',
        bucket: 'day',
        since: base + 10 * D,
        until: base + 11 * D,
        keyId: 'kbulk',
      });
      expect(rows[0]?.requests).toBe(1200);
      expect(rows[0]?.inputTokens).toBe(12_000);
    });
  });
});
