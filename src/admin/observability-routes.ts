/**
 * The management plane's routes over observability data: GET /metrics and GET /admin/v1/alerts.
 * They live here, not in src/observability/, so observability never imports the admin plane.
 */
import type { FastifyInstance } from 'fastify';
import { refuse } from '../core/errors.js';
import { ALERT_TYPES, type AlertEngine, type AlertType } from '../observability/alerts.js';
import type { Metrics } from '../observability/metrics.js';
import { guard, sendAdminError } from './guard.js';

/**
 * Serves GET /metrics (Prometheus text format) on the management plane. The admin app's onRequest
 * hook authenticates every request; any admin role may read metrics (`guard('read')`, which also
 * refuses a request no hook authenticated).
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: Pick<Metrics, 'registry'>): void {
  app.get('/metrics', { preHandler: guard('read') }, async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(body);
  });
}

/**
 * GET /admin/v1/alerts?limit=&type=&tenant= : the recent alerts, newest first, with their
 * deliveries. Any admin role may read it.
 */
export function registerAlertsRoute(app: FastifyInstance, engine: Pick<AlertEngine, 'list'>): void {
  app.get('/admin/v1/alerts', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as { limit?: string; type?: string; tenant?: string };
    const n = Number(q.limit);
    const limit = Number.isInteger(n) && n > 0 ? Math.min(n, 1000) : 100;
    if (q.type && !(ALERT_TYPES as readonly string[]).includes(q.type)) {
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', `type must be one of ${ALERT_TYPES.join(', ')}`),
      );
    }
    return {
      data: engine.list({ limit, type: q.type as AlertType | undefined, tenantId: q.tenant || undefined }),
    };
  });
}
