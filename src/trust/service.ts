/**
 * Trust over time, off the request path (docs/trust.md): a periodic pass that
 * 1. moves tenants between the tiers of the policy's `promotion.ladder` from their own history
 *    (src/core/trust/promotion.ts), demotes them when an abuse case is confirmed, and announces every
 *    move as an audit event and a signed webhook;
 * 2. warns key owners when a secret nears its `keys.maxAge` and, with `autoRotate`, issues a new
 *    secret to the tenant's delivery webhook, the old one working for the grace period.
 * The request path only reads in-memory results: `tierOf` (the earned tier applied to a key record)
 * and `describe` (what `/sluice/v1/me` shows). Moves and rotations are compare-and-set in the control
 * store, so with several instances each move and rotation happens, and is announced, once.
 */
import type { Logger } from 'pino';
import type { AbuseCase } from '../abuse/engine.js';
import type { KeyService } from '../admin/key-service.js';
import type { SluiceConfig } from '../config/schema.js';
import type { ApiKeyRecord, AuditSink, Clock, ControlStore } from '../core/ports.js';
import {
  decide,
  nextStep,
  type PromotionPolicy,
  type TenantHistory,
  type TierState,
} from '../core/trust/promotion.js';
import type { SqlCaseStore } from '../stores/sql/case-store.js';
import type { SqlTrustStore, TenantTierRow } from '../stores/sql/trust-store.js';
import { type DeliveryResult, deliver } from './deliver.js';
import { type KeyView, rotationPass } from './rotation-pass.js';

/** The invalidation id that tells every instance to re-read the tenant tiers. */
export const TIERS_CHANGED = 'trust:tiers';

export interface TrustServiceOptions {
  control: ControlStore;
  store: SqlTrustStore;
  cases: Pick<SqlCaseStore, 'list'>;
  keys: Pick<KeyService, 'rotate'>;
  audit: AuditSink;
  clock: Clock;
  logger: Pick<Logger, 'warn' | 'info'>;
  config: () => SluiceConfig;
  policyVersion: () => number | null;
  /** Tells every instance (Redis pub/sub) that a key or the tiers changed. */
  invalidate: (id: string) => void;
  /** Flushes buffered usage and audit rows before history is read. */
  flush?: () => Promise<void>;
  fetchImpl?: typeof fetch;
}

export function promotionPolicy(cfg: SluiceConfig): PromotionPolicy | undefined {
  const p = cfg.promotion;
  if (!p) return undefined;
  const rules: PromotionPolicy['rules'] = {};
  for (const [t, r] of Object.entries(p.rules)) rules[t] = { ...r };
  return { ...p, rules };
}

export class TrustService {
  private tiers = new Map<string, TenantTierRow>();
  /** Per tenant: the history by rung and when it was read (for `describe`). */
  private readonly histories = new Map<string, { at: number; byTier: Map<string, TenantHistory> }>();
  private keyViews = new Map<string, KeyView>();
  private running: Promise<void> | null = null;

  constructor(private readonly o: TrustServiceOptions) {}

  /** The tier a key record serves with: the tenant's earned or pinned tier when the key's tier is on the ladder. */
  tierOf(r: Pick<ApiKeyRecord, 'tenantId' | 'tier'>): string {
    const row = this.tiers.get(r.tenantId);
    if (!row) return r.tier;
    const ladder = this.o.config().promotion?.ladder;
    return row.pinned || ladder?.includes(r.tier) ? row.tier : r.tier;
  }

  /** Reads of the tenant tiers started so far (see `refresh`). */
  private reads = 0;

  /**
   * Re-reads the tenant tiers (another instance or the CLI moved one). A read answered after a
   * later one started is dropped: the timer's read, begun before an operator pinned a tier and
   * answered after the read the pin triggered, put the old tier back until the next read (seen as
   * a flaky test/trust/earned-tiers.test.ts under a full, busy `npm test`).
   */
  async refresh(): Promise<void> {
    const read = ++this.reads;
    const rows = await this.o.store.tiers();
    if (read !== this.reads) return;
    this.tiers = new Map(rows.map((r) => [r.tenantId, r]));
  }

  /** One evaluation pass (promotions, then rotations). Concurrent calls share one pass. */
  tick(): Promise<void> {
    if (!this.running)
      this.running = this.pass().finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    await this.o.flush?.().catch(() => {});
    await this.refresh();
    const keys = (await this.o.control.listKeys()).filter((k) => !k.revokedAt);
    await this.evaluateTiers(keys);
    await this.rotateKeys(keys);
  }

  private async historyOf(tenantId: string, createdAt: number, since: number, period: number, now: number) {
    const from = now - period;
    const [usage, refused, cases] = await Promise.all([
      this.o.store.usageSince(tenantId, from),
      this.o.store.refusedSince(tenantId, from),
      this.o.cases.list({ tenantId, limit: 1000 }),
    ]);
    const live = (c: AbuseCase) =>
      (c.status === 'open' || c.status === 'confirmed') && (c.expiresAt === null || c.expiresAt > now);
    return {
      createdAt,
      requests: usage.requests,
      usd: usage.usd,
      refused,
      flagged: cases.filter((c) => c.kind === 'flag' && c.createdAt >= from).length,
      openCases: cases.filter((c) => c.kind !== 'flag' && live(c)).length,
      confirmedSinceMove: cases.filter((c) => c.status === 'confirmed' && c.updatedAt > since).length,
    } satisfies TenantHistory;
  }

