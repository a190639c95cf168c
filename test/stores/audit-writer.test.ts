import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditChain } from '../../src/core/audit/chain.js';
import {
  type AuditCheckpoint,
  type AuditCheckpointStore,
  createCheckpointSigner,
} from '../../src/core/audit/checkpoint.js';
import { verifyAudit } from '../../src/core/audit/verify-audit.js';
import type { AuditEvent, AuditEventInput } from '../../src/core/ports.js';
import {
  type AuditOverflowInfo,
  AuditWriter,
  type AuditWriterOptions,
} from '../../src/stores/audit-writer.js';
import { SqlAuditStore } from '../../src/stores/sql/audit-store.js';
import { sqliteDatabase, type TestDatabase } from './sql/databases.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = createCheckpointSigner(privateKey);
const clock = { now: () => 42_000 };

const input = (i: number): AuditEventInput => ({
  at: 1_000 + i,
  requestId: `req_${i}`,
  keyId: 'k1',
  tenantId: 'acme',
  projectId: null,
  clientIp: null,
  country: null,
  userAgent: null,
  action: 'chat.create',
  model: 'demo-model',
  decision: 'allowed',
  reason: 'ok',
  policyVersion: 1,
  details: null,
});

/** Wraps the real store: counts transactions, can fail or hold writes. */
class SpyStore implements AuditCheckpointStore {
  appends = 0;
  failures = 0;
  failNext = 0;
  gate: Promise<void> | undefined;
  constructor(readonly inner: SqlAuditStore) {}
  async append(events: AuditEvent[], cp?: AuditCheckpoint): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      this.failures++;
      throw new Error('database is down');
    }
    this.appends++;
    await this.inner.append(events, cp);
  }
  head(i: string) {
    return this.inner.head(i);
  }
  read(o: Parameters<SqlAuditStore['read']>[0]) {
    return this.inner.read(o);
  }
  instances() {
    return this.inner.instances();
  }
  checkpoints(i: string) {
    return this.inner.checkpoints(i);
  }
}

