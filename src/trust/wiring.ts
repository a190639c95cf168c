/**
 * Wires trust over time into `serve`: the trust service, its timers, the control-store view that
 * applies earned tiers to key records (for the key and token authenticators), and the hooks
 * `createGateway` and `KeyService` take.
 */
import type { Logger } from 'pino';
import type { KeyService } from '../admin/key-service.js';
import type { SluiceConfig } from '../config/schema.js';
import type { AuditSink, Clock, ControlStore } from '../core/ports.js';
import type { SqlCaseStore } from '../stores/sql/case-store.js';
import type { SqlDatabase } from '../stores/sql/db.js';
import { SqlTrustStore } from '../stores/sql/trust-store.js';
import { TIERS_CHANGED, TrustService } from './service.js';

/** 10 s: a tier set from the CLI or another instance reaches an instance without Redis within this. */
const REFRESH_MS = 10_000;

/** A control store whose `getKey` answers with the tier the key serves with now (earned or pinned). */
export function withEarnedTiers(control: ControlStore, trust: Pick<TrustService, 'tierOf'>): ControlStore {
  const view = Object.create(control) as ControlStore;
  view.getKey = async (id) => {
    const r = await control.getKey(id);
    if (!r) return r;
    const tier = trust.tierOf(r);
    return tier === r.tier ? r : { ...r, tier };
  };
  return view;
}

export interface TrustWiring {
  trust: TrustService;
  store: SqlTrustStore;
  /** Handles an invalidation id; true when it was the trust service's. */
  onInvalidate(id: string): boolean;
  /** Re-reads the tiers here now (after an operator moved one: this instance answers with it at once). */
  refresh(): Promise<void>;
  close(): void;
}

export async function startTrust(o: {
  sql: SqlDatabase;
  control: ControlStore;
  cases: SqlCaseStore;
  keys: () => KeyService;
  audit: AuditSink;
  clock: Clock;
  logger: Logger;
  config: () => SluiceConfig;
  policyVersion: () => number | null;
  invalidate: (id: string) => void;
  flush: () => Promise<void>;
  /** Called after the tiers changed (drop cached principals). */
  onTiersChanged: () => void;
}): Promise<TrustWiring> {
  const store = new SqlTrustStore(o.sql);
  const trust = new TrustService({
    control: o.control,
    store,
    cases: o.cases,
    keys: { rotate: (id, grace, secret) => o.keys().rotate(id, grace, secret) },
    audit: o.audit,
    clock: o.clock,
    logger: o.logger,
    config: o.config,
    policyVersion: o.policyVersion,
    invalidate: o.invalidate,
    flush: o.flush,
  });
  const refresh = () =>
    trust
      .refresh()
      .then(o.onTiersChanged)
      .catch((err: Error) => o.logger.warn({ err: err.message }, 'trust: reading tenant tiers failed'));
  await refresh();
  const refreshTimer = setInterval(() => void refresh(), REFRESH_MS);
  refreshTimer.unref();
  // The pass runs on its own timer, never on the request path; `every` is read at each start.
  let passTimer: NodeJS.Timeout;
  const schedule = () => {
    passTimer = setTimeout(() => {
      void trust
        .tick()
        .catch((err: Error) => o.logger.warn({ err: err.message }, 'trust: evaluation pass failed'))
        .finally(schedule);
    }, o.config().promotion?.every ?? 3_600_000);
    passTimer.unref();
  };
  schedule();
  return {
    trust,
    store,
    refresh,
    onInvalidate(id) {
      if (id !== TIERS_CHANGED) return false;
      // This instance's own moves are already in memory: drop cached principals now, again once re-read.
      o.onTiersChanged();
      void refresh();
      return true;
    },
    close() {
      clearInterval(refreshTimer);
      clearTimeout(passTimer);
    },
  };
}
