/**
 * Authentication on the data plane: API keys (`sk-sluice-<id>-<secret>`) verified against their
 * HMAC, cached briefly so the hot path does no database read and no HMAC per request.
 * Revocation and rotation invalidate the cache (`invalidate`), on every instance when Redis is configured.
 *
 * When the control store cannot answer (PostgreSQL down, SQLite locked), a key verified within the
 * last `graceMs` (policy `outage.keyGrace`, default 15 min) keeps being served from the record seen
 * then: its revocation, expiry and rotation state as of that read still apply, and a key invalidated
 * (revoked, rotated, changed) before the outage is no longer cached at all. A key never verified, or
 * verified longer ago, cannot be checked: the store error is thrown and the caller answers 503
 * SLUICE_STORE_UNAVAILABLE (not 401: the key may well be valid).
 */

import type { Principal as AuthzPrincipal } from '../core/authz/policy.js';
import { type Refusal, refuse } from '../core/errors.js';
import { hashesEqual, hashSecret, parseKey } from '../core/keys/api-key.js';
import type { ApiKeyRecord, Clock, ControlStore } from '../core/ports.js';

export interface Principal extends AuthzPrincipal {
  record: ApiKeyRecord;
  /** How the caller proved itself. */
  via: 'key' | 'token';
  /** Key thumbprint a DPoP-bound token is bound to. */
  jkt?: string;
}

/** The principal of a key record, built once per cache fill (the hot path reuses the object). */
export function principalOf(r: ApiKeyRecord): Principal {
  return {
    keyId: r.id,
    tenantId: r.tenantId,
    projectId: r.projectId ?? null,
    tier: r.tier,
    scopes: r.scopes ?? null,
    models: r.models ?? null,
    allowIps: r.allowIps ?? null,
    denyIps: r.denyIps ?? null,
    dpop: r.dpop ?? null,
    version: JSON.stringify([r.tier, r.scopes, r.models, r.allowIps, r.denyIps, r.dpop, r.projectId]),
    record: r,
    via: 'key',
    stepUp: false,
  };
}

interface CacheEntry {
  principal: Principal;
  /** Which stored hash the presented secret matched. */
  matched: 'current' | 'previous';
  until: number;
  /** When the store last confirmed this record: the outage grace counts from here. */
  verifiedAt: number;
}

/** A refusal for a key that exists: it names the key (`keyId`) so the audit event is not anonymous. */
export type KeyRefusal = Refusal;

export interface KeyAuthenticatorOptions {
  control: ControlStore;
  pepper: Buffer;
  clock: Clock;
  /** How long a verified key is trusted without reading the store again. 1 s: revocation reaches a lone instance within a second even without Redis. */
  ttlMs?: number;
  maxEntries?: number;
  /** How long after its last verification a key is still served while the store cannot answer (default 15 min). */
  graceMs?: number | (() => number);
  /** Called when a key is served from the cache because the store failed (for a metric or a log line). */
  onStale?: (err: unknown) => void;
  /**
   * The pepper being rotated out (docs/trust.md): until `until`, a secret hashed under it is accepted
   * and its stored hash rewritten under the current pepper, so keys in use move over by themselves.
   */
  previousPepper?: { pepper: Buffer; until: number };
  /** Called when such a rewrite fails (it is retried at the key's next use). */
  onRehashError?: (err: unknown) => void;
}

/** 15 min: long enough to ride out a database failover or restart, short enough to bound a missed revocation. */
export const DEFAULT_GRACE_MS = 15 * 60_000;

export class KeyAuthenticator {
  private readonly cache = new Map<string, CacheEntry>();
  /** Key ids that do not exist: refused without a database read until `until`. */
  private readonly unknown = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(private readonly opts: KeyAuthenticatorOptions) {
    this.ttlMs = opts.ttlMs ?? 1000;
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  /**
   * Resolves to the principal, or a Refusal (never throws for a bad key). Store errors throw, unless
   * the key was verified within the outage grace (then the cached record answers).
   */
  async authenticate(presented: string): Promise<Principal | KeyRefusal> {
    const now = this.opts.clock.now();
    let entry = this.cache.get(presented);
    if (!entry || entry.until <= now) {
      const parsed = parseKey(presented);
      if (!parsed) return refuse('SLUICE_INVALID_KEY');
      const unknownUntil = this.unknown.get(parsed.id);
      if (unknownUntil !== undefined && unknownUntil > now) return refuse('SLUICE_INVALID_KEY');
      let record: ApiKeyRecord | null | undefined;
      try {
        record = await this.opts.control.getKey(parsed.id);
      } catch (err) {
        const g = this.opts.graceMs;
        const grace = typeof g === 'function' ? g() : (g ?? DEFAULT_GRACE_MS);
        if (!entry || entry.verifiedAt + grace <= now) throw err;
        this.opts.onStale?.(err);
        return this.check(entry, now);
      }
      if (!record) {
        if (this.unknown.size >= this.maxEntries) this.unknown.clear();
        this.unknown.set(parsed.id, now + this.ttlMs);
        return refuse('SLUICE_INVALID_KEY');
      }
      const h = hashSecret(this.opts.pepper, parsed.secret);
      let matched: CacheEntry['matched'];
      if (hashesEqual(h, record.hash)) matched = 'current';
      else if (record.prevHash && hashesEqual(h, record.prevHash)) matched = 'previous';
      else {
        const old = this.opts.previousPepper;
        if (!old || old.until <= now) return refuse('SLUICE_INVALID_KEY');
        const oh = hashSecret(old.pepper, parsed.secret);
        if (hashesEqual(oh, record.hash)) matched = 'current';
        else if (record.prevHash && hashesEqual(oh, record.prevHash)) matched = 'previous';
        else return refuse('SLUICE_INVALID_KEY');
        // Pepper rotation: store this secret's hash under the current pepper.
        const patch = matched === 'current' ? { hash: h } : { prevHash: h };
        record = { ...record, ...patch };
        await this.opts.control.updateKey(record.id, patch).catch((err) => this.opts.onRehashError?.(err));
      }
      entry = { principal: principalOf(record), matched, until: now + this.ttlMs, verifiedAt: now };
      if (!this.cache.has(presented) && this.cache.size >= this.maxEntries)
        this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(presented, entry);
    }
    return this.check(entry, now);
  }

  private check(entry: CacheEntry, now: number): Principal | KeyRefusal {
    const r = entry.principal.record;
    const who = { keyId: r.id };
    if (r.revokedAt != null && r.revokedAt <= now) return refuse('SLUICE_KEY_REVOKED', undefined, who);
    if (r.expiresAt != null && r.expiresAt <= now) return refuse('SLUICE_KEY_EXPIRED', undefined, who);
    if (entry.matched === 'previous' && (r.prevExpiresAt == null || r.prevExpiresAt <= now)) {
      return refuse('SLUICE_KEY_EXPIRED', 'this secret was rotated and its grace period is over', who);
    }
    return entry.principal;
  }

  /** Drops cached state for a key id (after revoke, rotate, update, or a create that a negative entry hides). */
  invalidate(keyId: string): void {
    this.unknown.delete(keyId);
    for (const [k, e] of this.cache) if (e.principal.keyId === keyId) this.cache.delete(k);
  }

  invalidateAll(): void {
    this.cache.clear();
    this.unknown.clear();
  }
}

/** True for a Refusal (a KeyRefusal may name its key; a Principal always has `via`). */
export function isRefusal(x: unknown): x is Refusal {
  return (
    typeof x === 'object' &&
    x !== null &&
    'code' in x &&
    typeof (x as Refusal).code === 'string' &&
    !('via' in x)
  );
}
