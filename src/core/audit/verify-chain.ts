/**
 * Verification of one instance's audit chain against its signed checkpoints. Names the FIRST event
 * (by seq) that was edited, deleted, inserted or reordered, or the first checkpoint whose signature
 * does not verify. Pure: events and checkpoints are passed in; streaming through `ChainVerifier`
 * keeps memory bounded for long chains.
 */
import type { AuditEvent } from '../ports.js';
import { type ChainHead, GENESIS_HASH, hashEvent } from './chain.js';
import type { AuditCheckpoint, CheckpointVerifier } from './checkpoint.js';

export type ChainProblem = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'signature';

export type ChainVerifyResult =
  | {
      ok: true;
      instance: string;
      /** Number of events checked. */
      events: number;
      firstSeq: number | null;
      lastSeq: number | null;
      /** Signed head checkpoints that matched the chain. */
      checkpoints: number;
    }
  | { ok: false; instance: string; seq: number; problem: ChainProblem; message: string };

/** Bound on the hashes kept for events past the last known checkpoint (a live tail is short). */
const MAX_UNSIGNED_TRACKED = 1_000_000;

type Failure = Extract<ChainVerifyResult, { ok: false }>;

export interface ChainVerifyOptions {
  /** Checks checkpoint signatures; when absent signatures are not checked (hashes and links still are). */
  verifySignature?: CheckpointVerifier;
  /**
   * Every event must be covered by a signed head checkpoint (events after the last one count as
   * inserted, a chain without any as unsigned). Default: true when `verifySignature` is given.
   * Correct for chains written by AuditWriter, which stores each batch with its checkpoint atomically.
   */
  requireSignedHead?: boolean;
  /** How many events ahead to look when classifying a break (reorders further apart read as edits). Default 64. */
  lookahead?: number;
  /** Instance name to report when there are no events. */
  instance?: string;
}

interface Prev extends ChainHead {
  /** True while `prev` is the chain's anchor (genesis or a prune checkpoint), not an event. */
  anchor: boolean;
}

/**
 * Feed one instance's events in stored order (ascending seq) with `push`, then call `finish`.
 * `push` returns false once a problem has been found (the caller may stop reading).
 */
export class ChainVerifier {
  readonly #instance: string;
  readonly #k: number;
  readonly #strict: boolean;
  readonly #heads = new Map<number, AuditCheckpoint>();
  readonly #headSeqs: number[];
  readonly #prunes: AuditCheckpoint[];
  readonly #verify: CheckpointVerifier | undefined;
  #badSig: AuditCheckpoint | undefined;
  /** Hashes of accepted events past the highest head checkpoint known when they were checked. */
  readonly #unsigned = new Map<number, string>();
  readonly #maxHeadAtStart: number;
  #lastPushed = 0;
  #buf: AuditEvent[] = [];
  #bi = 0;
  #prev: Prev | undefined;
  #firstSeq: number | null = null;
  #count = 0;
  #matched = 0;
  #lastGoodCp = 0;
  readonly #recent = new Map<string, number>();
  #failure: Failure | undefined;

  constructor(instance: string, checkpoints: AuditCheckpoint[], opts: ChainVerifyOptions = {}) {
    this.#instance = instance;
    this.#k = Math.max(1, opts.lookahead ?? 64);
    this.#strict = opts.requireSignedHead ?? opts.verifySignature !== undefined;
    this.#verify = opts.verifySignature;
    this.#headSeqs = [];
    this.#prunes = [];
    this.#addCheckpoints(checkpoints);
    this.#maxHeadAtStart = this.#maxHead() ?? 0;
  }

  /** The highest seq pushed so far (0 before any). */
  get lastPushedSeq(): number {
    return this.#lastPushed;
  }

  /** The highest signed head checkpoint seq known, or null. */
  get lastCheckpointSeq(): number | null {
    return this.#maxHead();
  }

