import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/core/audit/canonical-json.js';
import { AuditChain, canonicalEvent, GENESIS_HASH, hashEvent } from '../../../src/core/audit/chain.js';
import {
  type AuditCheckpoint,
  createCheckpointSigner,
  createCheckpointVerifier,
  makeCheckpoint,
} from '../../../src/core/audit/checkpoint.js';
import { ChainVerifier, verifyChain } from '../../../src/core/audit/verify-chain.js';
import type { AuditEvent, AuditEventInput } from '../../../src/core/ports.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = createCheckpointSigner(privateKey);
const verifySignature = createCheckpointVerifier(publicKey);

function input(i: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    at: 1_700_000_000_000 + i,
    requestId: `req_${i}`,
    keyId: 'k1',
    tenantId: 'acme',
    projectId: null,
    clientIp: '10.0.0.1',
    country: null,
    userAgent: 'openai-node/6',
    action: 'chat.create',
    model: 'gpt-4o',
    decision: 'allowed',
    reason: 'ok',
    policyVersion: 3,
    details: { limits: [{ id: 'rpm', remaining: 10 - (i % 10) }] },
    ...over,
  };
}

/** A chain of n events with a signed head checkpoint after every `batch` events (and at the end). */
function build(n: number, batch = 3, instance = 'gw-1'): { events: AuditEvent[]; cps: AuditCheckpoint[] } {
  const chain = new AuditChain(instance);
  const events: AuditEvent[] = [];
  const cps: AuditCheckpoint[] = [];
  for (let i = 1; i <= n; i++) {
    const e = chain.next(input(i));
    events.push(e);
    if (i % batch === 0 || i === n) {
      cps.push(makeCheckpoint(signer, { instance, kind: 'head', seq: e.seq, hash: e.hash, at: e.at }));
    }
  }
  return { events, cps };
}

const verify = (events: AuditEvent[], cps: AuditCheckpoint[]) =>
  verifyChain(events, cps, { verifySignature });

// Tampering as it would look after direct SQL on the table, read back ORDER BY seq.
const tamper = {
  edit(events: AuditEvent[], k: number): AuditEvent[] {
    return events.map((e) =>
      e.seq === k ? { ...e, reason: 'SLUICE_RATE_LIMITED', decision: 'throttled' } : e,
    );
  },
  editAndRehash(events: AuditEvent[], k: number): AuditEvent[] {
    return events.map((e) => {
      if (e.seq !== k) return e;
      const forged = { ...e, keyId: 'someone-else' };
      return { ...forged, hash: hashEvent(forged.prevHash, forged) };
    });
  },
  delete(events: AuditEvent[], k: number): AuditEvent[] {
    return events.filter((e) => e.seq !== k);
  },
  deleteRenumber(events: AuditEvent[], k: number): AuditEvent[] {
    return events.filter((e) => e.seq !== k).map((e) => (e.seq > k ? { ...e, seq: e.seq - 1 } : e));
  },
  insertRenumber(events: AuditEvent[], k: number): AuditEvent[] {
    const prev = events.find((e) => e.seq === k - 1);
    const body = { ...events[0]!, seq: k, requestId: 'forged', reason: 'ok' };
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const forged = { ...body, prevHash, hash: hashEvent(prevHash, body) };
    const shifted = events.map((e) => (e.seq >= k ? { ...e, seq: e.seq + 1 } : e));
    return [...shifted, forged].sort((a, b) => a.seq - b.seq);
  },
  swap(events: AuditEvent[], k: number): AuditEvent[] {
    return events
      .map((e) => (e.seq === k ? { ...e, seq: k + 1 } : e.seq === k + 1 ? { ...e, seq: k } : e))
      .sort((a, b) => a.seq - b.seq);
  },
};

