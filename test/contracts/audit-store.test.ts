/**
 * Audit store contract on SQLite and PostgreSQL: append/read/head/instances, checkpoints, idempotent
 * retries, conflicts, prune, and verifyAudit over the store.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditChain } from '../../src/core/audit/chain.js';
import {
  type AuditCheckpoint,
  createCheckpointSigner,
  makeCheckpoint,
} from '../../src/core/audit/checkpoint.js';
import { verifyAudit } from '../../src/core/audit/verify-audit.js';
import type { AuditEvent, AuditEventInput } from '../../src/core/ports.js';
import { SqlAuditStore } from '../../src/stores/sql/audit-store.js';
import { DIALECTS, type TestDatabase } from '../stores/sql/databases.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = createCheckpointSigner(privateKey);

function input(at: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    at,
    requestId: `req_${at}`,
    keyId: 'k1',
    tenantId: 'acme',
    projectId: 'p1',
    clientIp: '2001:db8::1',
    country: 'NL',
    userAgent: 'anthropic-sdk',
    action: 'chat.create',
    model: 'claude-3',
    decision: 'throttled',
    reason: 'SLUICE_RATE_LIMITED',
    policyVersion: 7,
    details: { limit: 'rpm', remaining: 0, nested: { list: [1, 'two', null, true] }, unicode: 'é✓' },
    ...over,
  };
}

/** Appends `ats.length` events to an instance's chain in batches, each with its signed head, like AuditWriter. */
async function writeChain(
  store: SqlAuditStore,
  instance: string,
  ats: number[],
  batch = 4,
): Promise<AuditEvent[]> {
  const head = await store.head(instance);
  const chain = new AuditChain(instance, head && { seq: head.seq, hash: head.hash });
  const all: AuditEvent[] = [];
  for (let i = 0; i < ats.length; i += batch) {
    const events = ats.slice(i, i + batch).map((at) => chain.next(input(at)));
    const last = events[events.length - 1]!;
    await store.append(events, headCp(last));
    all.push(...events);
  }
  return all;
}

