/** Shared by the Files and Batches endpoints: answering, forwarding, and refusing in the caller's format. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, type ErrorCode, type Refusal, refuse } from '../../core/errors.js';
import type { GatewayDeps } from '../app.js';
import { sendRefusal, type WireFormat } from '../wire.js';
import type { Admitted } from './admit.js';
import type { PassAnswer } from './upstream-pass.js';

/** Ends the request with a refusal (audited as an error of that code). */
export function fail(a: Admitted, reply: FastifyReply, format: WireFormat, r: Refusal): FastifyReply {
  a.done(ERRORS[r.code].status, r.code);
  sendRefusal(reply, format, r);
  return reply;
}

export function notFound(what: string): Refusal {
  return refuse('SLUICE_NOT_FOUND', what);
}

/** Ends the request with a JSON answer. */
export function ok(a: Admitted, reply: FastifyReply, body: unknown, status = 200): FastifyReply {
  a.done(status);
  reply.code(status).send(body);
  return reply;
}

/**
 * Calls the upstream and sends its answer as received (after `inspect`, e.g. to note an id's owner);
 * a network failure is a 502 in the caller's format.
 */
export async function forward(
  deps: GatewayDeps,
  request: FastifyRequest,
  a: Admitted,
  reply: FastifyReply,
  format: WireFormat,
  call: () => Promise<PassAnswer>,
  inspect?: (status: number, json: unknown) => unknown,
): Promise<FastifyReply> {
  let res: PassAnswer;
  try {
    res = await call();
  } catch (err) {
    deps.logger.warn({ reqId: request.id, err: (err as Error).message }, 'batch/files upstream failed');
    return fail(a, reply, format, refuse('SLUICE_UPSTREAM_ERROR'));
  }
  let body: Buffer | unknown = res.body;
  if (inspect && res.headers['content-type']?.includes('json')) {
    try {
      const replaced = inspect(res.status, JSON.parse(res.body.toString('utf8')));
      if (replaced !== undefined) body = replaced;
    } catch {
      // not JSON after all: passed back as received
    }
  }
  a.done(res.status, res.status >= 400 ? `upstream_${res.status}` : undefined);
  reply.code(res.status).headers(res.headers).send(body);
  return reply;
}

/** The refusal for a bad request body. */
export function bad(detail: string, param?: string, code: ErrorCode = 'SLUICE_BAD_REQUEST'): Refusal {
  return refuse(code, detail, param ? { param } : undefined);
}
