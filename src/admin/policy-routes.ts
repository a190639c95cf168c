/**
 * `/admin/v1/policy`: the running version, history, diff, apply (admin), rollback (admin + step-up),
 * impact of a candidate on recorded traffic and the watch of the last apply (read).
 */
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../config/load.js';
import { refuse } from '../core/errors.js';
import type { ImpactReport } from '../core/policy-test/impact.js';
import type { WatchReport } from '../observability/policy-watch.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';
import { type PolicyService, PolicyServiceError } from './policy-service.js';
import { stepUpOk } from './step-up.js';

function sourceOf(body: unknown): string | undefined {
  const b = body as { source?: unknown } | null;
  return b && typeof b.source === 'string' ? b.source : undefined;
}

/** What the impact and watch routes need from the running process (absent: those routes answer 404). */
export interface PolicyInsight {
  /** Replays the calls recorded since `since` (ms) against the candidate policy text. */
  impact(source: string, since: number): Promise<ImpactReport>;
  /** Before/after of the last apply over `minutes`. */
  watch(minutes: number): WatchReport;
  sinceOf(text: string, now: number): number | undefined;
}

export function registerPolicyRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  policies: PolicyService,
  insight?: PolicyInsight,
): void {
  if (insight) registerInsightRoutes(app, deps, insight);
  app.get('/admin/v1/policy', { preHandler: guard('read') }, async () => {
    const v = await policies.running();
    return v
      ? {
          version: v.version,
          hash: v.hash,
          author: v.author,
          message: v.message,
          createdAt: new Date(v.createdAt).toISOString(),
          source: v.source,
        }
      : { version: null };
  });
  app.get('/admin/v1/policy/versions', { preHandler: guard('read') }, async () => ({
    data: (await policies.history()).map((v) => ({ ...v, createdAt: new Date(v.createdAt).toISOString() })),
  }));
  app.post('/admin/v1/policy/diff', { preHandler: guard('read') }, async (request, reply) => {
    const source = sourceOf(request.body);
    if (!source)
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', '"source" (the policy YAML) is required'));
    try {
      return await policies.diff(source);
    } catch (err) {
      if (err instanceof ConfigError)
        return sendAdminError(reply, refuse('SLUICE_POLICY_INVALID', err.message));
      throw err;
    }
  });
  app.post('/admin/v1/policy', { preHandler: guard('admin') }, async (request, reply) => {
    const source = sourceOf(request.body);
    const b = (request.body ?? {}) as { message?: unknown };
    if (!source)
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', '"source" (the policy YAML) is required'));
    try {
      const r = await policies.apply(
        source,
        request.admin!.name,
        typeof b.message === 'string' ? b.message : 'applied via admin API',
      );
      auditAdmin(deps, request, 'policy.apply', {
        version: r.version,
        unchanged: r.unchanged,
        changes: r.changes.length,
      });
      return reply.code(r.unchanged ? 200 : 201).send(r);
    } catch (err) {
      if (err instanceof ConfigError) {
        auditAdmin(deps, request, 'policy.apply', { refused: true }, 400);
        return sendAdminError(reply, refuse('SLUICE_POLICY_INVALID', err.message));
      }
      throw err;
    }
  });
  app.post('/admin/v1/policy/rollback', { preHandler: guard('admin') }, async (request, reply) => {
    if (!(await stepUpOk(request, reply, deps.clock))) return reply;
    const b = (request.body ?? {}) as { version?: unknown };
    try {
      const r = await policies.rollback(
        request.admin!.name,
        typeof b.version === 'number' ? b.version : undefined,
      );
      auditAdmin(deps, request, 'policy.rollback', { version: r.version, restored: r.restored });
      return r;
    } catch (err) {
      if (err instanceof PolicyServiceError)
        return sendAdminError(reply, refuse('SLUICE_ADMIN_NOT_FOUND', err.message));
      throw err;
    }
  });
}

function registerInsightRoutes(app: FastifyInstance, deps: AdminDeps, insight: PolicyInsight): void {
  app.post('/admin/v1/policy/impact', { preHandler: guard('read') }, async (request, reply) => {
    const source = sourceOf(request.body);
    if (!source)
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', '"source" (the candidate policy YAML) is required'),
      );
    const raw = (request.body as { since?: unknown }).since ?? '24h';
    const since = typeof raw === 'string' ? insight.sinceOf(raw, deps.clock.now()) : undefined;
    if (since === undefined)
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', '"since" must be an ISO date or a duration such as 24h', {
          param: 'since',
        }),
      );
    try {
      return await insight.impact(source, since);
    } catch (err) {
      if (err instanceof ConfigError)
        return sendAdminError(reply, refuse('SLUICE_POLICY_INVALID', err.message));
      throw err;
    }
  });
  app.get('/admin/v1/policy/watch', { preHandler: guard('read') }, async (request, reply) => {
    const raw = (request.query as { minutes?: string }).minutes ?? '10';
    const minutes = /^\d+$/.test(raw) ? Number.parseInt(raw, 10) : 0;
    if (minutes < 1 || minutes > 1440)
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', '"minutes" must be a whole number from 1 to 1440', { param: 'minutes' }),
      );
    return insight.watch(minutes);
  });
}