describe('AuditWriter', () => {
  let tdb: TestDatabase;
  let store: SpyStore;
  const writers: AuditWriter[] = [];

  function writer(over: Partial<AuditWriterOptions> = {}): AuditWriter {
    const w = new AuditWriter({
      store,
      chain: new AuditChain('gw-1'),
      signer,
      clock,
      queueSize: 10_000,
      batchSize: 100,
      flushEveryMs: 50,
      ...over,
    });
    writers.push(w);
    return w;
  }

  const verified = async () => (await verifyAudit(store, publicKey)).instances;

  beforeEach(async () => {
    tdb = sqliteDatabase();
    store = new SpyStore(new SqlAuditStore(await tdb.open()));
  });

  afterEach(async () => {
    vi.useRealTimers();
    store.gate = undefined;
    store.failNext = 0;
    await Promise.all(writers.splice(0).map((w) => w.close()));
    await tdb.cleanup();
  });

  it('group commit: 1000 emits become 10 transactions of 100, all verifiable', async () => {
    const w = writer();
    for (let i = 1; i <= 1000; i++) w.emit(input(i));
    expect(w.stats()).toEqual({ queued: 1000, overflowed: 0, written: 0 });
    await w.flush();
    expect(store.appends).toBe(10);
    expect(w.stats()).toEqual({ queued: 0, overflowed: 0, written: 1000 });
    expect(await verified()).toEqual([
      { ok: true, instance: 'gw-1', events: 1000, firstSeq: 1, lastSeq: 1000, checkpoints: 10 },
    ]);
  });

  it('group commit: events emitted while a write is in flight share the next transaction', async () => {
    const w = writer();
    let open!: () => void;
    store.gate = new Promise((r) => {
      open = r;
    });
    w.emit(input(1));
    const first = w.flush();
    await new Promise((r) => setImmediate(r)); // the first write is now waiting on the gate
    for (let i = 2; i <= 60; i++) w.emit(input(i));
    store.gate = undefined;
    open();
    await first;
    await w.flush();
    expect(store.appends).toBe(2);
    expect(w.stats().written).toBe(60);
  });

  it('writes on its own after flushEveryMs, without a flush', async () => {
    vi.useFakeTimers();
    const w = writer({ flushEveryMs: 200 });
    w.emit(input(1));
    w.emit(input(2));
    await vi.advanceTimersByTimeAsync(150);
    expect(store.appends).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    await vi.waitFor(() => expect(w.stats().written).toBe(2));
    expect(store.appends).toBe(1);
  });

  it('a full batch is written without waiting for the timer', async () => {
    vi.useFakeTimers();
    const w = writer({ batchSize: 10, flushEveryMs: 60_000 });
    for (let i = 1; i <= 10; i++) w.emit(input(i));
    await vi.advanceTimersByTimeAsync(0);
    await vi.waitFor(() => expect(w.stats().written).toBe(10));
  });

  it('overflow is counted, reported, and recorded in the chain once there is room', async () => {
    const seen: AuditOverflowInfo[] = [];
    const w = writer({ queueSize: 10, batchSize: 5, onOverflow: (i) => seen.push(i) });
    for (let i = 1; i <= 15; i++) w.emit(input(i));
    expect(w.stats()).toEqual({ queued: 10, overflowed: 5, written: 0 });
    expect(seen).toEqual([{ dropped: 1, total: 1, recorded: false }]);

    await w.flush();
    expect(seen).toEqual([
      { dropped: 1, total: 1, recorded: false },
      { dropped: 5, total: 5, recorded: true },
    ]);
    const events = await store.read({ instance: 'gw-1' });
    expect(events).toHaveLength(11);
    expect(events[10]).toMatchObject({
      seq: 11,
      action: 'audit.overflow',
      decision: 'system',
      reason: 'audit.overflow',
      at: 42_000,
      details: { dropped: 5, firstAt: 42_000, lastAt: 42_000 },
    });
    expect(events.slice(0, 10).map((e) => e.requestId)).toEqual(
      Array.from({ length: 10 }, (_, i) => `req_${i + 1}`),
    );
    expect((await verified())[0]?.ok).toBe(true);

    // Normal service resumes and the total stays.
    w.emit(input(16));
    await w.flush();
    expect(w.stats()).toEqual({ queued: 0, overflowed: 5, written: 12 });
  });

  it('flush drains everything emitted before it, across many batches', async () => {
    const w = writer({ batchSize: 7 });
    for (let i = 1; i <= 250; i++) w.emit(input(i));
    await w.flush();
    expect((await store.read({ instance: 'gw-1' })).map((e) => e.requestId)).toEqual(
      Array.from({ length: 250 }, (_, i) => `req_${i + 1}`),
    );
    expect(store.appends).toBe(Math.ceil(250 / 7));
    await w.flush(); // nothing queued: resolves at once
  });

  it('a restarted writer resumes the chain from the store', async () => {
    const w1 = writer({ chain: new AuditChain('gw-1') });
    for (let i = 1; i <= 7; i++) w1.emit(input(i));
    await w1.close();
    const w2 = writer({ chain: new AuditChain('gw-1') });
    for (let i = 8; i <= 12; i++) w2.emit(input(i));
    await w2.flush();
    const events = await store.read({ instance: 'gw-1' });
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(events[7]!.prevHash).toBe(events[6]!.hash);
    expect(await verified()).toEqual([
      { ok: true, instance: 'gw-1', events: 12, firstSeq: 1, lastSeq: 12, checkpoints: 2 },
    ]);
  });

  it('keeps a failed batch queued and retries it with backoff; nothing is lost or doubled', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    const w = writer({ retryMinMs: 100, retryMaxMs: 1000, onError: (e) => errors.push(e) });
    await w.start();
    store.failNext = 3;
    for (let i = 1; i <= 5; i++) w.emit(input(i));
    let done = false;
    const flushed = w.flush().then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(250); // fails at 0 and 100; next try at 300
    expect(done).toBe(false);
    expect(store.failures).toBe(2);
    expect(w.stats().queued).toBe(5);
    await vi.advanceTimersByTimeAsync(1000);
    await flushed;
    expect(errors).toHaveLength(3);
    expect(store.appends).toBe(1);
    expect((await store.read({ instance: 'gw-1' })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    vi.useRealTimers();
    expect((await verified())[0]?.ok).toBe(true);
  });

  it('while the store is down, overflow is accounted and recorded after recovery', async () => {
    vi.useFakeTimers();
    const w = writer({ queueSize: 4, batchSize: 2, retryMinMs: 100, retryMaxMs: 100 });
    await w.start();
    store.failNext = 1_000;
    for (let i = 1; i <= 4; i++) w.emit(input(i));
    const flushed = w.flush();
    await vi.advanceTimersByTimeAsync(500);
    for (let i = 5; i <= 9; i++) w.emit(input(i)); // queue full: all 5 dropped
    expect(w.stats()).toMatchObject({ queued: 4, overflowed: 5, written: 0 });
    store.failNext = 0;
    await vi.advanceTimersByTimeAsync(200);
    await flushed;
    await w.flush();
    const events = await store.read({ instance: 'gw-1' });
    expect(events.map((e) => e.action)).toEqual([
      'chat.create',
      'chat.create',
      'chat.create',
      'chat.create',
      'audit.overflow',
    ]);
    expect(events[4]!.details).toMatchObject({ dropped: 5 });
  });

  it('two writers with one instance id do not corrupt the chain (CONFLICT, then resume)', async () => {
    const errors: unknown[] = [];
    const a = writer({ chain: new AuditChain('gw-1') });
    const b = writer({
      chain: new AuditChain('gw-1'),
      onError: (e) => errors.push(e),
      retryMinMs: 1,
      retryMaxMs: 1,
    });
    await a.start();
    await b.start(); // both resumed at an empty chain
    for (let i = 1; i <= 3; i++) a.emit(input(i));
    await a.flush();
    for (let i = 4; i <= 5; i++) b.emit(input(i));
    await b.flush();
    expect((errors[0] as { code?: string }).code).toBe('CONFLICT');
    expect((await store.read({ instance: 'gw-1' })).map((e) => e.requestId)).toEqual([
      'req_1',
      'req_2',
      'req_3',
      'req_4',
      'req_5',
    ]);
    expect((await verified())[0]?.ok).toBe(true);
  });

  it('emit never throws, even for malformed input or after close', async () => {
    const w = writer();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => w.emit({ ...input(1), details: cyclic })).not.toThrow();
    expect(() => w.emit({ at: Number.NaN } as unknown as AuditEventInput)).not.toThrow();
    await w.close();
    expect(() => w.emit(input(3))).not.toThrow();
    expect(w.stats()).toEqual({ queued: 0, overflowed: 1, written: 2 });
    const events = await store.read({ instance: 'gw-1' });
    expect(events[0]!.details).toEqual({ error: 'details not serialisable' });
    expect(events[1]).toMatchObject({ at: 0, action: '', reason: '', requestId: null });
    expect((await verified())[0]?.ok).toBe(true);
  });
});
