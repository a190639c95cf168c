/**
 * Exceptions as a service shared by the developer API (`/sluice/v1/exceptions`), the admin API
 * (`/admin/v1/exceptions`) and the CLI: requests, decisions, the overlay the request path applies,
 * and the sweep that records lapsed requests and grants as expired.
 *
 * Every step is audited (`exception.request|approve|deny|revoke|expire`) and sent to the
 * `exceptions.webhooks` of the policy (signed like alert webhooks).
 *
 * Reaching every instance: the overlay is reloaded from the store after each local change, when
 * another instance announces a change (the Redis invalidation channel, when configured), and on a
 * short poll. Expiry needs none of these: the overlay compares `expiresAt` with the clock on every
 * request.
 */
import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../../config/schema.js';
import {
  type ApprovalInput,
  approvedGrant,
  type ExceptionPolicy,
  type ExceptionRecord,
  type ExceptionRequestInput,
  exceptionView,
  needsStepUp,
  newRequest,
  statusAt,
  transition,
} from '../../core/exceptions/model.js';
import { ExceptionOverlay } from '../../core/exceptions/overlay.js';
import type { AuditDecision, AuditSink, Clock } from '../../core/ports.js';
import type { ExceptionFilter, SqlExceptionStore } from '../../stores/sql/exception-store.js';

/** How often every instance re-reads approved exceptions (a revocation reaches it within this). */
export const EXCEPTION_POLL_MS = 2000;
/** Open requests a tenant may have at once: a key cannot flood the queue (or the webhooks). */
export const MAX_PENDING_PER_TENANT = 20;
/** How often lapsed records are written as `expired` (for lists and the audit trail only). */
export const EXCEPTION_SWEEP_MS = 30_000;

export class ExceptionError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'state' | 'step-up',
    message: string,
  ) {
    super(message);
  }
}

export interface ExceptionNotice {
  type: 'exception.requested' | 'exception.decided';
  tenantId: string;
  keyId: string | null;
  subject: string;
  message: string;
  details: Record<string, unknown>;
}

export interface ExceptionServiceOptions {
  store: SqlExceptionStore;
  clock: Clock;
  audit: AuditSink;
  config: () => SluiceConfig;
  policyVersion?: () => number | null;
  /** Webhook delivery (an AlertEngine for the `exceptions.webhooks` list). */
  notify?: (n: ExceptionNotice) => void;
  /** Tells other instances to reload (Redis channel); optional. */
  publish?: () => Promise<void> | void;
  onError?: (err: Error) => void;
}

export function exceptionPolicyOf(cfg: SluiceConfig): ExceptionPolicy {
  const e = cfg.exceptions;
  return {
    maxDurationMs: e.maxDuration,
    pendingTtlMs: e.pendingTtl,
    stepUpAbove: { durationMs: e.stepUpAbove.duration, factor: e.stepUpAbove.factor },
  };
}

/** The largest limit with this id anywhere in the policy (tiers, tenants, projects, keys). */
export function baseLimitOf(cfg: SluiceConfig, id: string): number | undefined {
  let best: number | undefined;
  const lists = [
    ...Object.values(cfg.tiers).map((t) => t.limits),
    ...[cfg.tenants, cfg.projects, cfg.keys].flatMap((o) => Object.values(o).map((x) => x.limits ?? [])),
  ];
  for (const list of lists)
    for (const l of list) {
      if (l.id !== id) continue;
      const amount =
        l.requests ?? l.tokens ?? l.inputTokens ?? l.outputTokens ?? l.images ?? l.usd ?? l.concurrent;
      if (amount !== undefined && (best === undefined || amount > best)) best = amount;
    }
  return best;
}

export class ExceptionService {
  private current: ExceptionOverlay = ExceptionOverlay.empty;
  private timers: NodeJS.Timeout[] = [];
  private loading: Promise<void> | null = null;

  constructor(private readonly opts: ExceptionServiceOptions) {}

  /** The overlay the request path applies (never blocks; the last loaded set). */
  overlay(): ExceptionOverlay {
    return this.current;
  }

