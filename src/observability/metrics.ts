/**
 * Prometheus metrics for Sluice, served on the management plane at `/metrics`.
 *
 * The data plane calls `observe(outcome)` once per decision; the hot families are `series.ts`
 * families (a few Map lookups and number additions per call, no label objects). Labels never hold
 * secrets or key ids: tenant and model at most, each capped in distinct values (`other` past the
 * cap) so a caller cannot blow up the series count. Every decision series (decisions, stage and
 * upstream timings) carries `policy`, the policy version that decided (`none` before any is stored),
 * so a dashboard or `sluice policy watch` can compare versions.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Outcome } from '../core/outcome.js';
import { FastCounter, FastGauge, FastHistogram, LabelValues, type ValueCell } from './series.js';

/** Seconds. Stages cost microseconds to a few milliseconds; the tail shows up to a second. */
const STAGE_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1,
];
/** Seconds. Model calls take from tens of milliseconds (embeddings) to minutes (long streams). */
const UPSTREAM_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface MetricsOptions {
  /** Distinct tenant label values before `other` (default 1000). */
  maxTenants?: number;
  /** Distinct model label values before `other` (default 200). */
  maxModels?: number;
  /** Distinct values of every other label (reason, action, upstream, limit, stage, ...) (default 200). */
  maxOtherValues?: number;
  /** Node.js process metrics (`process_*`, `nodejs_*`) in the registry (default true). */
  defaultMetrics?: boolean;
  /** Read at scrape time for `sluice_audit_queue_depth` and `sluice_audit_overflow_total` (e.g. `() => audit.stats()`). */
  auditStats?: () => { queued: number; overflowed: number };
}

/**
 * Sluice's metrics. Every method is synchronous, never throws on odd input (NaN and negative
 * amounts are ignored) and costs a few Map lookups; none allocates once its series exists.
 */
export interface Metrics {
  /** The registry holding every Sluice metric (not prom-client's global one). */
  readonly registry: Registry;
  /**
   * One data-plane decision: `sluice_decisions_total`, tokens, spend and images by tenant and model,
   * `sluice_upstream_seconds` (from `upstreamMs`), stage timings (from `stageMs`, milliseconds), and
   * `sluice_upstream_errors_total` when an upstream call failed (decision `error` with `upstream` set:
   * kind `timeout`, `unavailable`, `transport` or `http_<status>`). Do not also call `upstreamError`
   * for a failure that reaches `observe`.
   */
  observe(o: Outcome): void;
  /** Time spent in one pipeline stage (`auth`, `authz`, `limit`, ...), in seconds. */
  observeStage(stage: string, seconds: number): void;
  /** Audit queue depth now, and the sink's cumulative overflow count (as in `AuditSink.stats()`). */
  setAuditQueue(depth: number, overflowed: number): void;
  /** Marks a component (`redis`, `audit`, ...) degraded (1) or healthy (0). */
  setDegraded(component: string, degraded: boolean): void;
  /** Used fraction of a limit for a tenant (0..1, may exceed 1 when in debt). */
  setLimitUtilisation(tenant: string | null, limitId: string, ratio: number): void;
  /** One request of a tenant that used a deprecated model, route, action or key (its entry's key). */
  deprecatedUse(tenant: string | null, deprecation: string): void;
  /** An upstream failure that does not reach `observe` (e.g. a retried attempt, a breaker trip). */
  upstreamError(upstream: string, kind: string): void;
  /**
   * A response-cache outcome: `sluice_cache_requests_total{outcome=hit|miss}`, on a hit the upstream
   * tokens it saved (`sluice_cache_tokens_saved_total`) and bytes served, on a store the bytes stored
   * (`sluice_cache_bytes_total{op=served|stored}`).
   */
  cache(what: 'hit' | 'miss' | 'stored', savedTokens: number, bytes: number): void;
  /**
   * One content-screening signal (issue 12): `sluice_screening_total{direction,detector,action}`,
   * direction `input` or `output`, detector `injection`, `secrets`, `pii`, `deny` or `canary`,
   * action `flag`, `redact`, `block` or `shadow` (found, not acted on).
   */
  screening(direction: string, detector: string, action: string): void;
  /** The Prometheus text exposition (what GET /metrics returns). */
  text(): Promise<string>;
}

interface UsageCells {
  tenant: string;
  model: string;
  input: ValueCell | undefined;
  output: ValueCell | undefined;
  images: ValueCell | undefined;
  spend: ValueCell | undefined;
}

