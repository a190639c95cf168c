/**
 * Alerts: limit crossings, degraded mode, audit overflow, quarantine. Each alert is kept in memory
 * (the last N, for `GET /admin/v1/alerts`), audited, and delivered to every webhook of the policy's
 * `alerts:` list that subscribes to its type.
 *
 * Delivery is off the request path: `notify` only records and queues; a few workers POST the JSON
 * body, signed `x-sluice-signature: sha256=<hex HMAC-SHA-256(secret, body)>`, and retry timeouts,
 * connection failures, 408, 429 and 5xx with exponential backoff (jittered, bounded attempts,
 * `Retry-After` honoured up to the cap). Every final outcome is audited as `alert.deliver`.
 * Webhook URLs often carry a token in their path, so records and audit events show only the origin.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/schema.js';
import type { AuditSink, Clock } from '../core/ports.js';

export const ALERT_TYPES = [
  'limit.80',
  'limit.100',
  'degraded',
  'audit.overflow',
  'quarantine',
  'policy.regression',
  'deprecation',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** One entry of the policy's `alerts:` list. */
export type AlertWebhook = SluiceConfig['alerts'][number];

/** What a caller reports. Only `type` and `message` are required. */
export interface AlertEvent {
  type: AlertType;
  tenantId?: string | null;
  keyId?: string | null;
  limitId?: string | null;
  /** Whatever else tells two alerts of a type apart: a degraded component, a quarantined capability. */
  subject?: string | null;
  /** Human-readable, one line. Never secrets. */
  message: string;
  /** Extra facts for the webhook and the audit trail. Never secrets. */
  details?: Record<string, unknown>;
  /** Deduplication window for this alert (default: the engine's `dedupeMs`). */
  dedupeMs?: number;
}

export interface AlertDelivery {
  /** The webhook's origin only (`https://hooks.example.com/…`): paths often hold tokens. */
  webhook: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** Last HTTP status received, if any. */
  httpStatus?: number;
  /** Last failure, short (`ECONNREFUSED`, `timeout`, `HTTP 500`, `shutdown`, ...). */
  error?: string;
  /** When the delivery reached its final status. */
  finishedAt?: number;
}

export interface AlertRecord {
  id: string;
  type: AlertType;
  at: number;
  tenantId: string | null;
  keyId: string | null;
  limitId: string | null;
  subject: string | null;
  message: string;
  details: Record<string, unknown> | null;
  /** Later alerts with the same type, tenant, key, limit and subject dropped inside the window. */
  repeats: number;
  deliveries: AlertDelivery[];
}

export interface AlertEngineOptions {
  /** The current `alerts:` list (read at each notify, so policy reloads apply to the next alert). */
  config: () => readonly AlertWebhook[];
  clock: Clock;
  audit: AuditSink;
  /** Defaults to the global fetch. */
  fetchImpl?: typeof fetch;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Policy version for audit events. */
  policyVersion?: () => number | null;
  /** Default deduplication window (default 5 minutes). */
  dedupeMs?: number;
  /** Alerts kept for the list (default 200). */
  keep?: number;
  /** Attempts per delivery including the first (default 6), first retry delay and cap (default 1 s and 5 min). */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  /** Deliveries in flight at once (default 4) and waiting at most (default 1000; beyond, they fail as `queue full`). */
  concurrency?: number;
  maxQueued?: number;
}

interface Job {
  record: AlertRecord;
  delivery: AlertDelivery;
  url: string;
  secret: string | undefined;
  body: string;
}

/** `sha256=<hex>` over the exact body bytes, as sent in `x-sluice-signature`. */
export function signAlertBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Checks an `x-sluice-signature` header in constant time (for receivers and tests). */
export function verifyAlertSignature(secret: string, body: string, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signAlertBody(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search ? u.origin : `${u.origin}/…`;
  } catch {
    return 'invalid-url';
  }
}

function errorText(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timeout';
  const text = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
  return text.slice(0, 200);
}

const RETRIABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const MAX_DEDUPE_KEYS = 10_000;

/**
 * Raises, lists and delivers alerts. `notify` never blocks and never throws; delivery happens on
 * later ticks. `close` stops retries and resolves once in-flight attempts end.
 */
