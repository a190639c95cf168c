/**
 * The caller's address (X-Forwarded-For honoured only through trusted proxies), worked out once per
 * request: the gate, authentication and the pipeline all ask for it.
 */
import type { FastifyRequest } from 'fastify';
import type { Runtime } from './runtime.js';

declare module 'fastify' {
  interface FastifyRequest {
    sluiceClientIp?: string;
  }
}

export function clientIpOf(rt: Runtime, request: FastifyRequest): string {
  let ip = request.sluiceClientIp;
  if (ip === undefined) {
    ip = rt.access.clientIp(
      request.socket.remoteAddress ?? '',
      request.headers['x-forwarded-for'] as string | undefined,
    );
    request.sluiceClientIp = ip;
  }
  return ip;
}