/** Maps a failed upstream call's outcome to a small, bounded error kind. */
function upstreamErrorKind(reason: string, status: number): string {
  switch (reason) {
    case 'SLUICE_UPSTREAM_TIMEOUT':
      return 'timeout';
    case 'SLUICE_UPSTREAM_UNAVAILABLE':
      return 'unavailable';
    case 'SLUICE_UPSTREAM_ERROR':
      return 'transport';
  }
  return status >= 400 && status <= 599 ? `http_${status}` : 'other';
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const maxOther = opts.maxOtherValues ?? 200;
  const tenants = new LabelValues(opts.maxTenants ?? 1000);
  const models = new LabelValues(opts.maxModels ?? 200);
  const decisions = new LabelValues(16);
  const reasons = new LabelValues(maxOther);
  const actions = new LabelValues(maxOther);
  const upstreams = new LabelValues(maxOther);
  const errorKinds = new LabelValues(maxOther);
  const stages = new LabelValues(maxOther);
  const limits = new LabelValues(maxOther);
  const components = new LabelValues(maxOther);
  // Versions: at most 200 distinct labels per process (`other` past that); the last one is cached so
  // the request path does not format the number each time.
  const versions = new LabelValues(maxOther);
  let lastVersion: number | null | undefined;
  let lastVersionLabel = versions.of(null);
  const policyLabel = (v: number | null | undefined): string => {
    if (v !== lastVersion) {
      lastVersion = v;
      lastVersionLabel = versions.of(v === null || v === undefined ? null : String(v));
    }
    return lastVersionLabel;
  };

  const decisionsTotal = new FastCounter(
    'sluice_decisions_total',
    'Data-plane decisions by policy version, outcome, reason code and action.',
    ['policy', 'decision', 'reason', 'action'],
  ).registerIn(registry);
  const stageSeconds = new FastHistogram(
    'sluice_stage_seconds',
    'Time Sluice adds per pipeline stage, in seconds, by policy version.',
    ['policy', 'stage'],
    STAGE_BUCKETS,
  ).registerIn(registry);
  const upstreamSeconds = new FastHistogram(
    'sluice_upstream_seconds',
    'Upstream call duration (to the end of the response or stream), in seconds, by policy version.',
    ['policy', 'upstream'],
    UPSTREAM_BUCKETS,
  ).registerIn(registry);
  const upstreamErrors = new FastCounter('sluice_upstream_errors_total', 'Failed upstream calls by kind.', [
    'upstream',
    'kind',
  ]).registerIn(registry);
  const tokensTotal = new FastCounter(
    'sluice_tokens_total',
    'Tokens metered, by tenant, model and direction.',
    ['tenant', 'model', 'direction'],
  ).registerIn(registry);
  const spendTotal = new FastCounter(
    'sluice_spend_usd_total',
    'Spend metered in US dollars, by tenant and model.',
    ['tenant', 'model'],
  ).registerIn(registry);
  const imagesTotal = new FastCounter('sluice_images_total', 'Images generated, by tenant and model.', [
    'tenant',
    'model',
  ]).registerIn(registry);
  const cacheRequests = new FastCounter(
    'sluice_cache_requests_total',
    'Cacheable requests by outcome (hit or miss).',
    ['outcome'],
  ).registerIn(registry);
  const cacheTokensSaved = new FastCounter(
    'sluice_cache_tokens_saved_total',
    'Upstream tokens (input + output) that cache hits did not spend.',
    [],
  ).registerIn(registry);
  const cacheBytes = new FastCounter(
    'sluice_cache_bytes_total',
    'Bytes served from the cache and stored into it.',
    ['op'],
  ).registerIn(registry);
  const screeningTotal = new FastCounter(
    'sluice_screening_total',
    'Content screening findings by direction, detector and action.',
    ['direction', 'detector', 'action'],
  ).registerIn(registry);
  const screeningLabels = new LabelValues(32);
  const limitUtilisation = new FastGauge(
    'sluice_limit_utilisation',
    'Used fraction of a limit (1 = exhausted), by tenant and limit id.',
    ['tenant', 'limit'],
  ).registerIn(registry);
  const auditQueueDepth = new FastGauge(
    'sluice_audit_queue_depth',
    'Audit events queued and not yet written.',
    [],
  ).registerIn(registry);
  const auditOverflow = new FastCounter(
    'sluice_audit_overflow_total',
    'Audit events that did not fit the queue (counted and alerted, see the audit trail).',
    [],
  ).registerIn(registry);
  const deprecations = new LabelValues(maxOther);
  const deprecatedTotal = new FastCounter(
    'sluice_deprecated_requests_total',
    'Requests that used a deprecated model, route, action or key, by tenant and deprecation entry.',
    ['tenant', 'deprecation'],
  ).registerIn(registry);
  const degradedGauge = new FastGauge(
    'sluice_degraded',
    'A component running in degraded mode (1) or not (0).',
    ['component'],
  ).registerIn(registry);

  // Series that exist from the start, so dashboards see 0 rather than no data.
  const depthCell = auditQueueDepth.at0();
  const overflowCell = auditOverflow.at0();
  let lastOverflowed = 0;

  const setAuditQueue = (depth: number, overflowed: number): void => {
    if (Number.isFinite(depth)) depthCell.value = depth;
    if (!Number.isFinite(overflowed) || overflowed < 0) return;
    // The sink reports a cumulative count; a lower value means a new sink (restart): count from it.
    overflowCell.value += overflowed >= lastOverflowed ? overflowed - lastOverflowed : overflowed;
    lastOverflowed = overflowed;
  };
  if (opts.auditStats) {
    const read = opts.auditStats;
    const collect = () => {
      const s = read();
      setAuditQueue(s.queued, s.overflowed);
    };
    auditQueueDepth.collect = collect;
    auditOverflow.collect = collect;
  }

  // Per tenant and model, the four usage series in one place (two lookups instead of eight). A series
  // is created on its first non-zero amount, so zero amounts add no series.
  const usageCells = new Map<string, Map<string, UsageCells>>();
  const usageCellsOf = (tenant: string, model: string): UsageCells => {
    let byModel = usageCells.get(tenant);
    if (byModel === undefined) {
      byModel = new Map();
      usageCells.set(tenant, byModel);
    }
    let cells = byModel.get(model);
    if (cells === undefined) {
      cells = { tenant, model, input: undefined, output: undefined, images: undefined, spend: undefined };
      byModel.set(model, cells);
    }
    return cells;
  };

  const observeStageIn = (policy: string, stage: string, seconds: number): void => {
    if (seconds >= 0) stageSeconds.observe(stageSeconds.at2(policy, stages.of(stage)), seconds);
  };
  const observeStage = (stage: string, seconds: number): void =>
    observeStageIn(policyLabel(lastVersion), stage, seconds);

  const upstreamError = (upstream: string, kind: string): void => {
    upstreamErrors.at2(upstreams.of(upstream), errorKinds.of(kind)).value++;
  };

  const observe = (o: Outcome): void => {
    const policy = policyLabel(o.policyVersion);
    decisionsTotal.at4(policy, decisions.of(o.decision), reasons.of(o.reason), actions.of(o.action)).value++;
    if (o.upstream !== undefined) {
      if (o.upstreamMs !== undefined && o.upstreamMs >= 0) {
        upstreamSeconds.observe(upstreamSeconds.at2(policy, upstreams.of(o.upstream)), o.upstreamMs / 1000);
      }
      if (o.decision === 'error') upstreamError(o.upstream, upstreamErrorKind(o.reason, o.status));
    }
    const u = o.usage;
    const usd = o.usd;
    if (u !== undefined || (usd !== undefined && usd > 0)) {
      const cells = usageCellsOf(tenants.of(o.tenantId), models.of(o.model));
      if (u !== undefined) {
        if (u.inputTokens > 0) {
          if (cells.input === undefined) cells.input = tokensTotal.at3(cells.tenant, cells.model, 'input');
          cells.input.value += u.inputTokens;
        }
        if (u.outputTokens > 0) {
          if (cells.output === undefined) cells.output = tokensTotal.at3(cells.tenant, cells.model, 'output');
          cells.output.value += u.outputTokens;
        }
        if (u.images > 0) {
          if (cells.images === undefined) cells.images = imagesTotal.at2(cells.tenant, cells.model);
          cells.images.value += u.images;
        }
      }
      if (usd !== undefined && usd > 0) {
        if (cells.spend === undefined) cells.spend = spendTotal.at2(cells.tenant, cells.model);
        cells.spend.value += usd;
      }
    }
    const stageMs = o.stageMs;
    if (stageMs !== undefined) {
      for (const stage in stageMs) observeStageIn(policy, stage, stageMs[stage] / 1000);
    }
  };

  return {
    registry,
    observe,
    observeStage,
    setAuditQueue,
    setDegraded(component, degraded) {
      degradedGauge.at1(components.of(component)).value = degraded ? 1 : 0;
    },
    setLimitUtilisation(tenant, limitId, ratio) {
      if (Number.isFinite(ratio)) limitUtilisation.at2(tenants.of(tenant), limits.of(limitId)).value = ratio;
    },
    upstreamError,
    deprecatedUse(tenant, deprecation) {
      deprecatedTotal.at2(tenants.of(tenant), deprecations.of(deprecation)).value++;
    },
    cache(what, savedTokens, bytes) {
      if (what === 'stored') {
        if (bytes > 0) cacheBytes.at1('stored').value += bytes;
        return;
      }
      cacheRequests.at1(what).value++;
      if (what === 'hit') {
        if (savedTokens > 0) cacheTokensSaved.at0().value += savedTokens;
        if (bytes > 0) cacheBytes.at1('served').value += bytes;
      }
    },
    screening(direction, detector, action) {
      screeningTotal.at3(
        screeningLabels.of(direction),
        screeningLabels.of(detector),
        screeningLabels.of(action),
      ).value++;
    },
    text: () => registry.metrics(),
  };
}
