/**
 * Refusals made outside the stages, at the edge of the app: errors Fastify or the JSON parser raise
 * before a route runs (bad JSON, body too large, unsupported media type), unknown routes, and the
 * drain refusal while shutting down. Each is audited once, with the request id and the key id the
 * request presented (unverified, so kept in the details), and answered in the caller's format.
 */

import type { Server } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, type Refusal, refuse } from '../../core/errors.js';
import { parseKey } from '../../core/keys/api-key.js';
import { clientIpOf } from '../client-ip.js';
import { notFoundFor } from '../endpoints/not-found.js';
import { isDraining } from '../hardening.js';
import { sendRefusal, wireFormatOf } from '../wire.js';
import { recordDecision } from './audit-event.js';
import type { GatewayDeps } from './deps.js';
import { codeForError } from './error-table.js';
import { requestLogIds } from './log-ids.js';

const MODEL_PATHS = new Set([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/images/generations',
  '/v1/responses',
  '/v1/messages',
]);

/**
 * Lingering close, as nginx does it: a client still sending a body we refused (413 before reading
 * it) must be able to read the answer. Closing at once resets the connection under its writes
 * (the client sees EPIPE and, being told nothing, retries). So the answer goes out at once on a
 * kept-alive connection and the rest of the body is read and discarded, up to these bounds; past
 * either the connection is closed.
 */
export const LINGER_MAX_BYTES = 64 * 1024 * 1024;
/** 10 s: a client sending at a modest 10 MB/s finishes a 64 MiB body within it. */
export const LINGER_MAX_MS = 10_000;

/** Reads and discards what is left of a request's body, within the bounds above. */
function linger(request: FastifyRequest, reply: FastifyReply): void {
  const req = request.raw;
  if (req.complete) return;
  // Fastify asked for `connection: close`; Node would then destroy the socket under the client's writes.
  reply.removeHeader('connection');
  const socket = req.socket;
  let seen = 0;
  const stop = () => {
    req.off('data', onData);
    socket.destroy();
  };
  const timer = setTimeout(stop, LINGER_MAX_MS);
  timer.unref();
  const onData = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > LINGER_MAX_BYTES) {
      clearTimeout(timer);
      stop();
    }
  };
  req.on('data', onData);
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/** The key id a request presents (Bearer or `x-api-key`), unverified. */
function presentedKeyId(request: FastifyRequest): string | null {
  const auth = request.headers.authorization;
  const raw =
    typeof auth === 'string'
      ? auth.slice(auth.indexOf(' ') + 1).trim()
      : typeof request.headers['x-api-key'] === 'string'
        ? request.headers['x-api-key'].trim()
        : '';
  return raw ? (parseKey(raw)?.id ?? null) : null;
}

/** Audits and answers a refusal made at the edge. */
export function refuseAtEdge(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  r: Refusal,
): FastifyReply {
  const rt = deps.runtime();
  const keyId = presentedKeyId(request);
  recordDecision(deps, request, rt.version, null, {
    action: 'request',
    model: null,
    decision: r.decision ?? 'refused',
    reason: r.code,
    status: ERRORS[r.code].status,
    ip: clientIpOf(rt, request),
    details: keyId
      ? { presentedKeyId: keyId, path: request.url.split('?')[0]!.slice(0, 128) }
      : { path: request.url.split('?')[0]!.slice(0, 128) },
  });
  return sendRefusal(reply, wireFormatOf(request.url), r);
}

export function registerEdge(app: FastifyInstance, deps: GatewayDeps): void {
  app.setErrorHandler((err: Error & { code?: string; publicDetail?: string }, request, reply) => {
    const code = codeForError(err);
    if (code === 'SLUICE_INTERNAL')
      deps.logger.error({ err, ...requestLogIds(deps, request) }, 'unhandled error');
    if (code === 'SLUICE_STORE_UNAVAILABLE') {
      // A store outage, not a bug: a short log line, and the caller is told when to retry.
      deps.logger.error({ err: err.message, ...requestLogIds(deps, request) }, 'store unavailable');
      return refuseAtEdge(
        deps,
        request,
        reply,
        refuse(code, undefined, { decision: 'error', headers: { 'retry-after': '1' } }),
      );
    }
    if (code === 'SLUICE_BODY_TOO_LARGE') linger(request, reply);
    const decision = ERRORS[code].status >= 500 ? 'error' : 'refused';
    return refuseAtEdge(deps, request, reply, refuse(code, err.publicDetail, { decision }));
  });
  app.setNotFoundHandler((request, reply) => {
    if (MODEL_PATHS.has(request.url.split('?')[0]!))
      return sendRefusal(reply, wireFormatOf(request.url), refuse('SLUICE_METHOD_NOT_ALLOWED'));
    // In the format of the vendor the path belongs to, with a hint for a doubled or missing /v1.
    const nf = notFoundFor(request.method, request.url);
    return sendRefusal(reply, nf.format, nf.refusal);
  });
  // First onRequest hook: every answer carries the request id, the drain refusal included.
  app.addHook('onRequest', function edgeGate(this: FastifyInstance, request, reply, done) {
    reply.header('x-request-id', request.id);
    if (isDraining(this.server as Server)) {
      reply.header('connection', 'close');
      refuseAtEdge(
        deps,
        request,
        reply,
        refuse('SLUICE_SHUTTING_DOWN', undefined, { headers: { 'retry-after': '1' } }),
      );
      return;
    }
    done();
  });
}