describe('canonicalJson', () => {
  it('sorts keys at every depth and follows JSON value rules', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, NaN], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,null,null]},"b":1}',
    );
    expect(canonicalJson({ n: 10n, t: new Date(0) })).toBe('{"n":"10","t":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('throws on cycles', () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    expect(() => canonicalJson(o)).toThrow(/cyclic/);
  });

  it('is stable through a JSON round trip (what storage does)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('AuditChain', () => {
  it('numbers events from 1 and links each to the previous hash, starting at genesis', () => {
    const { events } = build(4);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(events[0]!.prevHash).toBe(GENESIS_HASH);
    for (let i = 1; i < events.length; i++) expect(events[i]!.prevHash).toBe(events[i - 1]!.hash);
    for (const e of events) {
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(hashEvent(e.prevHash, e)).toBe(e.hash);
    }
  });

  it('hash covers every field', () => {
    const e = new AuditChain('gw').next(input(1));
    const fields: (keyof AuditEvent)[] = [
      'seq',
      'instance',
      'at',
      'requestId',
      'keyId',
      'tenantId',
      'projectId',
      'clientIp',
      'country',
      'userAgent',
      'action',
      'model',
      'decision',
      'reason',
      'policyVersion',
      'details',
    ];
    for (const f of fields) {
      const changed = {
        ...e,
        [f]: f === 'details' ? { other: true } : typeof e[f] === 'number' ? 999 : 'changed',
      };
      expect(hashEvent(e.prevHash, changed), f).not.toBe(e.hash);
    }
    expect(hashEvent('f'.repeat(64), e)).not.toBe(e.hash);
  });

  it('writes the same text as generic canonical JSON of the hashed fields (property)', () => {
    const text = fc.option(fc.string(), { nil: null });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          instance: fc.string(),
          at: fc.integer(),
          requestId: text,
          keyId: text,
          tenantId: text,
          projectId: text,
          clientIp: text,
          country: text,
          userAgent: text,
          action: fc.string(),
          model: text,
          decision: fc.constantFrom('allowed', 'throttled', 'refused', 'error', 'admin', 'system'),
          reason: fc.string(),
          policyVersion: fc.option(fc.integer(), { nil: null }),
          details: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: null }),
        }),
        (e) => {
          expect(canonicalEvent(e as Parameters<typeof canonicalEvent>[0])).toBe(canonicalJson(e));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('resumes from a stored head', () => {
    const { events } = build(5);
    const chain = new AuditChain('gw-1');
    chain.resume({ seq: events[4]!.seq, hash: events[4]!.hash });
    const e6 = chain.next(input(6));
    expect(e6.seq).toBe(6);
    expect(e6.prevHash).toBe(events[4]!.hash);
    expect(verifyChain([...events, e6], [])).toMatchObject({ ok: true, lastSeq: 6 });
  });

  it('normalises inputs so that storage round-trips hash the same, and snapshots details', () => {
    const details: Record<string, unknown> = { n: 1, deep: { x: [1, 2] } };
    const e = new AuditChain('gw').next(
      input(1, { at: 1234.9, userAgent: 'a\u0000b', policyVersion: 2.7 as number, details }),
    );
    details.n = 2;
    expect(e.at).toBe(1234);
    expect(e.userAgent).toBe('a\uFFFDb');
    expect(e.policyVersion).toBe(2);
    expect(e.details).toEqual({ n: 1, deep: { x: [1, 2] } });
    const roundTripped = JSON.parse(JSON.stringify(e)) as AuditEvent;
    expect(hashEvent(roundTripped.prevHash, roundTripped)).toBe(e.hash);

    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    const bad = new AuditChain('gw').next(input(1, { details: cyclic }));
    expect(bad.details).toEqual({ error: 'details not serialisable' });
  });
});

