/**
 * Tamper tests: a trail written by AuditWriter, then changed with direct SQL, as an attacker with
 * database access would. verifyAudit must fail and name the event; an untouched trail verifies.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditChain, hashEvent } from '../../../src/core/audit/chain.js';
import { createCheckpointSigner } from '../../../src/core/audit/checkpoint.js';
import { verifyAudit } from '../../../src/core/audit/verify-audit.js';
import type { AuditEventInput } from '../../../src/core/ports.js';
import { AuditWriter } from '../../../src/stores/audit-writer.js';
import { SqlAuditStore } from '../../../src/stores/sql/audit-store.js';
import { DIALECTS, type TestDatabase } from './databases.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = createCheckpointSigner(privateKey);

const input = (i: number): AuditEventInput => ({
  at: 1_000 + i,
  requestId: `req_${i}`,
  keyId: 'k1',
  tenantId: 'acme',
  projectId: null,
  clientIp: '192.0.2.1',
  country: null,
  userAgent: 'curl/8',
  action: 'chat.create',
  model: 'demo-model',
  decision: i % 3 === 0 ? 'refused' : 'allowed',
  reason: i % 3 === 0 ? 'SLUICE_SCOPE_DENIED' : 'ok',
  policyVersion: 1,
  details: { i },
});

describe.each(DIALECTS)('audit tamper detection ($name)', ({ make }) => {
  let tdb: TestDatabase;
  let store: SqlAuditStore;

  /** 12 events for `instance` through the real writer: batches of 4, each with a signed head. */
  async function trail(instance: string): Promise<void> {
    const writer = new AuditWriter({
      store,
      chain: new AuditChain(instance),
      signer,
      queueSize: 100,
      batchSize: 4,
      flushEveryMs: 1_000,
    });
    for (let i = 1; i <= 12; i++) writer.emit(input(i));
    await writer.close();
  }

  const verifyOne = async (instance: string) =>
    (await verifyAudit(store, publicKey, { instance })).instances[0];

  beforeAll(async () => {
    tdb = make();
    store = new SqlAuditStore(await tdb.open(), { signer });
  });

  afterAll(async () => {
    await tdb?.cleanup();
  });

  it('an untouched trail verifies', async () => {
    await trail('clean');
    expect(await verifyOne('clean')).toEqual({
      ok: true,
      instance: 'clean',
      events: 12,
      firstSeq: 1,
      lastSeq: 12,
      checkpoints: 3,
    });
  });

  it('editing an event is named', async () => {
    await trail('edit');
    await tdb.exec(
      `UPDATE audit_events SET decision = 'allowed', reason = 'ok' WHERE instance = $1 AND seq = 6`,
      ['edit'],
    );
    expect(await verifyOne('edit')).toMatchObject({ ok: false, seq: 6, problem: 'edited' });
  });

  it('editing an event and recomputing its hash is named', async () => {
    await trail('rehash');
    const [e] = await store.read({ instance: 'rehash', afterSeq: 4, limit: 1 });
    const forged = { ...e!, keyId: 'k-other' };
    await tdb.exec(`UPDATE audit_events SET key_id = $1, hash = $2 WHERE instance = $3 AND seq = 5`, [
      'k-other',
      hashEvent(forged.prevHash, forged),
      'rehash',
    ]);
    expect(await verifyOne('rehash')).toMatchObject({ ok: false, seq: 5, problem: 'edited' });
  });

  it('deleting an event is named', async () => {
    await trail('del');
    await tdb.exec(`DELETE FROM audit_events WHERE instance = $1 AND seq = 7`, ['del']);
    expect(await verifyOne('del')).toMatchObject({ ok: false, seq: 7, problem: 'deleted' });
  });

  it('deleting an event and renumbering the rest is named', async () => {
    await trail('delren');
    await tdb.exec(`DELETE FROM audit_events WHERE instance = $1 AND seq = 3`, ['delren']);
    await tdb.exec(`UPDATE audit_events SET seq = -seq WHERE instance = $1 AND seq > 3`, ['delren']);
    await tdb.exec(`UPDATE audit_events SET seq = -seq - 1 WHERE instance = $1 AND seq < 0`, ['delren']);
    expect(await verifyOne('delren')).toMatchObject({ ok: false, seq: 3, problem: 'deleted' });
  });

  it('deleting the newest events is named', async () => {
    await trail('tail');
    await tdb.exec(`DELETE FROM audit_events WHERE instance = $1 AND seq >= 11`, ['tail']);
    expect(await verifyOne('tail')).toMatchObject({ ok: false, seq: 11, problem: 'deleted' });
  });

  it('inserting a well-formed event (renumbering the rest) is named', async () => {
    await trail('ins');
    const [prev] = await store.read({ instance: 'ins', afterSeq: 4, limit: 1 }); // seq 5
    const body = new AuditChain('ins', { seq: 5, hash: prev!.hash }).next({ ...input(99), reason: 'forged' });
    await tdb.exec(`UPDATE audit_events SET seq = -seq WHERE instance = $1 AND seq >= 6`, ['ins']);
    await tdb.exec(`UPDATE audit_events SET seq = -seq + 1 WHERE instance = $1 AND seq < 0`, ['ins']);
    await store.append([body]);
    expect(body.seq).toBe(6);
    expect(await verifyOne('ins')).toMatchObject({ ok: false, seq: 6, problem: 'inserted' });
  });

  it('appending an unsigned event after the head is named', async () => {
    await trail('append');
    const head = await store.head('append');
    await store.append([new AuditChain('append', head).next(input(13))]);
    expect(await verifyOne('append')).toMatchObject({ ok: false, seq: 13, problem: 'inserted' });
  });

  it('reordering two events is named', async () => {
    await trail('swap');
    await tdb.exec(`UPDATE audit_events SET seq = -1 WHERE instance = $1 AND seq = 8`, ['swap']);
    await tdb.exec(`UPDATE audit_events SET seq = 8 WHERE instance = $1 AND seq = 9`, ['swap']);
    await tdb.exec(`UPDATE audit_events SET seq = 9 WHERE instance = $1 AND seq = -1`, ['swap']);
    expect(await verifyOne('swap')).toMatchObject({ ok: false, seq: 8, problem: 'reordered' });
  });

  it('a forged checkpoint is named', async () => {
    await trail('sig');
    await tdb.exec(`UPDATE audit_checkpoints SET at = at + 1 WHERE instance = $1 AND seq = 8`, ['sig']);
    expect(await verifyOne('sig')).toMatchObject({ ok: false, seq: 8, problem: 'signature' });
  });

  it('after a prune the trail verifies, and tampering with what is left is still named', async () => {
    await trail('pruned');
    const res = await store.prune(1_006, 50_000); // keeps at >= 1006, i.e. seq 6..12
    expect(res.find((r) => r.instance === 'pruned')).toEqual({ instance: 'pruned', firstSeq: 6, deleted: 5 });
    expect(await verifyOne('pruned')).toMatchObject({ ok: true, firstSeq: 6, lastSeq: 12 });
    await tdb.exec(`DELETE FROM audit_events WHERE instance = $1 AND seq = 6`, ['pruned']);
    expect(await verifyOne('pruned')).toMatchObject({ ok: false, seq: 6, problem: 'deleted' });
  });

  it('the whole report fails when one instance fails', async () => {
    const report = await verifyAudit(store, publicKey);
    expect(report.ok).toBe(false);
    expect(report.instances.find((r) => r.instance === 'clean')?.ok).toBe(true);
  });
});
