/**
 * `/admin/v1/cases`: abuse cases for review (flags, throttles, quarantines) with their evidence.
 * Reading needs any admin role; release, extend, confirm and note need `keys` (admin, operator);
 * release also needs step-up (a fresh second factor). Every transition is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { AbuseEngine, CaseStatus } from '../abuse/engine.js';
import { parseDuration } from '../config/schema.js';
import { refuse } from '../core/errors.js';
import type { SqlCaseStore } from '../stores/sql/case-store.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';
import { stepUpOk } from './step-up.js';

/**
 * With `store`, lists and reads come from the control store (every instance serves the same cases,
 * including those opened elsewhere or closed by the CLI); without it, from this instance's engine.
 */
export function registerCaseRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  engine: () => AbuseEngine,
  store?: SqlCaseStore,
): void {
  const notFound = (id: string) => refuse('SLUICE_ADMIN_NOT_FOUND', `no case "${id.slice(0, 64)}"`);
  app.get('/admin/v1/cases', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as { status?: string; tenant?: string; key?: string; limit?: string };
    const statuses = ['open', 'confirmed', 'released', 'expired'];
    if (q.status && !statuses.includes(q.status))
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', `status must be one of ${statuses.join(', ')}`),
      );
    const limit = Math.min(Math.max(Number.parseInt(q.limit ?? '100', 10) || 100, 1), 5000);
    if (store)
      return {
        data: await store.list({
          status: q.status as CaseStatus | undefined,
          tenantId: q.tenant,
          keyId: q.key,
          limit,
        }),
      };
    const rows = engine().listCases({
      status: q.status as 'open' | undefined,
      tenantId: q.tenant,
    });
    return { data: rows.slice(-limit).reverse() };
  });
  app.get('/admin/v1/cases/:id', { preHandler: guard('read') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const c = (store ? await store.get(id) : undefined) ?? engine().getCase(id);
    if (!c) return sendAdminError(reply, notFound(id));
    return c;
  });
  app.post('/admin/v1/cases/:id/release', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const c = engine().getCase(id);
    if (!c) return sendAdminError(reply, notFound(id));
    if (!(await stepUpOk(request, reply, deps.clock))) return reply;
    const note = (request.body as { note?: unknown } | null)?.note;
    engine().release(
      id,
      request.admin?.name ?? 'admin',
      typeof note === 'string' ? note.slice(0, 2000) : undefined,
    );
    auditAdmin(deps, request, 'cases.release', { case: id, tenant: c.subject.tenantId ?? null });
    return engine().getCase(id);
  });
  app.post('/admin/v1/cases/:id/extend', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    if (!engine().getCase(id)) return sendAdminError(reply, notFound(id));
    const by = (request.body as { by?: unknown } | null)?.by;
    const ms = typeof by === 'string' ? parseDuration(by) : undefined;
    if (ms === undefined || ms <= 0)
      return sendAdminError(
        reply,
        refuse('SLUICE_BAD_REQUEST', '"by" must be a duration such as 12h', { param: 'by' }),
      );
    const c = engine().getCase(id)!;
    const until = Math.max(c.expiresAt ?? deps.clock.now(), deps.clock.now()) + ms;
    if (!engine().extend(id, until, request.admin?.name ?? 'admin'))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_CONFLICT', 'the case is closed'));
    auditAdmin(deps, request, 'cases.extend', { case: id, until, tenant: c.subject.tenantId ?? null });
    return engine().getCase(id);
  });
  app.post('/admin/v1/cases/:id/confirm', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const c = engine().getCase(id);
    if (!c) return sendAdminError(reply, notFound(id));
    if (!engine().confirm(id, request.admin?.name ?? 'admin'))
      return sendAdminError(reply, refuse('SLUICE_ADMIN_CONFLICT', 'the case is closed'));
    auditAdmin(deps, request, 'cases.confirm', { case: id, tenant: c.subject.tenantId ?? null });
    return engine().getCase(id);
  });
  app.post('/admin/v1/cases/:id/note', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const text = (request.body as { text?: unknown } | null)?.text;
    if (typeof text !== 'string' || text.length === 0)
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', '"text" is required', { param: 'text' }));
    if (!engine().note(id, request.admin?.name ?? 'admin', text)) return sendAdminError(reply, notFound(id));
    auditAdmin(deps, request, 'cases.note', { case: id });
    return engine().getCase(id);
  });
}