describe('verifyChain', () => {
  it('accepts an untouched chain', () => {
    const { events, cps } = build(10);
    expect(verify(events, cps)).toEqual({
      ok: true,
      instance: 'gw-1',
      events: 10,
      firstSeq: 1,
      lastSeq: 10,
      checkpoints: 4,
    });
  });

  it('accepts an empty chain', () => {
    expect(verifyChain([], [], { verifySignature, instance: 'x' })).toMatchObject({ ok: true, events: 0 });
  });

  it.each([
    ['edit', 'edited'],
    ['editAndRehash', 'edited'],
    ['delete', 'deleted'],
    ['deleteRenumber', 'deleted'],
    ['insertRenumber', 'inserted'],
    ['swap', 'reordered'],
  ] as const)('%s of event 5 is reported as %s at seq 5', (op, problem) => {
    const { events, cps } = build(10);
    const r = verify(tamper[op](events, 5), cps);
    expect(r).toMatchObject({ ok: false, instance: 'gw-1', seq: 5, problem });
    expect(r.ok === false && r.message.length > 0).toBe(true);
  });

  it('names the event for every single tamper, anywhere in the chain (property)', () => {
    const ops = Object.keys(tamper) as (keyof typeof tamper)[];
    const expected = {
      edit: 'edited',
      editAndRehash: 'edited',
      delete: 'deleted',
      deleteRenumber: 'deleted',
      insertRenumber: 'inserted',
      swap: 'reordered',
    } as const;
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 24 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(...ops),
        fc.nat(),
        (n, batch, op, pick) => {
          // editAndRehash of the very last event is only caught as "rewritten since the last good head".
          const maxK = op === 'swap' || op === 'editAndRehash' ? n - 1 : n;
          const k = 1 + (pick % maxK);
          const { events, cps } = build(n, batch);
          const r = verify(tamper[op](events, k), cps);
          expect(r).toMatchObject({ ok: false, seq: k, problem: expected[op] });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a chain rewritten from an event to the end as edited, within the rewritten batch', () => {
    const { events, cps } = build(9, 3);
    const rewritten: AuditEvent[] = [];
    let prevHash = '';
    for (const e of events) {
      if (e.seq < 5) {
        rewritten.push(e);
        prevHash = e.hash;
        continue;
      }
      const body = e.seq === 5 ? { ...e, reason: 'forged' } : e;
      const hash = hashEvent(prevHash, body);
      rewritten.push({ ...body, prevHash, hash });
      prevHash = hash;
    }
    const r = verify(rewritten, cps);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problem).toBe('edited');
      expect(r.seq).toBeGreaterThanOrEqual(4); // the batch after the last good head (seq 3)
      expect(r.seq).toBeLessThanOrEqual(5);
    }
  });

  it('reports events after the last signed head as inserted', () => {
    const { events, cps } = build(6, 3);
    const chain = new AuditChain('gw-1', { seq: 6, hash: events[5]!.hash });
    const extra = chain.next(input(7, { reason: 'forged' }));
    expect(verify([...events, extra], cps)).toMatchObject({ ok: false, seq: 7, problem: 'inserted' });
    // Without signature checking, an unsigned tail is allowed.
    expect(verifyChain([...events, extra], cps)).toMatchObject({ ok: true, lastSeq: 7 });
  });

  it('reports tail deletion against the signed head', () => {
    const { events, cps } = build(6, 3);
    expect(verify(events.slice(0, 4), cps)).toMatchObject({ ok: false, seq: 5, problem: 'deleted' });
    expect(verify([], cps)).toMatchObject({ ok: false, seq: 1, problem: 'deleted' });
  });

  it('reports a forged or foreign-key checkpoint as a signature problem', () => {
    const { events, cps } = build(6, 3);
    const forged = cps.map((c) => (c.seq === 3 ? { ...c, at: c.at + 1 } : c));
    expect(verify(events, forged)).toMatchObject({ ok: false, seq: 3, problem: 'signature' });
    const other = createCheckpointSigner(generateKeyPairSync('ed25519').privateKey);
    const foreign = cps.map((c) => (c.seq === 6 ? makeCheckpoint(other, c) : c));
    expect(verify(events, foreign)).toMatchObject({ ok: false, seq: 6, problem: 'signature' });
    expect(verify(events, [])).toMatchObject({ ok: false, seq: 1, problem: 'signature' });
  });

  it('reports events out of order in the input as reordered', () => {
    const { events, cps } = build(6, 3);
    const shuffled = [...events];
    [shuffled[2], shuffled[3]] = [shuffled[3]!, shuffled[2]!];
    expect(verify(shuffled, cps)).toMatchObject({ ok: false, seq: 3, problem: 'reordered' });
  });

  it('starts from a prune checkpoint: the surviving events verify, a missing first one does not', () => {
    const { events, cps } = build(9, 3);
    const kept = events.slice(4); // seq 5..9 survive
    const prune = makeCheckpoint(signer, {
      instance: 'gw-1',
      kind: 'prune',
      seq: 5,
      hash: kept[0]!.prevHash,
      at: 1,
    });
    const liveCps = [...cps.filter((c) => c.seq >= 5), prune];
    expect(verify(kept, liveCps)).toMatchObject({ ok: true, firstSeq: 5, lastSeq: 9 });
    expect(verify(kept.slice(1), liveCps)).toMatchObject({ ok: false, seq: 5, problem: 'deleted' });
    expect(
      verify(
        kept,
        cps.filter((c) => c.seq >= 5),
      ),
    ).toMatchObject({ ok: false, seq: 1, problem: 'deleted' });
  });

  it('streams: a small lookahead gives the same verdicts as the whole array', () => {
    const { events, cps } = build(200, 7);
    const v = new ChainVerifier('gw-1', cps, { verifySignature, lookahead: 4 });
    for (const e of tamper.swap(events, 150)) v.push(e);
    expect(v.finish()).toMatchObject({ ok: false, seq: 150, problem: 'reordered' });
    const ok = new ChainVerifier('gw-1', cps, { verifySignature, lookahead: 4 });
    for (const e of events) ok.push(e);
    expect(ok.finish()).toMatchObject({ ok: true, events: 200 });
  });

  it('accepts checkpoints that arrive after their events were read (live writer)', () => {
    const { events, cps } = build(9, 3);
    // lookahead 1: events 1..8 are checked during push, before checkpoints 6 and 9 are known.
    const v = new ChainVerifier('gw-1', cps.slice(0, 1), { verifySignature, lookahead: 1 });
    for (const e of events) v.push(e);
    v.addCheckpoints(cps);
    expect(v.finish()).toMatchObject({ ok: true, lastSeq: 9, checkpoints: 3 });

    const bad = new ChainVerifier('gw-1', cps.slice(0, 1), { verifySignature, lookahead: 1 });
    for (const e of events) bad.push(e);
    bad.addCheckpoints([
      makeCheckpoint(signer, { instance: 'gw-1', kind: 'head', seq: 6, hash: 'f'.repeat(64), at: 1 }),
    ]);
    expect(bad.finish()).toMatchObject({ ok: false, seq: 6, problem: 'edited' });
  });
});
