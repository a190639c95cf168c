/**
 * `/admin/v1/exceptions`: the queue of exception requests and the decisions on them.
 *   GET  /admin/v1/exceptions[?status=pending&tenant=T]   (every role)
 *   GET  /admin/v1/exceptions/:id                         (every role)
 *   POST /admin/v1/exceptions/:id/approve  {limits?, models?, scopes?, duration?, note?}  (admin, operator;
 *        TOTP step-up in x-sluice-otp when the grant is above the policy's threshold)
 *   POST /admin/v1/exceptions/:id/deny     {note?}
 *   POST /admin/v1/exceptions/:id/revoke   {note?}
 * The service audits every decision with the admin user's name.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { refuse } from '../core/errors.js';
import { type ExceptionStatus, exceptionView } from '../core/exceptions/model.js';
import { ExceptionError, type ExceptionService } from '../gateway/portal/exception-service.js';
import { type AdminDeps, guard, sendAdminError } from './app.js';
import { stepUpOk } from './step-up.js';

const STATUSES: ExceptionStatus[] = ['pending', 'approved', 'denied', 'revoked', 'expired'];

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ExceptionError) {
    const code =
      err.kind === 'not-found'
        ? 'SLUICE_ADMIN_NOT_FOUND'
        : err.kind === 'state'
          ? 'SLUICE_EXCEPTION_STATE'
          : err.kind === 'step-up'
            ? 'SLUICE_STEP_UP_REQUIRED'
            : 'SLUICE_EXCEPTION_INVALID';
    return sendAdminError(reply, refuse(code, err.message));
  }
  throw err;
}

export function registerExceptionRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  exceptions: ExceptionService,
): void {
  app.get('/admin/v1/exceptions', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as { status?: string; tenant?: string; limit?: string };
    if (q.status !== undefined && !STATUSES.includes(q.status as ExceptionStatus))
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', `"status" is one of ${STATUSES.join(', ')}`));
    const now = deps.clock.now();
    // Derived expiry: a record stored as pending may already be expired; filter on the derived status.
    const rows = await exceptions.list({
      tenantId: q.tenant || undefined,
      status: q.status === 'expired' ? undefined : (q.status as ExceptionStatus | undefined),
      limit: Number.parseInt(q.limit ?? '200', 10) || 200,
    });
    const views = rows.map((r) => exceptionView(r, now));
    return { data: q.status ? views.filter((v) => v.status === q.status) : views };
  });

  app.get('/admin/v1/exceptions/:id', { preHandler: guard('read') }, async (request, reply) => {
    try {
      return exceptionView(await exceptions.get((request.params as { id: string }).id), deps.clock.now());
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.post('/admin/v1/exceptions/:id/approve', { preHandler: guard('keys') }, async (request, reply) => {
    const id = (request.params as { id: string }).id;
    const body = (request.body ?? {}) as Record<string, unknown>;
    try {
      let steppedUp = false;
      if (await exceptions.approvalNeedsStepUp(id, body)) {
        if (!(await stepUpOk(request, reply, deps.clock))) return reply;
        steppedUp = true;
      }
      const r = await exceptions.approve(id, body, request.admin!.name, steppedUp, {
        requestId: request.id,
        ip: request.ip,
      });
      return exceptionView(r, deps.clock.now());
    } catch (err) {
      return fail(reply, err);
    }
  });

  const decision = (op: 'deny' | 'revoke') => async (request: FastifyRequest, reply: FastifyReply) => {
    const id = (request.params as { id: string }).id;
    const note = ((request.body ?? {}) as { note?: unknown }).note;
    try {
      const meta = { requestId: request.id, ip: request.ip };
      const r =
        op === 'deny'
          ? await exceptions.deny(id, note, request.admin!.name, meta)
          : await exceptions.revoke(id, note, request.admin!.name, meta);
      return exceptionView(r, deps.clock.now());
    } catch (err) {
      return fail(reply, err);
    }
  };
  app.post('/admin/v1/exceptions/:id/deny', { preHandler: guard('keys') }, decision('deny'));
  app.post('/admin/v1/exceptions/:id/revoke', { preHandler: guard('keys') }, decision('revoke'));
}
