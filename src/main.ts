/**
 * Composition root: reads the config, picks the adapters it names, wires them into the two planes.
 * Nothing else in Sluice constructs stores or upstreams.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { CASES_CHANGED, CaseSync, caseAlert, caseAuditEvent } from './abuse/case-sync.js';
import { AbuseEngine } from './abuse/engine.js';
import { createAdmin, guard, hashAdminToken } from './admin/app.js';
import { registerAuditRoutes } from './admin/audit-routes.js';
import { registerCaseRoutes } from './admin/cases-routes.js';
import { KeyService } from './admin/key-service.js';
import { registerAlertsRoute, registerMetricsRoute } from './admin/observability-routes.js';
import { impactSince, runtimeForSource, sinceOf } from './admin/policy-impact.js';
import { registerPolicyRoutes } from './admin/policy-routes.js';
import { PolicyService } from './admin/policy-service.js';
import { review } from './admin/review.js';
import { registerTierRoutes } from './admin/tier-routes.js';
import { parseConfig } from './config/load.js';
import { type ConfigSource, withDataDir } from './config/resolve.js';
import type { SluiceConfig } from './config/schema.js';
import { newId } from './core/ids.js';
import {
  type ApiKeyRecord,
  type Clock,
  type ControlStore,
  type LimitStore,
  systemClock,
  type Upstream,
  type UsageLedger,
} from './core/ports.js';
import { Admission } from './gateway/admission.js';
import { createGateway } from './gateway/app.js';
import { KeyAuthenticator } from './gateway/auth.js';
import { AuthFailureLimiter, summaryAuditEvent } from './gateway/auth-failures.js';
import { clientEndpoints } from './gateway/endpoints/index.js';
import { createWebParts } from './gateway/portal/wiring.js';
import type { Runtime } from './gateway/runtime.js';
import { JwtVerifier, tokenRoutes } from './gateway/tokens.js';
import { AlertEngine } from './observability/alerts.js';
import { crossingAlert, LimitWatch } from './observability/limit-watch.js';
import { createMetrics } from './observability/metrics.js';
import { Tracer } from './observability/tracing.js';
import { createUpstream } from './providers/index.js';
import { createCacheStore } from './stores/cache/index.js';
import { openCredentials } from './stores/credential-state.js';
import { ensureDataDir } from './stores/data-dir.js';
import { SqlCaseStore } from './stores/sql/case-store.js';
import { SqlDeprecationNotices } from './stores/sql/deprecation-notices.js';
import { UsageWriter } from './stores/usage-writer.js';
import { TIERS_CHANGED, type TrustService } from './trust/service.js';
import { startTrust, withEarnedTiers } from './trust/wiring.js';
import { DeprecationNotifier } from './wiring/deprecation-notices.js';
import { ContextLoader } from './wiring/policy.js';
import { startPolicyWatcher } from './wiring/policy-watch.js';
import { installProcessGuard } from './wiring/process-guard.js';
import { buildRuntime } from './wiring/runtime.js';
import { openStores, type Stores } from './wiring/stores.js';

export interface ServeOptions {
  source: ConfigSource;
  port?: number;
  adminPort?: number;
  host?: string;
  logger?: Logger;
  clock?: Clock;
  /** Stable id of this instance in the audit chain (default: host + data dir hash + random). */
  instanceId?: string;
  /** Reload the policy when the config file changes. */
  watch?: boolean;
  /**
   * Install the process guard (src/wiring/process-guard.ts): a dependency's uncaught error is logged
   * and counted, the process stays up; any other uncaught error exits. `sluice serve` sets it.
   */
  guardProcess?: boolean;
}