export class AlertEngine {
  private readonly recent: AlertRecord[] = [];
  private readonly seen = new Map<string, { until: number; record: AlertRecord }>();
  private readonly queue: Job[] = [];
  private readonly waiting = new Map<NodeJS.Timeout, Job>();
  private readonly idleWaiters: (() => void)[] = [];
  private active = 0;
  private scheduled = false;
  private closed = false;
  private readonly fetchImpl: typeof fetch;
  private readonly dedupeMs: number;
  private readonly keep: number;
  private readonly attempts: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;

  constructor(private readonly opts: AlertEngineOptions) {
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.dedupeMs = opts.dedupeMs ?? 300_000;
    this.keep = Math.max(1, opts.keep ?? 200);
    this.attempts = Math.max(1, opts.retry?.attempts ?? 6);
    this.baseMs = Math.max(0, opts.retry?.baseMs ?? 1000);
    this.maxMs = Math.max(this.baseMs, opts.retry?.maxMs ?? 300_000);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.maxQueued = opts.maxQueued ?? 1000;
  }

  /**
   * Records an alert and queues its deliveries; returns at once. Returns the new record, or null
   * when the same alert (type, tenant, key, limit, subject) was raised inside its window (the
   * earlier record's `repeats` grows) or the engine is closed.
   */
  notify(event: AlertEvent): AlertRecord | null {
    if (this.closed) return null;
    try {
      return this.raise(event);
    } catch (err) {
      // Config or audit trouble must not reach the request path.
      this.opts.logger.warn({ err: errorText(err), type: event.type }, 'alert not raised');
      return null;
    }
  }

  private raise(event: AlertEvent): AlertRecord | null {
    const now = this.opts.clock.now();
    const key = `${event.type}\u0000${event.tenantId ?? ''}\u0000${event.keyId ?? ''}\u0000${event.limitId ?? ''}\u0000${event.subject ?? ''}`;
    const prior = this.seen.get(key);
    if (prior && prior.until > now) {
      prior.record.repeats++;
      return null;
    }
    const record: AlertRecord = {
      id: `al_${randomBytes(8).toString('hex')}`,
      type: event.type,
      at: now,
      tenantId: event.tenantId ?? null,
      keyId: event.keyId ?? null,
      limitId: event.limitId ?? null,
      subject: event.subject ?? null,
      message: event.message,
      details: event.details ?? null,
      repeats: 0,
      deliveries: [],
    };
    this.seen.delete(key);
    this.seen.set(key, { until: now + (event.dedupeMs ?? this.dedupeMs), record });
    if (this.seen.size > MAX_DEDUPE_KEYS) this.pruneSeen(now);
    this.recent.push(record);
    if (this.recent.length > this.keep) this.recent.shift();

    this.audit('alert.raise', record, event.type, {
      alertId: record.id,
      message: record.message,
      ...record.details,
    });

    const hooks = this.opts.config().filter((w) => w.on.includes(event.type));
    if (hooks.length === 0) return record;
    const body = JSON.stringify({
      id: record.id,
      type: record.type,
      at: record.at,
      time: new Date(record.at).toISOString(),
      tenantId: record.tenantId,
      keyId: record.keyId,
      limitId: record.limitId,
      subject: record.subject,
      message: record.message,
      details: record.details,
      // Lets chat webhooks (Slack, Mattermost) show the alert as it is.
      text: `[sluice] ${record.type}: ${record.message}`,
    });
    for (const w of hooks) {
      const delivery: AlertDelivery = { webhook: redactUrl(w.webhook), status: 'pending', attempts: 0 };
      record.deliveries.push(delivery);
      const job: Job = { record, delivery, url: w.webhook, secret: w.secret, body };
      if (this.queue.length >= this.maxQueued) this.finish(job, 'failed', 'queue full');
      else this.queue.push(job);
    }
    this.schedule();
    return record;
  }

  /** The most recent alerts, newest first (copies). */
  list(filter: { limit?: number; type?: AlertType; tenantId?: string } = {}): AlertRecord[] {
    const out: AlertRecord[] = [];
    const limit = filter.limit ?? this.keep;
    for (let i = this.recent.length - 1; i >= 0 && out.length < limit; i--) {
      const r = this.recent[i];
      if (filter.type && r.type !== filter.type) continue;
      if (filter.tenantId && r.tenantId !== filter.tenantId) continue;
      out.push({ ...r, deliveries: r.deliveries.map((d) => ({ ...d })) });
    }
    return out;
  }