  /**
   * Adds checkpoints read after the events started streaming (a live writer kept appending). Head
   * checkpoints for events already accepted are checked against their hashes.
   */
  addCheckpoints(checkpoints: AuditCheckpoint[]): void {
    const fresh = checkpoints.filter(
      (cp) => !(cp.kind === 'head' ? this.#heads.has(cp.seq) : this.#prunes.some((p) => p.seq === cp.seq)),
    );
    this.#addCheckpoints(fresh);
    if (this.#failure) return;
    for (const cp of fresh) {
      if (cp.kind !== 'head' || cp.instance !== this.#instance) continue;
      const hash = this.#unsigned.get(cp.seq);
      if (hash === undefined) continue;
      if (hash !== cp.hash) {
        this.#failure = fail(
          this.#instance,
          cp.seq,
          'edited',
          `event at seq ${cp.seq} does not match the hash its signed head checkpoint names`,
        );
        return;
      }
      this.#matched++;
      for (const s of this.#unsigned.keys()) if (s <= cp.seq) this.#unsigned.delete(s);
    }
  }

  #addCheckpoints(checkpoints: AuditCheckpoint[]): void {
    for (const cp of checkpoints) {
      if (cp.instance !== this.#instance) continue;
      if (this.#verify && !this.#verify(cp)) {
        if (!this.#badSig || cp.seq < this.#badSig.seq) this.#badSig = cp;
        continue;
      }
      if (cp.kind === 'head') {
        this.#heads.set(cp.seq, cp);
        this.#headSeqs.push(cp.seq);
      } else this.#prunes.push(cp);
    }
    this.#headSeqs.sort((a, b) => a - b);
    this.#prunes.sort((a, b) => a.seq - b.seq);
  }

  #maxHead(): number | null {
    return this.#headSeqs.length ? this.#headSeqs[this.#headSeqs.length - 1]! : null;
  }

  push(e: AuditEvent): boolean {
    if (this.#failure) return false;
    this.#lastPushed = e.seq;
    this.#buf.push(e);
    while (!this.#failure && this.#buf.length - this.#bi > this.#k) this.#step();
    if (this.#bi > 1024) {
      this.#buf = this.#buf.slice(this.#bi);
      this.#bi = 0;
    }
    return !this.#failure;
  }

  finish(): ChainVerifyResult {
    while (!this.#failure && this.#bi < this.#buf.length) this.#step();
    if (this.#failure) return this.#failure;
    const instance = this.#instance;
    const lastSeq = this.#prev && !this.#prev.anchor ? this.#prev.seq : null;
    const maxHead = this.#maxHead();
    if (this.#badSig) return this.#sigFailure(this.#badSig);
    if (lastSeq === null) {
      if (maxHead !== null) {
        const from = this.#prunes.length ? this.#prunes[this.#prunes.length - 1]!.seq : 1;
        return fail(instance, from, 'deleted', `signed head at seq ${maxHead} but no events are stored`);
      }
      return { ok: true, instance, events: 0, firstSeq: null, lastSeq: null, checkpoints: 0 };
    }
    if (maxHead !== null && maxHead > lastSeq) {
      return fail(
        instance,
        lastSeq + 1,
        'deleted',
        `the chain ends at seq ${lastSeq} but a signed head names seq ${maxHead}: events from seq ${lastSeq + 1} are missing`,
      );
    }
    if (this.#strict) {
      if (maxHead === null) {
        return fail(instance, this.#firstSeq!, 'signature', 'no signed head checkpoint covers this chain');
      }
      if (maxHead < lastSeq) {
        return fail(
          instance,
          maxHead + 1,
          'inserted',
          `events after the last signed head (seq ${maxHead}) up to seq ${lastSeq} were never signed`,
        );
      }
    }
    return {
      ok: true,
      instance,
      events: this.#count,
      firstSeq: this.#firstSeq,
      lastSeq,
      checkpoints: this.#matched,
    };
  }

  #sigFailure(cp: AuditCheckpoint): Failure {
    return fail(
      this.#instance,
      cp.seq,
      'signature',
      `the ${cp.kind} checkpoint at seq ${cp.seq} does not carry a valid signature from a trusted key`,
    );
  }

  #step(): void {
    const i = this.#bi++;
    const e = this.#buf[i]!;
    const problem = this.#check(e, i + 1);
    if (problem) this.#failure = problem;
  }

  #anchorFor(firstSeq: number): Prev {
    let anchor: Prev = { seq: 0, hash: GENESIS_HASH, anchor: true };
    for (const p of this.#prunes) {
      if (p.seq <= firstSeq) anchor = { seq: p.seq - 1, hash: p.hash, anchor: true };
    }
    return anchor;
  }

  #accept(e: AuditEvent, next: number): Failure | undefined {
    this.#prev = { seq: e.seq, hash: e.hash, anchor: false };
    this.#count++;
    this.#recent.set(e.hash, e.seq);
    if (this.#recent.size > this.#k) this.#recent.delete(this.#recent.keys().next().value!);
    const cp = this.#heads.get(e.seq);
    if (cp) {
      if (cp.hash !== e.hash) {
        const after = this.#buf[next];
        if (after && after.seq === e.seq + 1 && after.prevHash === e.prevHash) {
          return fail(
            this.#instance,
            e.seq,
            'inserted',
            `event at seq ${e.seq} is not part of the chain (seq ${after.seq} skips it)`,
          );
        }
        if (after && after.seq === e.seq + 1 && after.prevHash !== e.hash) {
          return fail(
            this.#instance,
            e.seq,
            'edited',
            `event at seq ${e.seq} was rewritten (its hash differs from the signed head)`,
          );
        }
        const from = Math.max(this.#lastGoodCp + 1, this.#firstSeq ?? 1);
        return fail(
          this.#instance,
          from,
          'edited',
          `events from seq ${from} to ${e.seq} were rewritten: the signed head at seq ${e.seq} names another hash`,
        );
      }
      this.#lastGoodCp = e.seq;
      this.#matched++;
    } else if (e.seq > this.#maxHeadAtStart && this.#unsigned.size < MAX_UNSIGNED_TRACKED) {
      this.#unsigned.set(e.seq, e.hash);
    }
    return undefined;
  }

  #check(e: AuditEvent, next: number): Failure | undefined {
    const inst = this.#instance;
    if (this.#badSig && this.#badSig.seq <= e.seq) return this.#sigFailure(this.#badSig);
    if (this.#prev === undefined) {
      this.#firstSeq = e.seq;
      this.#prev = this.#anchorFor(e.seq);
      this.#lastGoodCp = this.#prev.seq;
    }
    const prev = this.#prev;
    if (e.instance !== inst)
      return fail(inst, e.seq, 'inserted', `event at seq ${e.seq} belongs to instance ${e.instance}`);
    if (e.seq <= prev.seq) {
      return fail(inst, e.seq, 'reordered', `event seq ${e.seq} comes after seq ${prev.seq}`);
    }
    const selfOk = hashEvent(e.prevHash, e) === e.hash;
    const linkOk = e.prevHash === prev.hash;
    if (e.seq > prev.seq + 1) {
      const missing = prev.seq + 1;
      for (let j = next; j < this.#buf.length; j++) {
        if (this.#buf[j]!.seq === missing) {
          return fail(inst, missing, 'reordered', `event seq ${missing} comes after seq ${e.seq}`);
        }
      }
      if (linkOk) {
        return selfOk
          ? fail(
              inst,
              e.seq,
              'inserted',
              `event at seq ${e.seq} chains from seq ${prev.seq} but skips ${missing}`,
            )
          : fail(
              inst,
              e.seq,
              'edited',
              `event at seq ${e.seq} does not match its hash (its seq was changed)`,
            );
      }
      return fail(
        inst,
        missing,
        'deleted',
        missing === e.seq - 1
          ? `event at seq ${missing} is missing`
          : `events at seq ${missing} to ${e.seq - 1} are missing`,
      );
    }
    if (selfOk && linkOk) return this.#accept(e, next);

    // Classify the break. Order matters: each test below is only conclusive once the earlier ones failed.
    const buf = this.#buf;
    if (!linkOk) {
      for (let j = next; j < buf.length; j++) {
        if (buf[j]!.hash === e.prevHash) {
          return fail(
            inst,
            e.seq,
            'reordered',
            `event at seq ${e.seq} chains from the event now at seq ${buf[j]!.seq}`,
          );
        }
      }
    }
    const after = buf[next];
    if (after && after.seq === e.seq + 1 && after.prevHash === prev.hash) {
      return fail(
        inst,
        e.seq,
        'inserted',
        `event at seq ${e.seq} is not part of the chain (seq ${after.seq} skips it)`,
      );
    }
    if (!linkOk) {
      const back = this.#recent.get(e.prevHash);
      if (back !== undefined) {
        return fail(
          inst,
          back + 1,
          'inserted',
          `event at seq ${e.seq} chains from seq ${back}: the events from seq ${back + 1} were inserted`,
        );
      }
    }
    if (!selfOk) {
      for (let d = 1; d <= this.#k; d++) {
        if (hashEvent(e.prevHash, { ...e, seq: e.seq + d }) === e.hash) {
          return fail(
            inst,
            e.seq,
            'deleted',
            `event now at seq ${e.seq} was written as seq ${e.seq + d}: ${d} event(s) before it were deleted and the rest renumbered`,
          );
        }
        if (e.seq - d >= 1 && hashEvent(e.prevHash, { ...e, seq: e.seq - d }) === e.hash) {
          return fail(
            inst,
            e.seq - d,
            'inserted',
            `event now at seq ${e.seq} was written as seq ${e.seq - d}: ${d} event(s) were inserted before it`,
          );
        }
      }
      return fail(inst, e.seq, 'edited', `event at seq ${e.seq} does not match its hash`);
    }
    // Intact itself but not chained from its predecessor: the predecessor was rewritten with a fresh hash.
    if (!prev.anchor) {
      return fail(
        inst,
        prev.seq,
        'edited',
        `event at seq ${prev.seq} was rewritten (seq ${e.seq} chains from another hash)`,
      );
    }
    return fail(inst, e.seq, 'edited', `event at seq ${e.seq} does not chain from the start of the chain`);
  }
}

function fail(instance: string, seq: number, problem: ChainProblem, message: string): Failure {
  return { ok: false, instance, seq, problem, message };
}

/** Verifies a whole chain held in memory (events of one instance, in stored order). */
export function verifyChain(
  events: AuditEvent[],
  checkpoints: AuditCheckpoint[],
  opts: ChainVerifyOptions = {},
): ChainVerifyResult {
  const instance = events[0]?.instance ?? opts.instance ?? checkpoints[0]?.instance ?? '';
  const v = new ChainVerifier(instance, checkpoints, opts);
  for (const e of events) if (!v.push(e)) break;
  return v.finish();
}
