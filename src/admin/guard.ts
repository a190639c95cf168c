/**
 * Route permissions and the error reply of the management plane, apart from the admin app so the
 * modules that add admin routes (step-up, policy, audit, metrics, alerts) need not import the app.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, openAIErrorBody, type Refusal, refuse } from '../core/errors.js';
import type { AdminRole } from '../core/ports.js';

export type Permission = 'read' | 'keys' | 'admin';
const ALLOWED: Record<Permission, AdminRole[]> = {
  read: ['admin', 'operator', 'auditor'],
  keys: ['admin', 'operator'],
  admin: ['admin'],
};

export function sendAdminError(reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(ERRORS[r.code].status).send(openAIErrorBody(r));
}

/** Declares a route's permission; the preHandler checks it after authentication. */
export function guard(perm: Permission) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const u = request.admin;
    if (!u) return sendAdminError(reply, refuse('SLUICE_ADMIN_UNAUTHORIZED'));
    if (!ALLOWED[perm].includes(u.role))
      return sendAdminError(
        reply,
        refuse(
          'SLUICE_ADMIN_FORBIDDEN',
          `role "${u.role}" cannot ${perm === 'read' ? 'read this' : 'do this'}`,
        ),
      );
  };
}