  private async evaluateTiers(keys: ApiKeyRecord[]): Promise<void> {
    const policy = promotionPolicy(this.o.config());
    if (!policy) return;
    const now = this.o.clock.now();
    const tenants = await this.o.control.listTenants();
    for (const t of tenants) {
      if (t.deletedAt) continue;
      const row = this.tiers.get(t.id);
      // Without a row, the tenant stands on the highest rung its keys hold.
      const rungs = keys.filter((k) => k.tenantId === t.id).map((k) => policy.ladder.indexOf(k.tier));
      if (!row && !rungs.some((r) => r >= 0)) continue;
      const state: TierState = row
        ? { tier: row.tier, pinned: row.pinned, since: row.since }
        : { tier: policy.ladder[Math.max(...rungs)]!, pinned: false, since: t.createdAt };
      // One read per distinct period (rules usually share one).
      const byTier = new Map<string, TenantHistory>();
      const byPeriod = new Map<number, TenantHistory>();
      for (const tier of policy.ladder) {
        const period = policy.rules[tier]?.period ?? 30 * 86_400_000;
        let h = byPeriod.get(period);
        if (!h) {
          h = await this.historyOf(t.id, t.createdAt, state.since, period, now);
          byPeriod.set(period, h);
        }
        byTier.set(tier, h);
      }
      this.histories.set(t.id, { at: now, byTier });
      const d = decide(policy, state, (tier) => byTier.get(tier)!, now);
      if (d.move === null) continue;
      const next = { tier: d.tier, pinned: false, since: now, reason: d.reason, updatedAt: now };
      if (!(await this.o.store.move(t.id, row, next))) continue; // another instance moved it
      this.tiers.set(t.id, { tenantId: t.id, ...next });
      await this.announce(t.id, d.move === 'promote' ? 'tier.promote' : 'tier.demote', {
        from: d.from,
        to: d.tier,
        reason: d.reason,
      });
    }
  }

  private async announce(tenantId: string, action: string, details: Record<string, unknown>): Promise<void> {
    const cfg = this.o.config();
    const now = this.o.clock.now();
    this.o.invalidate(TIERS_CHANGED);
    const hooks = [...(cfg.promotion?.webhooks ?? [])];
    const own = cfg.tenants[tenantId]?.keys?.deliver;
    if (own) hooks.push(own);
    const deliveries: DeliveryResult[] = [];
    for (const h of hooks)
      deliveries.push(
        await deliver(
          h.webhook,
          h.secret,
          { type: action, tenant: tenantId, at: new Date(now).toISOString(), ...details },
          {
            fetchImpl: this.o.fetchImpl,
          },
        ),
      );
    this.emit(action, tenantId, null, 'ok', { ...details, deliveries });
  }

  emit(
    action: string,
    tenantId: string,
    keyId: string | null,
    reason: string,
    details: Record<string, unknown>,
  ) {
    this.o.audit.emit({
      at: this.o.clock.now(),
      requestId: null,
      keyId,
      tenantId,
      projectId: null,
      clientIp: null,
      country: null,
      userAgent: null,
      action,
      model: null,
      decision: 'system',
      reason,
      policyVersion: this.o.policyVersion(),
      details,
    });
  }

  private async rotateKeys(keys: ApiKeyRecord[]): Promise<void> {
    this.keyViews = await rotationPass(
      this.o,
      keys,
      (k) => this.tierOf(k),
      (...e) => this.emit(...e),
    );
  }

  /** What `/sluice/v1/me` shows of the caller's trust: tier, the next one and what it takes, keys to rotate. */
  describe(p: { tenantId: string; keyId: string; tier: string }): Record<string, unknown> {
    const cfg = this.o.config();
    const policy = promotionPolicy(cfg);
    const now = this.o.clock.now();
    const row = this.tiers.get(p.tenantId);
    const h = this.histories.get(p.tenantId);
    // Without a row the tenant has stood where it is since it was created.
    const created = h ? [...h.byTier.values()][0]?.createdAt : undefined;
    const state: TierState = {
      tier: p.tier,
      pinned: row?.pinned ?? false,
      since: row?.since ?? created ?? now,
    };
    const next = policy ? nextStep(policy, state, h ? (t) => h.byTier.get(t)! : undefined, now) : null;
    const keys = [...this.keyViews.values()]
      .filter((k) => k.tenant === p.tenantId && k.state !== 'ok')
      .map((k) => ({
        id: k.id,
        state: k.state,
        warnAt: new Date(k.warnAt).toISOString(),
        dueAt: new Date(k.dueAt).toISOString(),
        autoRotate: k.autoRotate,
      }));
    return {
      tier: p.tier,
      pinned: state.pinned,
      since: row ? new Date(row.since).toISOString() : null,
      reason: row?.reason ?? null,
      maxTier: policy ? (policy.maxTier ?? policy.ladder.at(-1)!) : null,
      next: next?.tier ? { tier: next.tier, requirements: next.requirements } : null,
      evaluatedAt: h ? new Date(h.at).toISOString() : null,
      keysToRotate: keys,
    };
  }
}
