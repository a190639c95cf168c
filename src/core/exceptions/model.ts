/**
 * Temporary exceptions: a developer asks for a higher limit, an extra model or an extra scope for a
 * bounded time, with a justification; an operator approves (possibly narrowed), denies, or later
 * revokes. Pure: validation, state transitions and expiry are functions of the record and `now`;
 * nothing here reads a clock or a store.
 *
 * Life of a record:
 *   pending  --approve-->  approved  --(now >= expiresAt)-->  expired
 *   pending  --deny------> denied
 *   pending  --(now >= requestExpiresAt)--> expired           (nobody answered)
 *   approved --revoke----> revoked
 * Expiry needs no write: `statusAt` derives it from the timestamps, so an approved exception stops
 * applying at `expiresAt` on every instance whether or not a sweep has stored `expired` yet.
 */

export type ExceptionStatus = 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';

/** One limit raised: the policy limit id (e.g. `rpm`) and the amount per window while it lasts. */
export interface LimitGrant {
  id: string;
  limit: number;
}

/** What an exception asks for or grants. Every list may be empty; at least one entry overall. */
export interface ExceptionGrant {
  limits: LimitGrant[];
  /** Model names or globs (`gpt-4o*`) the key may use on top of what the policy allows. */
  models: string[];
  /** Actions (`images.generate`, `tasks.*`) on top of what the policy allows. */
  scopes: string[];
}

export interface ExceptionRecord {
  id: string;
  tenantId: string;
  /** The key it applies to; null applies to every key of the tenant. */
  keyId: string | null;
  /** Key that asked (the developer's identity on the data plane). */
  requestedBy: string;
  justification: string;
  requested: ExceptionGrant;
  /** What the operator granted (equal to or narrower than `requested`); null until approved. */
  granted: ExceptionGrant | null;
  /** Duration asked for; on approval, the duration granted. */
  durationMs: number;
  status: ExceptionStatus;
  createdAt: number;
  /** A pending request expires unanswered at this time. */
  requestExpiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  note: string | null;
  /** Approved: when it stops applying. */
  expiresAt: number | null;
  updatedAt: number;
}

