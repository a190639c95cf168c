/**
 * Keeps the abuse engine's cases in the control store and in step across instances: every change is
 * written through (in order, off the request path), live cases are loaded at start so a quarantine
 * survives a restart, and the store is polled every second (and at once when the key-invalidation
 * channel announces `~cases`) so a release, extension or new quarantine made elsewhere applies here.
 */
import type { AuditEventInput, Clock } from '../core/ports.js';
import type { AlertEvent } from '../observability/alerts.js';
import type { SqlCaseStore } from '../stores/sql/case-store.js';
import type { AbuseCase, AbuseEngine } from './engine.js';

/** Announced on the key-invalidation channel when a case changed; never a key id (those have no `~`). */
export const CASES_CHANGED = '~cases';
export const CASE_POLL_MS = 1000;
/** Re-read this far back on each poll, so a writer whose clock lags a little is not missed. */
const SKEW_MS = 5000;

export interface CaseSyncOptions {
  store: SqlCaseStore;
  clock: Clock;
  /** Tells other instances to poll now (the Redis channel); optional. */
  publish?: () => Promise<void> | void;
  onError?: (err: Error) => void;
}

export class CaseSync {
  private engine: AbuseEngine | null = null;
  private chain: Promise<void> = Promise.resolve();
  private cursor = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;

  constructor(private readonly opts: CaseSyncOptions) {}

  attach(engine: AbuseEngine): void {
    this.engine = engine;
  }

  /** Queues a write of the case as it is now (for the engine's `onStore`). */
  save(c: AbuseCase): void {
    const snap = structuredClone(c);
    this.chain = this.chain.then(
      () => this.opts.store.save(snap),
      () => this.opts.store.save(snap),
    );
    this.chain.catch((err: Error) => this.opts.onError?.(err));
  }

  /** After the writes queued so far, tells the other instances (for transitions a person made or a new hold). */
  announce(): void {
    const publish = this.opts.publish;
    if (!publish) return;
    this.chain = this.chain.then(
      async () => void (await publish()),
      async () => void (await publish()),
    );
    this.chain.catch((err: Error) => this.opts.onError?.(err));
  }

  /** Resolves once every queued write is done. */
  async flush(): Promise<void> {
    await this.chain.catch(() => {});
  }

  /** Loads the cases in force (at start). */
  async load(): Promise<number> {
    const engine = this.need();
    const now = this.opts.clock.now();
    const rows = await this.opts.store.live(now);
    for (const c of rows) {
      engine.restore(c);
      this.cursor = Math.max(this.cursor, c.updatedAt);
    }
    if (this.cursor === 0) this.cursor = now;
    return rows.length;
  }

  /** Applies what changed in the store since the last poll; returns how many cases changed here. */
  poll(): Promise<number> {
    if (this.polling) return this.polling.then(() => this.poll());
    const run = (async () => {
      const engine = this.need();
      const rows = await this.opts.store.changedSince(this.cursor - SKEW_MS);
      let n = 0;
      for (const c of rows) {
        if (engine.restore(c)) n++;
        this.cursor = Math.max(this.cursor, c.updatedAt);
      }
      return n;
    })();
    this.polling = run.then(
      () => {},
      () => {},
    );
    return run.finally(() => {
      this.polling = null;
    });
  }

  start(intervalMs = CASE_POLL_MS): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.poll().catch((err: Error) => this.opts.onError?.(err)),
      intervalMs,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  private need(): AbuseEngine {
    if (!this.engine) throw new Error('CaseSync: no engine attached');
    return this.engine;
  }
}

/** The audit event for a case transition (the server and the CLI write the same shape). */
export function caseAuditEvent(
  c: AbuseCase,
  transition: string,
  at: number,
  policyVersion: number | null,
): AuditEventInput {
  return {
    at,
    requestId: c.evidence.sampleRequests[0] ?? null,
    keyId: c.subject.keyId ?? null,
    tenantId: c.subject.tenantId ?? null,
    projectId: null,
    clientIp: c.subject.ip ?? null,
    country: null,
    userAgent: null,
    action: `abuse.case.${transition}`,
    model: null,
    decision: 'system',
    reason: c.detector,
    policyVersion,
    details: {
      case: c.id,
      kind: c.kind,
      status: c.status,
      capability: c.capability,
      category: c.category,
      score: c.score,
      net: c.subject.net ?? null,
      shadow: c.shadow,
      relatedKeys: c.evidence.related.keys.slice(0, 50),
    },
  };
}

/**
 * The `quarantine` alert (a signed webhook to whoever subscribed in `alerts:`) for a case
 * transition, or null when the partner need not be told: a hold opening, escalating unreviewed, or
 * ending by release. The same for every instance and for the CLI.
 */
export function caseAlert(c: AbuseCase, transition: string): AlertEvent | null {
  if (c.kind === 'flag' || c.shadow) return null;
  if (transition !== 'open' && transition !== 'release' && transition !== 'escalate') return null;
  const what = c.capability === '*' ? 'all capabilities' : c.capability;
  return {
    type: 'quarantine',
    tenantId: c.subject.tenantId ?? null,
    keyId: c.subject.keyId ?? null,
    subject: `${c.id}:${transition}`,
    message:
      transition === 'open'
        ? `${what} paused pending review (case ${c.id})`
        : transition === 'escalate'
          ? `${what} still paused and unreviewed (case ${c.id}): escalated`
          : `case ${c.id} released: ${what} restored`,
    details: {
      case: c.id,
      kind: c.kind,
      category: c.category,
      capability: c.capability,
      expiresAt: c.expiresAt,
      relatedKeys: c.evidence.related.keys.slice(0, 50),
      ...(c.priorOffences ? { priorOffences: c.priorOffences } : {}),
    },
  };
}
