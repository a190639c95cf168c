/**
 * The audit hash chain. Each event's `hash` is SHA-256 over the previous event's hash and the
 * canonical JSON of every other field, so editing, deleting, inserting or reordering a stored event
 * breaks the chain at that point. Chains are per instance; the first event chains from 64 zeros.
 * Pure: no clock, no disk.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, AuditEventInput } from '../ports.js';
import { canonicalJson } from './canonical-json.js';

export const GENESIS_HASH = '0'.repeat(64);

/** The fields a hash covers besides `prevHash`, in a fixed list: extra properties never leak into a hash. */
export type HashedEvent = Omit<AuditEvent, 'hash' | 'prevHash'>;

/** Where a chain stands: the seq and hash of its last event (seq 0 and GENESIS_HASH when empty). */
export interface ChainHead {
  seq: number;
  hash: string;
}

function hashedBody(e: HashedEvent): Record<string, unknown> {
  return {
    seq: e.seq,
    instance: e.instance,
    at: e.at,
    requestId: e.requestId ?? null,
    keyId: e.keyId ?? null,
    tenantId: e.tenantId ?? null,
    projectId: e.projectId ?? null,
    clientIp: e.clientIp ?? null,
    country: e.country ?? null,
    userAgent: e.userAgent ?? null,
    action: e.action,
    model: e.model ?? null,
    decision: e.decision,
    reason: e.reason,
    policyVersion: e.policyVersion ?? null,
    details: e.details ?? null,
  };
}

/** The canonical text of an event (without prevHash and hash). */
export function canonicalEvent(e: HashedEvent): string {
  return canonicalJson(hashedBody(e));
}

/** SHA-256 hex over `prevHash`, a newline, and the canonical JSON of the event's other fields. */
export function hashEvent(prevHash: string, event: HashedEvent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalEvent(event)).digest('hex');
}

/** Recomputes an event's hash from its stored fields and compares. */
export function eventHashMatches(e: AuditEvent): boolean {
  return hashEvent(e.prevHash, e) === e.hash;
}

// PostgreSQL text cannot hold NUL; replacing it before hashing keeps what is stored equal to what is hashed.
function text(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v ?? '');
  return s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
}

function textOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : text(v);
}

function detailsOf(v: unknown): Record<string, unknown> | null {
  if (v === null || v === undefined) return null;
  try {
    // A deep copy through canonical JSON: later mutation by the caller cannot change what was hashed,
    // and what is read back from storage hashes identically.
    const parsed = JSON.parse(canonicalJson(v)) as unknown;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    return { value: parsed };
  } catch {
    return { error: 'details not serialisable' };
  }
}

/**
 * Assigns seq, instance, prevHash and hash to events of one instance's chain. Normalises each input
 * (integer `at` and `policyVersion`, strings for text fields, details deep-copied to plain JSON) so
 * that `next` never throws and what storage gives back hashes to the same value.
 */
export class AuditChain {
  #seq: number;
  #hash: string;

  constructor(
    readonly instance: string,
    head?: ChainHead,
  ) {
    this.#seq = head?.seq ?? 0;
    this.#hash = head?.hash ?? GENESIS_HASH;
  }

  get head(): ChainHead {
    return { seq: this.#seq, hash: this.#hash };
  }

  /** Continues from a stored head (after a restart), or from genesis when undefined. */
  resume(head: ChainHead | undefined): void {
    this.#seq = head?.seq ?? 0;
    this.#hash = head?.hash ?? GENESIS_HASH;
  }

  next(input: AuditEventInput): AuditEvent {
    const at = Number(input.at);
    const pv =
      input.policyVersion === null || input.policyVersion === undefined ? NaN : Number(input.policyVersion);
    const body: HashedEvent = {
      seq: this.#seq + 1,
      instance: this.instance,
      at: Number.isFinite(at) ? Math.floor(at) : 0,
      requestId: textOrNull(input.requestId),
      keyId: textOrNull(input.keyId),
      tenantId: textOrNull(input.tenantId),
      projectId: textOrNull(input.projectId),
      clientIp: textOrNull(input.clientIp),
      country: textOrNull(input.country),
      userAgent: textOrNull(input.userAgent),
      action: text(input.action),
      model: textOrNull(input.model),
      decision: text(input.decision) as AuditEvent['decision'],
      reason: text(input.reason),
      policyVersion: Number.isFinite(pv) ? Math.trunc(pv) : null,
      details: detailsOf(input.details),
    };
    const prevHash = this.#hash;
    const hash = hashEvent(prevHash, body);
    this.#seq = body.seq;
    this.#hash = hash;
    return { ...body, prevHash, hash };
  }
}