export interface ExceptionPolicy {
  maxDurationMs: number;
  pendingTtlMs: number;
  stepUpAbove: { durationMs: number; factor: number };
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const LIMIT_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const PATTERN = /^[A-Za-z0-9_.:@/*-]{1,128}$/;
const MAX_ENTRIES = 20;
const MAX_JUSTIFICATION = 2000;
const MIN_JUSTIFICATION = 10;

/** The status as of `now`: approved and pending records past their end are expired. */
export function statusAt(r: ExceptionRecord, now: number): ExceptionStatus {
  if (r.status === 'approved' && r.expiresAt !== null && now >= r.expiresAt) return 'expired';
  if (r.status === 'pending' && now >= r.requestExpiresAt) return 'expired';
  return r.status;
}

/** True while the record's grant applies. */
export function isActive(r: ExceptionRecord, now: number): boolean {
  return statusAt(r, now) === 'approved' && r.granted !== null;
}

function parseGrant(v: unknown): Result<ExceptionGrant> {
  if (typeof v !== 'object' || v === null) return { ok: false, error: 'expected an object' };
  const o = v as Record<string, unknown>;
  const limits: LimitGrant[] = [];
  if (o.limits !== undefined) {
    if (!Array.isArray(o.limits) || o.limits.length > MAX_ENTRIES)
      return { ok: false, error: `"limits" must be a list of at most ${MAX_ENTRIES} {id, limit}` };
    for (const l of o.limits) {
      const e = l as { id?: unknown; limit?: unknown };
      if (typeof e?.id !== 'string' || !LIMIT_ID.test(e.id))
        return { ok: false, error: '"limits[].id" must be a limit id from the policy' };
      if (typeof e.limit !== 'number' || !Number.isFinite(e.limit) || e.limit <= 0)
        return { ok: false, error: '"limits[].limit" must be a positive number' };
      if (limits.some((x) => x.id === e.id)) return { ok: false, error: `limit "${e.id}" appears twice` };
      limits.push({ id: e.id, limit: e.limit });
    }
  }
  const list = (name: 'models' | 'scopes'): Result<string[]> => {
    const x = o[name];
    if (x === undefined) return { ok: true, value: [] };
    if (
      !Array.isArray(x) ||
      x.length > MAX_ENTRIES ||
      !x.every((s) => typeof s === 'string' && PATTERN.test(s))
    )
      return { ok: false, error: `"${name}" must be a list of at most ${MAX_ENTRIES} names or globs` };
    return { ok: true, value: [...new Set(x as string[])] };
  };
  const models = list('models');
  if (!models.ok) return models;
  const scopes = list('scopes');
  if (!scopes.ok) return scopes;
  if (limits.length + models.value.length + scopes.value.length === 0)
    return { ok: false, error: 'ask for at least one limit, model or scope' };
  return { ok: true, value: { limits, models: models.value, scopes: scopes.value } };
}

/** Input of a developer's request, as sent to `POST /sluice/v1/exceptions`. */
export interface ExceptionRequestInput {
  limits?: unknown;
  models?: unknown;
  scopes?: unknown;
  justification?: unknown;
  /** Seconds. */
  duration?: unknown;
  /** True: for every key of the tenant; default: only the calling key. */
  tenantWide?: unknown;
}

/** Validates a request and builds the pending record. */
export function newRequest(
  input: ExceptionRequestInput,
  who: { id: string; tenantId: string; keyId: string },
  policy: ExceptionPolicy,
  now: number,
): Result<ExceptionRecord> {
  const grant = parseGrant(input);
  if (!grant.ok) return grant;
  if (typeof input.justification !== 'string' || input.justification.trim().length < MIN_JUSTIFICATION)
    return { ok: false, error: `"justification" must say why, in at least ${MIN_JUSTIFICATION} characters` };
  if (input.justification.length > MAX_JUSTIFICATION)
    return { ok: false, error: `"justification" is longer than ${MAX_JUSTIFICATION} characters` };
  if (typeof input.duration !== 'number' || !Number.isInteger(input.duration) || input.duration <= 0)
    return { ok: false, error: '"duration" must be a whole number of seconds' };
  const durationMs = input.duration * 1000;
  if (durationMs > policy.maxDurationMs)
    return {
      ok: false,
      error: `"duration" is longer than the policy allows (${Math.floor(policy.maxDurationMs / 1000)} s)`,
    };
  if (input.tenantWide !== undefined && typeof input.tenantWide !== 'boolean')
    return { ok: false, error: '"tenantWide" must be true or false' };
  return {
    ok: true,
    value: {
      id: who.id,
      tenantId: who.tenantId,
      keyId: input.tenantWide === true ? null : who.keyId,
      requestedBy: who.keyId,
      justification: input.justification.trim(),
      requested: grant.value,
      granted: null,
      durationMs,
      status: 'pending',
      createdAt: now,
      requestExpiresAt: now + policy.pendingTtlMs,
      decidedAt: null,
      decidedBy: null,
      note: null,
      expiresAt: null,
      updatedAt: now,
    },
  };
}

/** What an operator may send with an approval: narrower limits, fewer models or scopes, a shorter duration. */
export interface ApprovalInput {
  limits?: unknown;
  models?: unknown;
  scopes?: unknown;
  /** Seconds; default: the duration requested. */
  duration?: unknown;
  note?: unknown;
}

/**
 * The grant an approval gives: what was requested, narrowed by the operator's input. Narrowing only:
 * a granted limit may not exceed the requested one, and models, scopes and limit ids must be among
 * those requested.
 */
export function approvedGrant(
  r: ExceptionRecord,
  input: ApprovalInput,
  policy: ExceptionPolicy,
): Result<{ grant: ExceptionGrant; durationMs: number }> {
  let grant = r.requested;
  if (input.limits !== undefined || input.models !== undefined || input.scopes !== undefined) {
    const g = parseGrant({
      limits: input.limits ?? r.requested.limits,
      models: input.models ?? r.requested.models,
      scopes: input.scopes ?? r.requested.scopes,
    });
    if (!g.ok) return g;
    for (const l of g.value.limits) {
      const asked = r.requested.limits.find((x) => x.id === l.id);
      if (!asked) return { ok: false, error: `limit "${l.id}" was not requested` };
      if (l.limit > asked.limit)
        return { ok: false, error: `limit "${l.id}" can be narrowed, not raised above ${asked.limit}` };
    }
    for (const m of g.value.models)
      if (!r.requested.models.includes(m)) return { ok: false, error: `model "${m}" was not requested` };
    for (const s of g.value.scopes)
      if (!r.requested.scopes.includes(s)) return { ok: false, error: `scope "${s}" was not requested` };
    grant = g.value;
  }
  let durationMs = r.durationMs;
  if (input.duration !== undefined) {
    if (typeof input.duration !== 'number' || !Number.isInteger(input.duration) || input.duration <= 0)
      return { ok: false, error: '"duration" must be a whole number of seconds' };
    durationMs = input.duration * 1000;
    if (durationMs > r.durationMs) return { ok: false, error: '"duration" can be shortened, not extended' };
  }
  if (durationMs > policy.maxDurationMs) durationMs = policy.maxDurationMs;
  return { ok: true, value: { grant, durationMs } };
}

/**
 * Whether approving this grant needs the approver's second factor: a duration above the policy's
 * threshold, or a limit raised more than `factor` times the policy's own limit of that id
 * (`baseLimit` returns the largest limit of that id the policy defines, or undefined).
 * Extra models and scopes count as above the threshold: they widen access, not just volume.
 */
export function needsStepUp(
  grant: ExceptionGrant,
  durationMs: number,
  policy: ExceptionPolicy,
  baseLimit: (id: string) => number | undefined,
): boolean {
  if (durationMs > policy.stepUpAbove.durationMs) return true;
  if (grant.models.length > 0 || grant.scopes.length > 0) return true;
  for (const l of grant.limits) {
    const base = baseLimit(l.id);
    if (base === undefined || l.limit > base * policy.stepUpAbove.factor) return true;
  }
  return false;
}

export type Transition =
  | { op: 'approve'; grant: ExceptionGrant; durationMs: number; by: string; note: string | null }
  | { op: 'deny'; by: string; note: string | null }
  | { op: 'revoke'; by: string; note: string | null };

/** Applies a decision; refuses one the record's status (as of `now`) does not allow. */
export function transition(r: ExceptionRecord, t: Transition, now: number): Result<ExceptionRecord> {
  const status = statusAt(r, now);
  if (t.op === 'approve' || t.op === 'deny') {
    if (status !== 'pending') return { ok: false, error: `the exception is ${status}, not pending` };
    if (t.op === 'deny')
      return {
        ok: true,
        value: { ...r, status: 'denied', decidedAt: now, decidedBy: t.by, note: t.note, updatedAt: now },
      };
    return {
      ok: true,
      value: {
        ...r,
        status: 'approved',
        granted: t.grant,
        durationMs: t.durationMs,
        decidedAt: now,
        decidedBy: t.by,
        note: t.note,
        expiresAt: now + t.durationMs,
        updatedAt: now,
      },
    };
  }
  if (status !== 'approved') return { ok: false, error: `the exception is ${status}, not approved` };
  return {
    ok: true,
    value: {
      ...r,
      status: 'revoked',
      expiresAt: now,
      note: t.note ?? r.note,
      decidedBy: t.by,
      updatedAt: now,
    },
  };
}

/** The public JSON view of a record, dates as ISO strings and the derived status. */
export function exceptionView(r: ExceptionRecord, now: number) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: r.id,
    tenant: r.tenantId,
    key: r.keyId,
    requestedBy: r.requestedBy,
    status: statusAt(r, now),
    justification: r.justification,
    requested: r.requested,
    granted: r.granted,
    duration: Math.round(r.durationMs / 1000),
    createdAt: iso(r.createdAt),
    requestExpiresAt: iso(r.requestExpiresAt),
    decidedAt: iso(r.decidedAt),
    decidedBy: r.decidedBy,
    note: r.note,
    expiresAt: iso(r.expiresAt),
  };
}