  /** Resolves when no delivery is queued, in flight or waiting to retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting alerts and retrying: queued and waiting deliveries fail as `shutdown` (audited);
   * resolves when in-flight attempts end (each bounded by `timeoutMs`). Flush the audit sink after.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const [timer, job] of this.waiting) {
      clearTimeout(timer);
      this.finish(job, 'failed', 'shutdown');
    }
    this.waiting.clear();
    for (const job of this.queue.splice(0)) this.finish(job, 'failed', 'shutdown');
    await this.idle();
  }

  private isIdle(): boolean {
    return this.active === 0 && this.queue.length === 0 && this.waiting.size === 0 && !this.scheduled;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Starts workers on a later tick, so `notify` never runs delivery code on the caller's stack. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
      this.checkIdle();
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void this.attempt(job).finally(() => {
        this.active--;
        this.pump();
        this.checkIdle();
      });
    }
  }

  private async attempt(job: Job): Promise<void> {
    const d = job.delivery;
    d.attempts++;
    let retryAfterMs = 0;
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'sluice-alerts',
        'x-sluice-event': job.record.type,
        'x-sluice-delivery': job.record.id,
        'x-sluice-attempt': String(d.attempts),
        'x-sluice-timestamp': String(Math.floor(this.opts.clock.now() / 1000)),
      };
      if (job.secret) headers['x-sluice-signature'] = signAlertBody(job.secret, job.body);
      const res = await this.fetchImpl(job.url, {
        method: 'POST',
        headers,
        body: job.body,
        // A redirect would send the signed body somewhere nobody configured.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      d.httpStatus = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 300) {
        this.finish(job, 'delivered');
        return;
      }
      d.error = `HTTP ${res.status}`;
      if (!RETRIABLE_STATUS.has(res.status)) {
        this.finish(job, 'failed', d.error);
        return;
      }
      const ra = Number(res.headers.get('retry-after'));
      if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
    } catch (err) {
      d.error = errorText(err);
    }
    if (d.attempts >= this.attempts || this.closed) {
      this.finish(job, 'failed', this.closed ? 'shutdown' : d.error);
      return;
    }
    const backoff = Math.min(this.maxMs, this.baseMs * 2 ** (d.attempts - 1));
    // Jitter in [backoff/2, backoff]: receivers that come back see retries spread out.
    const delay = Math.min(this.maxMs, Math.max(backoff * (0.5 + Math.random() * 0.5), retryAfterMs));
    const timer = setTimeout(() => {
      this.waiting.delete(timer);
      this.queue.push(job);
      this.pump();
      this.checkIdle();
    }, delay);
    // Retries must not keep a finished process alive; `close` settles them.
    timer.unref();
    this.waiting.set(timer, job);
  }

  private finish(job: Job, status: 'delivered' | 'failed', error?: string): void {
    const d = job.delivery;
    d.status = status;
    d.finishedAt = this.opts.clock.now();
    if (status === 'delivered') delete d.error;
    else d.error = error ?? d.error ?? 'failed';
    if (status === 'failed') {
      this.opts.logger.warn(
        { alert: job.record.id, webhook: d.webhook, attempts: d.attempts, error: d.error },
        'alert delivery failed',
      );
    }
    this.audit('alert.deliver', job.record, status === 'delivered' ? 'ok' : 'delivery_failed', {
      alertId: job.record.id,
      type: job.record.type,
      webhook: d.webhook,
      attempts: d.attempts,
      httpStatus: d.httpStatus ?? null,
      error: d.error ?? null,
    });
  }

  private audit(action: string, r: AlertRecord, reason: string, details: Record<string, unknown>): void {
    try {
      this.opts.audit.emit({
        at: this.opts.clock.now(),
        requestId: null,
        keyId: r.keyId,
        tenantId: r.tenantId,
        projectId: null,
        clientIp: null,
        country: null,
        userAgent: null,
        action,
        model: null,
        decision: 'system',
        reason,
        policyVersion: this.opts.policyVersion?.() ?? null,
        details,
      });
    } catch (err) {
      this.opts.logger.warn({ err: errorText(err) }, 'alert audit failed');
    }
  }

  private pruneSeen(now: number): void {
    for (const [k, v] of this.seen) if (v.until <= now) this.seen.delete(k);
    // Still full: forget the oldest windows (insertion order) rather than grow.
    const excess = this.seen.size - Math.floor(MAX_DEDUPE_KEYS * 0.9);
    if (excess <= 0) return;
    let n = 0;
    for (const k of this.seen.keys()) {
      if (n++ >= excess) break;
      this.seen.delete(k);
    }
  }
}
