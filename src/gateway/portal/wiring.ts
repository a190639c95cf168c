/**
 * Composition of issue 13's parts for `serve`: the exception service (store, overlay reload on a
 * poll and on the invalidation channel, sweep, webhooks), the runtime wrapper the data plane uses,
 * the portal plugin and the console's sign-in. main.ts calls `createWebParts` once and adds the
 * plugins it returns.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AdminDeps } from '../../admin/app.js';
import { ConsoleAuth } from '../../admin/console-auth.js';
import { TrafficFeed } from '../../admin/console-traffic.js';
import { registerExceptionRoutes } from '../../admin/exceptions-routes.js';
import type { TokenService } from '../../auth/tokens.js';
import type { SluiceConfig } from '../../config/schema.js';
import type { Clock } from '../../core/ports.js';
import { AlertEngine, type AlertType, type AlertWebhook } from '../../observability/alerts.js';
import { SqlExceptionStore } from '../../stores/sql/exception-store.js';
import type { Stores } from '../../wiring/stores.js';
import type { GatewayDeps } from '../app.js';
import type { Runtime } from '../runtime.js';
import { exceptionRuntime } from './exception-runtime.js';
import { ExceptionService } from './exception-service.js';
import { portalRoutes } from './routes.js';
import { serveApp, webDir } from './static.js';
import { PortalQueries } from './usage-queries.js';

/** Announced on the key-invalidation channel when exceptions change; never a key id (those have no `~`). */
export const EXCEPTIONS_CHANGED = '~exceptions';
const WEBHOOK_EVENTS = ['exception.requested', 'exception.decided'];

export interface WebParts {
  exceptions: ExceptionService;
  consoleAuth: ConsoleAuth;
  /** Live traffic per tenant for the console (feed it every request's outcome). */
  traffic: TrafficFeed;
  /** Wraps the running Runtime with the exception overlay (for `GatewayDeps.runtime`). */
  overlay: (rt: Runtime) => Runtime;
  gatewayPlugin: (app: FastifyInstance, deps: GatewayDeps) => void;
  adminPlugin: (app: FastifyInstance, deps: AdminDeps) => void;
  /** Where the first start wrote the console password, if it did. */
  consolePasswordFile: string | null;
  close(): Promise<void>;
}

export async function createWebParts(o: {
  stores: Stores;
  tokens: TokenService;
  clock: Clock;
  logger: Logger;
  config: () => SluiceConfig;
  policyVersion: () => number | null;
  dataDir: string;
}): Promise<WebParts> {
  const { stores, clock, logger } = o;
  const webhooks = new AlertEngine({
    config: () =>
      o.config().exceptions.webhooks.map((w) => ({ ...w, on: WEBHOOK_EVENTS })) as unknown as AlertWebhook[],
    clock,
    audit: stores.audit,
    logger,
    policyVersion: o.policyVersion,
    dedupeMs: 0,
  });
  const exceptions = new ExceptionService({
    store: new SqlExceptionStore(stores.sql),
    clock,
    audit: stores.audit,
    config: o.config,
    policyVersion: o.policyVersion,
    notify: (n) => void webhooks.notify({ ...n, type: n.type as unknown as AlertType, dedupeMs: 0 }),
    publish: () => stores.invalidate(EXCEPTIONS_CHANGED),
    onError: (err) => logger.warn({ err: err.message }, 'exceptions: reload or sweep failed'),
  });
  stores.onInvalidate((id) => {
    if (id === EXCEPTIONS_CHANGED) void exceptions.reload().catch(() => {});
  });
  await exceptions.reload();
  exceptions.start();
  const traffic = new TrafficFeed(() => clock.now());
  const consoleAuth = new ConsoleAuth(stores.sql, stores.control, clock, stores.audit);
  const consolePasswordFile = await consoleAuth.bootstrap(o.dataDir);
  const portal = portalRoutes({
    tokens: o.tokens,
    clock,
    exceptions,
    queries: new PortalQueries(stores.sql),
  });
  return {
    exceptions,
    consoleAuth,
    traffic,
    consolePasswordFile,
    overlay: exceptionRuntime(() => exceptions.overlay(), clock),
    gatewayPlugin: portal,
    adminPlugin: (app, deps) => {
      registerExceptionRoutes(app, deps, exceptions);
      consoleAuth.routes(app, deps);
      traffic.routes(app, deps);
      serveApp(app, '/console', webDir('console'));
    },
    async close() {
      exceptions.stop();
      traffic.close();
      await webhooks.close().catch(() => {});
    },
  };
}
