/** `/admin/v1/policy`: the running version, history, diff, apply (admin), rollback (admin + step-up). */
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../config/load.js';
import { refuse } from '../core/errors.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';
import { type PolicyService, PolicyServiceError } from './policy-service.js';
import { stepUpOk } from './step-up.js';

function sourceOf(body: unknown): string | undefined {
  const b = body as { source?: unknown } | null;
  return b && typeof b.source === 'string' ? b.source : undefined;
}

export function registerPolicyRoutes(app: FastifyInstance, deps: AdminDeps, policies: PolicyService): void {
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