export interface RunningSluice {
  gateway: FastifyInstance;
  admin: FastifyInstance;
  urls: { gateway: string; admin: string };
  runtime: () => Runtime;
  stores: Stores;
  /** Earned tiers and scheduled key rotation (src/trust/service.ts); `tick()` runs one pass now. */
  trust: TrustService;
  /** Stops accepting, drains in-flight requests up to the deadline, flushes usage and audit. */
  close(deadlineMs?: number): Promise<void>;
  /** Ends open streams now with an error event (second signal). */
  forceClose(): void;
  /** Where the first admin token was written, when this start created it. */
  adminTokenFile: string | null;
  /** Where the first console password was written, when this start created it. */
  consolePasswordFile: string | null;
}

/** Structured logs (pino) to stdout (fd 1) for `serve`, stderr (fd 2) for one-shot commands. */
export function makeLogger(level: SluiceConfig['log']['level'], fd: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { svc: 'sluice' },
      // Secrets are redacted by path wherever they could appear in a logged object.
      redact: {
        paths: [
          '*.authorization',
          '*.apiKey',
          '*.api_key',
          '*.key',
          '*.token',
          '*.secret',
          '*.pepper',
          'headers["x-api-key"]',
          'req.headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd, sync: fd === 2 }),
  );
}

export { buildRuntime };

export async function serve(opts: ServeOptions): Promise<RunningSluice> {
  let cfg = opts.source.config;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? makeLogger(cfg.log.level);
  const dataDir = cfg.storage.dataDir;
  // 0700: the data dir holds the pepper, keys and the database.
  ensureDataDir(dataDir);
  // A stable audit instance id (`SLUICE_INSTANCE` or `<dataDir>/instance-id`) so the chain resumes after a restart.
  const stores = await openStores(cfg, { clock, logger, instanceId: opts.instanceId, journal: true });
  // The running policy version: the file given (stored as a new version when it changed), else the stored one.
  const stored = await stores.control.latestPolicyVersion();
  let version: number | null;
  const hash = createHash('sha256').update(opts.source.source).digest('hex');
  if (opts.source.file === null && stored) {
    cfg = withDataDir(parseConfig(stored.source, `policy v${stored.version}`), dataDir);
    version = stored.version;
  } else if (stored && stored.hash === hash) {
    version = stored.version;
  } else {
    const v = await stores.control.savePolicyVersion({
      hash,
      source: opts.source.source,
      author: 'sluice serve',
      message: opts.source.file ? `loaded from ${opts.source.file}` : 'built-in default',
      createdAt: clock.now(),
    });
    version = v.version;
  }
  const context = ContextLoader.forFile(opts.source.file);
  let runtime = await buildRuntime(cfg, version, context);

  const upstreams = new Map<string, Upstream>();
  const upstreamConfigs = new Map<string, string>();
  /** Builds upstreams a policy adds or changes; removed or replaced ones close after in-flight calls had time to end. */
  const syncUpstreams = (next: SluiceConfig) => {
    const names = new Set(next.upstreams.map((u) => u.name));
    for (const u of next.upstreams) {
      const json = JSON.stringify(u);
      if (upstreamConfigs.get(u.name) === json) continue;
      const old = upstreams.get(u.name);
      upstreams.set(u.name, createUpstream(u, { clock, baseDir: context.baseDir }));
      upstreamConfigs.set(u.name, json);
      if (old) setTimeout(() => void old.close().catch(() => {}), 600_000).unref();
    }
    for (const [name, u] of upstreams) {
      if (names.has(name)) continue;
      upstreams.delete(name);
      upstreamConfigs.delete(name);
      setTimeout(() => void u.close().catch(() => {}), 600_000).unref();
    }
  };
  syncUpstreams(cfg);

  // Earned tiers (src/trust/): key records are read with the tier their tenant earned or was pinned to.
  let trustRef: TrustService | undefined;
  const tieredControl = withEarnedTiers(stores.control, { tierOf: (r) => trustRef?.tierOf(r) ?? r.tier });
  const auth = new KeyAuthenticator({
    control: tieredControl,
    pepper: stores.pepper,
    clock,
    graceMs: () => runtime.cfg.outage.keyGrace,
    onStale: (err) => stores.controlFailed(err),
    previousPepper: stores.previousPepper,
    onRehashError: (err) =>
      logger.warn({ err: (err as Error).message }, 'pepper rotation: rewriting a key hash failed'),
  });
  // Signing keys in the control store, DPoP/TOTP replay marks in Redis (or the control store): shared by every instance.
  const credentials = await openCredentials(cfg, {
    clock,
    sql: stores.sql,
    pepper: stores.pepper,
    // Needed only while the keys sealed under it are opened once (then sealed again).
    previousPepper: stores.previousPepper?.pepper,
    logger,
  });
  const tokens = credentials.tokens;
  const dpopRequired = (tier: string, r: ApiKeyRecord) =>
    r.dpop === 'required' || runtime.cfg.tiers[tier]?.dpop === 'required';
  const jwt = new JwtVerifier(tokens, tieredControl, clock, dpopRequired);
  stores.onInvalidate((keyId) => {
    if (keyId === '*') auth.invalidateAll();
    else {
      auth.invalidate(keyId);
      jwt.invalidate(keyId);
    }
  });
  const rotation = setInterval(() => void tokens.rotateIfDue().catch(() => {}), 60_000);
  rotation.unref();
  const usage = new UsageWriter({
    ledger: stores.usage,
    journal: stores.journal,
    onError: (err) => {
      stores.controlFailed(err);
      logger.warn({ err: err.message }, 'usage write failed; will retry');
    },
  });
  // Applied here at once, and on every other instance through Redis (or their 2 s poll).
  let applyLocal: (v: number) => Promise<void> = async () => {};
  const policies = new PolicyService(
    stores.control,
    clock,
    async (v) => {
      await stores.publishPolicy(v);
      await applyLocal(v);
    },
    async (next) => {
      const probe = ContextLoader.forFile(opts.source.file);
      try {
        await probe.load(next);
      } finally {
        probe.close();
      }
    },
  );
  let trustStoreRef: { setIssued(id: string, at: number): Promise<void> } | undefined;
  const keys = new KeyService(
    stores.control,
    stores.pepper,
    clock,
    () => Object.keys(runtime.cfg.tiers),
    async (id, at) => trustStoreRef?.setIssued(id, at),
  );

  const metrics = createMetrics({ auditStats: () => stores.audit.stats() });
  const dependencyErrors = new Counter({
    name: 'sluice_dependency_errors_total',
    help: 'Errors of a dependency (database, Redis, socket) contained by the process guard instead of crashing',
    labelNames: ['kind'],
    registers: [metrics.registry],
  });
  new Gauge({
    name: 'sluice_journal_pending_records',
    help: 'Usage rows and audit events in the local journal not yet committed to the control store',
    registers: [metrics.registry],
    collect() {
      this.set(stores.journal?.stats().pending ?? 0);
    },
  });
  const removeGuard = opts.guardProcess
    ? installProcessGuard({ log: logger, count: (kind) => dependencyErrors.inc({ kind }) })
    : () => {};
  const alerts = new AlertEngine({
    config: () => runtime.cfg.alerts,
    clock,
    audit: stores.audit,
    logger,
    policyVersion: () => runtime.version,
  });
  const limitWatch = new LimitWatch();
  // Per-version figures of the last apply (`sluice policy watch`), and its regression alert.
  const policyWatcher = startPolicyWatcher({
    clock,
    version: runtime.version,
    notify: (e) => alerts.notify(e),
  });
  // Deprecations: a per-tenant metric, and one notice per (entry, tenant) recorded in the control store.
  const notices = new SqlDeprecationNotices(stores.sql);
  const deprecationNotifier = new DeprecationNotifier({
    clock,
    claim: (entry, tenant, now) => notices.claim(entry, tenant, now),
    notify: (e) => alerts.notify(e),
    count: (tenant, key) => metrics.deprecatedUse(tenant, key),
    onError: (err) => logger.warn({ err: err.message }, 'deprecation notice not recorded; will retry'),
  });
  // Abuse detection: cases are audited; a quarantine or throttle tells the partner through the
  // `quarantine` alert (signed webhook). Unreviewed holds expire on a timer.
  // Cases are written through to the control store, loaded at start and polled (or announced on
  // the invalidation channel) so every instance holds the same quarantines.
  const caseSync = new CaseSync({
    store: new SqlCaseStore(stores.sql),
    clock,
    publish: () => stores.invalidate(CASES_CHANGED),
    onError: (err) => logger.warn({ err: err.message }, 'abuse cases: store write or poll failed'),
  });
  // With Redis, the global signals (networks per key, keys per template, failed credentials per range)
  // are shared between instances: see src/abuse/shared-signals.ts.
  // Loaded only when Redis is configured: the module pulls in ioredis (about 5 MiB resident).
  const abuseShared =
    cfg.redis?.url || cfg.limits.store === 'redis'
      ? (await import('./abuse/shared-signals.js')).openSharedSignals(cfg, (err) =>
          logger.debug({ err: err.message }, 'abuse shared signals: redis error'),
        )
      : undefined;
  const abuse = new AbuseEngine({
    clock,
    config: cfg.abuse,
    shared: abuseShared?.shared,
    onStore: (c) => caseSync.save(c),
    onCase: (c, transition) => {
      stores.audit.emit(caseAuditEvent(c, transition, clock.now(), runtime.version));
      if (transition !== 'note' && (c.kind !== 'flag' || transition !== 'open')) caseSync.announce();
      const alert = caseAlert(c, transition);
      if (alert) alerts.notify(alert);
    },
  });
  caseSync.attach(abuse);
  stores.onInvalidate((id) => {
    if (id === CASES_CHANGED) void caseSync.poll().catch(() => {});
  });
  await caseSync.load().catch((err: Error) => logger.warn({ err: err.message }, 'abuse cases: load failed'));
  caseSync.start();
  const abuseExpiry = setInterval(() => abuse.expire(), 10_000);
  abuseExpiry.unref();
  const trustWiring = await startTrust({
    sql: stores.sql,
    control: stores.control,
    cases: new SqlCaseStore(stores.sql),
    keys: () => keys,
    audit: stores.audit,
    clock,
    logger,
    config: () => runtime.cfg,
    policyVersion: () => runtime.version,
    invalidate: (id) => void stores.invalidate(id),
    flush: async () => {
      await usage.flush();
      await stores.audit.flush();
    },
    onTiersChanged: () => auth.invalidateAll(),
  });
  trustRef = trustWiring.trust;
  trustStoreRef = trustWiring.store;
  stores.onInvalidate((id) => void trustWiring.onInvalidate(id));
  let wasDegraded = false;
  let controlWasDown = false;
  const degradedCheck = setInterval(() => {
    const all = stores.degraded();
    const controlDown = all.includes('control');
    if (controlDown !== controlWasDown) {
      controlWasDown = controlDown;
      metrics.setDegraded('control', controlDown);
      if (controlDown)
        alerts.notify({
          type: 'degraded',
          subject: 'control',
          message: 'the control store is unreachable; usage and audit are spooled to the local journal',
        });
    }
    const d = all.includes('limits');
    if (d !== wasDegraded) {
      wasDegraded = d;
      metrics.setDegraded('limits', d);
      if (d)
        alerts.notify({
          type: 'degraded',
          subject: 'limits',
          message: 'the limit store is unreachable; limits run in degraded mode',
        });
    }
  }, 500);
  degradedCheck.unref();
  // Last-used time and IP per key, written in one batch every few seconds (never a write per request).
  const touched = new Map<string, { id: string; at: number; ip: string | null }>();
  const flushTouches = async () => {
    if (touched.size === 0) return;
    const batch = [...touched.values()];
    touched.clear();
    await stores.control
      .touchKeys(batch)
      .catch((err: Error) => logger.warn({ err: err.message }, 'last-used update failed'));
  };
  const touchTimer = setInterval(() => void flushTouches(), 5000);
  touchTimer.unref();
  // Audit retention: prune hourly, recorded as a signed checkpoint.
  const retention = cfg.audit.retention;
  const pruneTimer = retention
    ? setInterval(() => {
        const now = clock.now();
        void stores.auditStore
          .prune(now - retention, now)
          .catch((err: Error) => logger.warn({ err: err.message }, 'audit prune failed'));
      }, 3_600_000)
    : undefined;
  pruneTimer?.unref();
  const forceEnd = new AbortController();
  const adminTokenFile = await bootstrapAdmin(stores.control, stores.pepper, dataDir, clock);
  // Issue 13: exceptions (overlay on the running policy), the portal and the console's sign-in.
  const web = await createWebParts({
    stores,
    tokens,
    clock,
    logger,
    dataDir,
    config: () => runtime.cfg,
    policyVersion: () => runtime.version,
  });
  // Upstream capacity, fair share, queueing and upstream feedback around the limit store. With a
  // shared store, demand seen here stands for 1/expectedInstances of the whole.
  const admission = new Admission({
    store: stores.limits,
    clock,
    demandScale: cfg.limits.store === 'redis' ? cfg.limits.expectedInstances : 1,
    shutdown: forceEnd.signal,
    onFeedback: (upstream, e) =>
      logger.warn(
        { upstream, reason: e.reason, factor: e.factor, derived: e.derived, capacity: e.capacity },
        'upstream pushed back: capacity lowered',
      ),
  });
  new Gauge({
    name: 'sluice_admission_waiting',
    help: 'Requests waiting in a tier queue (queue.maxWait) for their retry time',
    registers: [metrics.registry],
    collect() {
      this.set(admission.waiting());
    },
  });
  const tlsOf = (t: { cert: string; key: string } | undefined) =>
    t ? { cert: readFileSync(t.cert), key: readFileSync(t.key) } : undefined;
  // The response cache's store (built even when disabled, so a policy reload can turn it on; cheap).
  const responseCache = createCacheStore(cfg, { clock, logger });
  // Traces (policy `tracing:`, read at start): absent when off, so the request path pays nothing.
  const tracer = cfg.tracing.enabled ? new Tracer(cfg.tracing, logger) : undefined;
  const gateway = createGateway({
    cache: responseCache.store,
    tracer,
    onCache: (_tenant, what, saved, bytes) => metrics.cache(what, saved, bytes),
    // Screening signals (issue 12): counted, and evidence for the abuse detectors (injection attempts).
    onScreening: (e) => {
      for (const s of e.signals) metrics.screening(s.direction, s.detector, s.shadow ? 'shadow' : s.action);
      abuse.screened(e);
    },
    tls: tlsOf(cfg.server.tls),
    admission,
    forceEnd: forceEnd.signal,
    authFailures: new AuthFailureLimiter({
      budget: () => runtime.cfg.hardening.authFailures,
      clock,
      onSummary: (s) => stores.audit.emit(summaryAuditEvent(s, clock.now(), runtime.version)),
    }),
    tokens: jwt,
    observe: (o) => {
      metrics.observe(o);
      policyWatcher.watch.observe(o, clock.now());
      web.traffic.observe(o);
    },
    touch: (id, ip, at) => {
      if (touched.size < 100_000) touched.set(id, { id, at, ip });
    },
    onDeprecated: (tenant, entry, sunset) => deprecationNotifier.seen(tenant, entry, sunset),
    onLimitStates: (p, buckets, states) => {
      const crossed = limitWatch.crossings(buckets, states);
      for (const c of crossed) alerts.notify(crossingAlert(c, { tenantId: p.tenantId, keyId: p.keyId }));
    },
    plugins: [tokenRoutes(tokens, clock, dpopRequired), web.gatewayPlugin, clientEndpoints],
    runtime: () => web.overlay(runtime),
    abuse,
    trust: trustWiring.trust,
    auth,
    limits: stores.limits,
    upstreams,
    audit: stores.audit,
    usage,
    clock,
    logger,
    health: () => ({ ready: !closing, degraded: stores.degraded() }),
    // Acknowledged means recorded: a response ends only once its usage row and audit event are in
    // the local journal (group commit, src/stores/journal.ts).
    recorded: stores.journal ? () => stores.journal!.barrier() : undefined,
  });
  const admin = createAdmin({
    tls: tlsOf(cfg.admin.tls),
    hardening: cfg.hardening,
    control: stores.control,
    keys,
    usage: stores.usage,
    audit: stores.audit,
    pepper: stores.pepper,
    previousPepper: stores.previousPepper,
    clock,
    logger,
    invalidateKey: (id) => void stores.invalidate(id),
    policyVersion: () => runtime.version,
    consoleSession: web.consoleAuth.resolve,
    plugins: [
      (app) => registerMetricsRoute(app, metrics),
      (app) => registerAlertsRoute(app, alerts),
      (app, d) =>
        registerPolicyRoutes(app, d, policies, {
          impact: async (source, since) =>
            impactSince(await runtimeForSource(source, opts.source.file), stores, since, () =>
              stores.audit.flush(),
            ),
          watch: (minutes) => policyWatcher.report(minutes),
          sinceOf,
        }),
      (app, d) => registerAuditRoutes(app, d, stores),
      (app, d) => registerCaseRoutes(app, d, () => abuse, new SqlCaseStore(stores.sql)),
      (app, d) =>
        registerTierRoutes(app, d, {
          store: trustWiring.store,
          tiers: () => Object.keys(runtime.cfg.tiers),
          // This instance first (read your writes), then every other one.
          changed: async () => {
            await trustWiring.refresh();
            void stores.invalidate(TIERS_CHANGED);
          },
        }),
      web.adminPlugin,
      (app) =>
        app.get('/admin/v1/review', { preHandler: guard('read') }, async (request) => {
          const days = Number.parseInt((request.query as { days?: string }).days ?? '30', 10) || 30;
          return { days, data: await review(stores.control, stores.sql, runtime.cfg, days, clock.now()) };
        }),
    ],
  });
  let closing = false;

  const host = opts.host ?? cfg.server.host;
  await gateway.listen({ port: opts.port ?? cfg.server.port, host });
  await admin.listen({ port: opts.adminPort ?? cfg.admin.port, host: cfg.admin.host });
  const url = (app: FastifyInstance, h: string) => {
    const a = app.server.address() as AddressInfo;
    const shown = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h;
    const scheme = (app === gateway ? cfg.server.tls : cfg.admin.tls) ? 'https' : 'http';
    return `${scheme}://${shown.includes(':') ? `[${shown}]` : shown}:${a.port}`;
  };
  const urls = { gateway: url(gateway, host), admin: url(admin, cfg.admin.host) };

  const applyVersion = async (v: number) => {
    if (v === runtime.version) return;
    const pv = await stores.control.getPolicyVersion(v);
    if (!pv) return;
    try {
      const next = withDataDir(parseConfig(pv.source, `policy v${v}`), dataDir);
      const previous = runtime.version;
      runtime = await buildRuntime(next, v, context);
      policyWatcher.applied(v, previous);
      abuse.configure(next.abuse);
      syncUpstreams(next);
      cfg = next;
      logger.info({ version: v }, 'policy reloaded');
    } catch (err) {
      logger.error(
        { version: v, err: (err as Error).message },
        'stored policy version is invalid; keeping the running one',
      );
    }
  };
  applyLocal = applyVersion;
  // Every instance follows the latest stored version: pushed over Redis when configured, polled otherwise.
  stores.onPolicy((v) => void applyVersion(v));
  const poll = setInterval(() => {
    stores.control.latestPolicyVersion().then(
      (pv) => {
        if (pv && pv.version > (runtime.version ?? 0)) void applyVersion(pv.version);
      },
      () => {},
    );
  }, 2000);
  poll.unref();
  // Polls the file by name (every 500 ms): an editor's atomic save or a ConfigMap update replaces the
  // file, which a watcher on the old inode would never see again.
  let watched: string | undefined;
  if (opts.watch && opts.source.file) {
    const file = opts.source.file;
    watched = file;
    watchFile(file, { interval: 500 }, (cur, prev) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
      void applyFile(file).catch((err: Error) =>
        logger.error({ file, err: err.message }, 'policy file refused; the running version stays'),
      );
    });
  }
  // The same path as `policy apply`: validation (YAML and the files it names), a new version only
  // when the text changed, every instance told, this one reloaded.
  const applyFile = async (file: string) => {
    await policies.apply(readFileSync(file, 'utf8'), 'serve --watch', `changed on disk: ${file}`, file);
  };

  return {
    adminTokenFile,
    consolePasswordFile: web.consolePasswordFile,
    forceClose: () => {
      forceEnd.abort();
      setTimeout(() => gateway.server.closeAllConnections?.(), 500).unref();
    },
    gateway,
    admin,
    urls,
    runtime: () => runtime,
    stores,
    trust: trustWiring.trust,
    async close(deadlineMs = cfg.shutdown.deadline) {
      const startedAt = Date.now();
      closing = true;
      clearInterval(poll);
      policyWatcher.stop();
      clearInterval(rotation);
      clearInterval(degradedCheck);
      clearInterval(touchTimer);
      clearInterval(abuseExpiry);
      void abuseShared?.close();
      trustWiring.close();
      await caseSync.stop();
      clearInterval(pruneTimer);
      removeGuard();
      if (watched) unwatchFile(watched);
      const timer = setTimeout(() => {
        forceEnd.abort();
        setTimeout(() => gateway.server.closeAllConnections?.(), 500).unref();
      }, deadlineMs);
      timer.unref();
      await Promise.allSettled([gateway.close(), admin.close()]);
      clearTimeout(timer);
      // Flushing gets what is left of the deadline, at least 5 s: a store that never comes back
      // must not hold the process forever. What is still unwritten then is reported loudly.
      const flushBudget = Math.max(5000, deadlineMs - (Date.now() - startedAt));
      const flushing = (async () => {
        await usage.close().catch((err) => logger.error({ err: err.message }, 'usage flush failed'));
        await alerts.close().catch(() => {});
        await web.close();
        await flushTouches();
        context.close();
        for (const u of upstreams.values()) await u.close().catch(() => {});
        await credentials.close().catch(() => {});
        await stores.close();
        await responseCache.close();
        await tracer?.close();
      })();
      const flushed = flushing.then(() => false);
      flushed.catch(() => {}); // a failure after the deadline was already reported below
      let flushTimer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        flushed,
        new Promise<boolean>((r) => {
          flushTimer = setTimeout(() => r(true), flushBudget);
        }),
      ]);
      clearTimeout(flushTimer);
      if (timedOut) {
        const unwritten = { audit: stores.audit.stats().queued, usage: usage.stats().buffered };
        logger.error(unwritten, 'shutdown: the stores did not take the last records in time');
        throw new Error(
          `records not flushed within ${flushBudget} ms (audit ${unwritten.audit}, usage ${unwritten.usage})`,
        );
      }
    },
  };
}

/** On the first start, creates the `admin` user and writes its token once to `<dataDir>/admin-token` (0600). */
async function bootstrapAdmin(
  control: ControlStore,
  pepper: Buffer,
  dataDir: string,
  clock: Clock,
): Promise<string | null> {
  if ((await control.listAdminUsers()).length > 0) return null;
  const token = `sa-${randomBytes(24).toString('base64url')}`;
  await control.createAdminUser({
    id: newId('adm'),
    name: 'admin',
    role: 'admin',
    tokenHash: hashAdminToken(pepper, token),
    createdAt: clock.now(),
  });
  const file = join(dataDir, 'admin-token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

export type { ControlStore, LimitStore, UsageLedger };