  /** Re-reads approved exceptions from the store. Concurrent calls share one read. */
  reload(): Promise<void> {
    this.loading ??= this.opts.store
      .active(this.opts.clock.now())
      .then((rows) => {
        this.current = new ExceptionOverlay(rows);
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /** Starts the poll and the sweep (serve only; one-shot commands do not). */
  start(): void {
    const onErr = (err: Error) => this.opts.onError?.(err);
    const poll = setInterval(() => void this.reload().catch(onErr), EXCEPTION_POLL_MS);
    const sweep = setInterval(() => void this.sweep().catch(onErr), EXCEPTION_SWEEP_MS);
    poll.unref();
    sweep.unref();
    this.timers.push(poll, sweep);
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  policy(): ExceptionPolicy {
    return exceptionPolicyOf(this.opts.config());
  }

  async request(
    input: ExceptionRequestInput,
    who: { tenantId: string; keyId: string },
    meta: { requestId?: string | null; ip?: string | null } = {},
  ): Promise<ExceptionRecord> {
    const now = this.opts.clock.now();
    const id = `exc_${randomBytes(9).toString('base64url')}`;
    const r = newRequest(input, { id, ...who }, this.policy(), now);
    if (!r.ok) throw new ExceptionError('invalid', r.error);
    const open = (
      await this.opts.store.list({ tenantId: who.tenantId, status: 'pending', limit: 1000 })
    ).filter((x) => statusAt(x, now) === 'pending');
    if (open.length >= MAX_PENDING_PER_TENANT)
      throw new ExceptionError(
        'state',
        `your tenant already has ${open.length} open requests; wait for a decision or let them lapse`,
      );
    await this.opts.store.create(r.value);
    this.audit('exception.request', r.value, 'allowed', { by: who.keyId }, meta);
    this.opts.notify?.({
      type: 'exception.requested',
      tenantId: r.value.tenantId,
      keyId: r.value.keyId,
      subject: id,
      message: `tenant ${r.value.tenantId} asks for an exception (${summary(r.value)}) for ${Math.round(r.value.durationMs / 1000)} s`,
      details: { exception: exceptionView(r.value, now) },
    });
    return r.value;
  }

  async get(id: string): Promise<ExceptionRecord> {
    const r = await this.opts.store.get(id);
    if (!r) throw new ExceptionError('not-found', `no exception "${id}"`);
    return r;
  }

  list(f: ExceptionFilter = {}): Promise<ExceptionRecord[]> {
    return this.opts.store.list(f);
  }

  /** Whether approving `id` with this input needs the approver's second factor. */
  async approvalNeedsStepUp(id: string, input: ApprovalInput): Promise<boolean> {
    const r = await this.get(id);
    const g = approvedGrant(r, input, this.policy());
    if (!g.ok) throw new ExceptionError('invalid', g.error);
    const cfg = this.opts.config();
    return needsStepUp(g.value.grant, g.value.durationMs, this.policy(), (lid) => baseLimitOf(cfg, lid));
  }

  /**
   * Approves (possibly narrowed). `steppedUp`: the approver proved a fresh second factor; without it
   * an approval above the policy threshold fails with kind `step-up`.
   */
  async approve(
    id: string,
    input: ApprovalInput,
    by: string,
    steppedUp: boolean,
    meta: { requestId?: string | null; ip?: string | null } = {},
  ): Promise<ExceptionRecord> {
    const r = await this.get(id);
    const g = approvedGrant(r, input, this.policy());
    if (!g.ok) throw new ExceptionError('invalid', g.error);
    const cfg = this.opts.config();
    if (
      !steppedUp &&
      needsStepUp(g.value.grant, g.value.durationMs, this.policy(), (lid) => baseLimitOf(cfg, lid))
    )
      throw new ExceptionError('step-up', 'approving this exception needs a fresh TOTP code in x-sluice-otp');
    return this.decide(
      r,
      { op: 'approve', grant: g.value.grant, durationMs: g.value.durationMs, by, note: noteOf(input.note) },
      meta,
    );
  }

  async deny(
    id: string,
    note: unknown,
    by: string,
    meta: { requestId?: string | null; ip?: string | null } = {},
  ) {
    return this.decide(await this.get(id), { op: 'deny', by, note: noteOf(note) }, meta);
  }

  async revoke(
    id: string,
    note: unknown,
    by: string,
    meta: { requestId?: string | null; ip?: string | null } = {},
  ) {
    return this.decide(await this.get(id), { op: 'revoke', by, note: noteOf(note) }, meta);
  }

  private async decide(
    r: ExceptionRecord,
    t: Parameters<typeof transition>[1],
    meta: { requestId?: string | null; ip?: string | null },
  ): Promise<ExceptionRecord> {
    const now = this.opts.clock.now();
    const next = transition(r, t, now);
    if (!next.ok) throw new ExceptionError('state', next.error);
    if (!(await this.opts.store.replace(next.value, r.status)))
      throw new ExceptionError('state', 'the exception changed meanwhile; read it again');
    this.audit(`exception.${t.op}`, next.value, 'admin', { by: t.by, note: next.value.note }, meta);
    this.opts.notify?.({
      type: 'exception.decided',
      tenantId: next.value.tenantId,
      keyId: next.value.keyId,
      subject: `${next.value.id}:${t.op}`,
      message: `exception ${next.value.id} of tenant ${next.value.tenantId}: ${next.value.status} by ${t.by}`,
      details: { exception: exceptionView(next.value, now) },
    });
    await this.reload();
    await this.opts.publish?.();
    return next.value;
  }

  /** Writes lapsed pending and approved records as expired, auditing each. Returns how many. */
  async sweep(): Promise<number> {
    const now = this.opts.clock.now();
    let n = 0;
    for (const r of await this.opts.store.lapsed(now)) {
      if (statusAt(r, now) !== 'expired') continue;
      const next: ExceptionRecord = { ...r, status: 'expired', updatedAt: now };
      if (!(await this.opts.store.replace(next, r.status))) continue;
      n++;
      this.audit('exception.expire', next, 'system', { was: r.status }, {});
    }
    if (n > 0) await this.reload();
    return n;
  }

  private audit(
    action: string,
    r: ExceptionRecord,
    decision: AuditDecision,
    details: Record<string, unknown>,
    meta: { requestId?: string | null; ip?: string | null },
  ): void {
    this.opts.audit.emit({
      at: this.opts.clock.now(),
      requestId: meta.requestId ?? null,
      keyId: r.keyId,
      tenantId: r.tenantId,
      projectId: null,
      clientIp: meta.ip ?? null,
      country: null,
      userAgent: null,
      action,
      model: null,
      decision,
      reason: 'ok',
      policyVersion: this.opts.policyVersion?.() ?? null,
      details: {
        exception: r.id,
        status: r.status,
        requested: r.requested,
        granted: r.granted,
        durationMs: r.durationMs,
        expiresAt: r.expiresAt,
        ...details,
      },
    });
  }
}

function noteOf(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > 2000)
    throw new ExceptionError('invalid', '"note" must be a string of at most 2000 characters');
  return v;
}

function summary(r: ExceptionRecord): string {
  const parts = [
    ...r.requested.limits.map((l) => `${l.id}=${l.limit}`),
    ...r.requested.models.map((m) => `model ${m}`),
    ...r.requested.scopes.map((s) => `scope ${s}`),
  ];
  return parts.join(', ');
}