function headCp(e: AuditEvent): AuditCheckpoint {
  return makeCheckpoint(signer, { instance: e.instance, kind: 'head', seq: e.seq, hash: e.hash, at: e.at });
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe.each(DIALECTS)('AuditStore contract ($name)', ({ make }) => {
  let tdb: TestDatabase;
  let store: SqlAuditStore;

  beforeAll(async () => {
    tdb = make();
    store = new SqlAuditStore(await tdb.open(), { signer });
  });

  afterAll(async () => {
    await tdb?.cleanup();
  });

  it('stores events exactly as chained and reads them back in chain order', async () => {
    const written = await writeChain(store, 'rt', range(1000, 6));
    written.push(
      ...(await (async () => {
        const chain = new AuditChain('rt', { seq: 6, hash: written[5]!.hash });
        const e = chain.next(
          input(2000, {
            requestId: null,
            keyId: null,
            tenantId: null,
            projectId: null,
            clientIp: null,
            country: null,
            userAgent: null,
            model: null,
            policyVersion: null,
            details: null,
          }),
        );
        await store.append([e], headCp(e));
        return [e];
      })()),
    );
    const read = await store.read({ instance: 'rt' });
    expect(read).toEqual(written);
    expect(await store.head('rt')).toEqual(written[6]);
    expect(await store.head('nobody')).toBeUndefined();
  });

  it('filters by time, seq and limit; without an instance orders by time', async () => {
    await writeChain(store, 'fa', [10, 30, 50]);
    await writeChain(store, 'fb', [20, 40]);
    expect((await store.read({ instance: 'fa', afterSeq: 1 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await store.read({ instance: 'fa', limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
    const window = await store.read({ since: 20, until: 50 });
    expect(
      window.filter((e) => e.instance === 'fa' || e.instance === 'fb').map((e) => [e.instance, e.at]),
    ).toEqual([
      ['fb', 20],
      ['fa', 30],
      ['fb', 40],
    ]);
    expect(await store.instances()).toEqual(expect.arrayContaining(['fa', 'fb']));
  });

  it('pages through all instances by time with a cursor', async () => {
    const T = 70_000_000; // a time no other test uses
    await writeChain(store, 'pa', [T, T, T + 1]);
    await writeChain(store, 'pb', [T, T + 2]);
    const seen: string[] = [];
    let after: { at: number; instance: string; seq: number } | undefined;
    for (;;) {
      const page = await store.read({ since: T, until: T + 100, limit: 2, after });
      if (page.length === 0) break;
      seen.push(...page.map((e) => `${e.instance}#${e.seq}@${e.at - T}`));
      after = page[page.length - 1];
    }
    expect(seen).toEqual(['pa#1@0', 'pa#2@0', 'pb#1@0', 'pa#3@1', 'pb#2@2']);
  });

  it('keeps checkpoints per instance in seq order', async () => {
    await writeChain(store, 'cp', range(1, 9), 4);
    const cps = await store.checkpoints('cp');
    expect(cps.map((c) => [c.kind, c.seq])).toEqual([
      ['head', 4],
      ['head', 8],
      ['head', 9],
    ]);
    expect(cps[0]!.keyId).toBe(signer.keyId);
    expect((await store.latestCheckpoint('cp'))?.seq).toBe(9);
  });

  it('treats a retried identical batch as done and a different event at a taken seq as CONFLICT', async () => {
    const chain = new AuditChain('dup');
    const events = [chain.next(input(1)), chain.next(input(2))];
    await store.append(events, headCp(events[1]!));
    await store.append(events, headCp(events[1]!)); // retry after a lost acknowledgement
    expect(await store.read({ instance: 'dup' })).toHaveLength(2);

    const other = new AuditChain('dup', { seq: 1, hash: events[0]!.hash }).next(
      input(99, { reason: 'other' }),
    );
    const forgedCp = headCp({ ...other, seq: 5 });
    const err = await store.append([other], forgedCp).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('CONFLICT');
    // Atomic: the checkpoint of the refused batch was not stored either.
    expect((await store.checkpoints('dup')).map((c) => c.seq)).toEqual([2]);
    expect((await store.read({ instance: 'dup' }))[1]).toEqual(events[1]);
  });

  it('stores large batches in one append', async () => {
    const events = await writeChain(store, 'big', range(1, 1100), 1100);
    expect(await store.read({ instance: 'big', afterSeq: 1099 })).toEqual([events[1099]]);
  });

  it('verifies every instance; prune keeps the trail verifiable and records a signed checkpoint', async () => {
    await writeChain(store, 'pr', range(100, 10), 3); // at 100..109, seq 1..10
    await writeChain(store, 'old', [1, 2, 3], 3); // all old: only the head survives
    const before = await verifyAudit(store, publicKey);
    expect(before.ok).toBe(true);
    expect(before.instances.find((r) => r.instance === 'pr')).toMatchObject({
      ok: true,
      events: 10,
      lastSeq: 10,
    });

    const pruned = await store.prune(105, 5000);
    expect(pruned).toEqual(
      expect.arrayContaining([
        { instance: 'pr', firstSeq: 6, deleted: 5 },
        { instance: 'old', firstSeq: 3, deleted: 2 },
      ]),
    );
    expect((await store.read({ instance: 'pr' })).map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
    expect((await store.head('old'))?.seq).toBe(3);
    const prCps = await store.checkpoints('pr');
    expect(prCps.filter((c) => c.kind === 'prune')).toEqual([
      expect.objectContaining({ kind: 'prune', seq: 6, at: 5000, signature: expect.any(String) }),
    ]);
    expect(prCps.filter((c) => c.kind === 'head').every((c) => c.seq >= 6)).toBe(true);

    const after = await verifyAudit(store, publicKey);
    expect(after.instances.filter((r) => !r.ok)).toEqual([]);
    expect(after.instances.find((r) => r.instance === 'pr')).toMatchObject({
      ok: true,
      firstSeq: 6,
      lastSeq: 10,
    });

    // The chain continues after a prune, and pruning again with nothing old is a no-op.
    await writeChain(store, 'pr', [200, 201]);
    expect((await store.prune(105, 6000)).find((r) => r.instance === 'pr')).toBeUndefined();
    expect((await verifyAudit(store, publicKey, { instance: 'pr' })).ok).toBe(true);
  });

  it('refuses to prune without a signer', async () => {
    const unsigned = new SqlAuditStore(store.sql);
    await expect(unsigned.prune(1, 1)).rejects.toThrow(/signer/);
  });
});
