/**
 * The data plane. `createGateway(deps)` builds a Fastify app and never listens; `main.ts` does.
 *
 * Every model call runs the stage list of src/gateway/pipeline/stages.ts: authenticate -> parse ->
 * context checks -> authorize -> screen input -> cache -> limit -> forward -> screen output, then
 * settle -> record when the answer or stream has ended. Each stage returns a Refusal value to stop;
 * the runner audits it once and answers it once, in the caller's wire format (docs/architecture.md).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ENDPOINT_ACTIONS } from '../core/authz/actions.js';
import type { Endpoint } from '../core/ports.js';
import { clientIpOf } from './client-ip.js';
import {
  capConnections,
  closeAuthFailures,
  keyOutcome,
  listenerOptions,
  requestGate,
  startDrain,
} from './hardening.js';
import { newContext, type RequestContext } from './pipeline/context.js';
import type { GatewayDeps } from './pipeline/deps.js';
import { registerEdge } from './pipeline/edge.js';
import { respond } from './pipeline/respond.js';
import { finish, runStages, type Stage } from './pipeline/runner.js';
import { trackWaiting } from './pipeline/stages/forward.js';
import { defaultStages } from './pipeline/stages.js';
import { hardenJsonParser } from './request-checks.js';
import type { WireFormat } from './wire.js';

export type { GatewayDeps, Outcome, TokenVerifier } from './pipeline/deps.js';
export { authenticateRequest as authenticate } from './pipeline/stages/authenticate.js';

const ENDPOINT_PATHS: [Endpoint, string][] = [
  ['chat', '/v1/chat/completions'],
  ['completions', '/v1/completions'],
  ['embeddings', '/v1/embeddings'],
  ['images', '/v1/images/generations'],
  ['responses', '/v1/responses'],
  ['messages', '/v1/messages'],
];

export function createGateway(deps: GatewayDeps): FastifyInstance {
  trackWaiting(deps);
  const initial = deps.runtime().cfg;
  const app = Fastify({
    logger: false,
    bodyLimit: initial.hardening.maxBodyBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // Draining is refused by the edge gate, in the caller's wire format.
    return503OnClosing: false,
    forceCloseConnections: false,
    routerOptions: { ignoreTrailingSlash: true },
    ...withTls(listenerOptions(initial.hardening), deps.tls),
  });
  hardenJsonParser(app, initial.hardening);
  app.addHook('onReady', capConnections(initial.hardening, initial.trustedProxies));
  app.addHook('preClose', startDrain);
  registerEdge(app, deps);
  app.addHook('onRequest', requestGate(deps));
  app.addHook('onResponse', keyOutcome(deps));
  app.addHook('onClose', closeAuthFailures(deps));

  const stages = defaultStages();
  deps.stages?.(stages);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const h = deps.health();
    reply.code(h.ready ? 200 : 503);
    return {
      status: h.ready ? (h.degraded.length ? 'degraded' : 'ready') : 'not-ready',
      degraded: h.degraded,
    };
  });
  for (const [endpoint, path] of ENDPOINT_PATHS) {
    const format: WireFormat = endpoint === 'messages' ? 'anthropic' : 'openai';
    const action = ENDPOINT_ACTIONS[endpoint];
    app.post(path, (request, reply) =>
      handle(deps, request, reply, stages.model, stages.end, endpoint, action, format),
    );
  }
  app.post('/v1/tasks/:name', (request, reply) => {
    const name = (request.params as { name: string }).name;
    return handle(deps, request, reply, stages.task, stages.end, 'chat', `tasks.${name}`, 'openai');
  });
  app.get('/v1/models', (request, reply) =>
    handle(deps, request, reply, stages.models, [], null, 'models.list', 'openai'),
  );
  app.get('/sluice/v1/me', (request, reply) =>
    handle(deps, request, reply, stages.me, [], null, 'me.read', 'openai'),
  );
  for (const p of deps.plugins ?? []) p(app, deps);
  return app;
}

/** Runs one request through its stages and sends what they produced. */
async function handle(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  stages: readonly Stage[],
  end: readonly Stage[],
  endpoint: Endpoint | null,
  action: string,
  format: WireFormat,
): Promise<FastifyReply> {
  const rt = deps.runtime();
  const ctx: RequestContext = newContext(deps, request, reply, {
    endpoint,
    action,
    format,
    rt,
    ip: clientIpOf(rt, request),
    end,
  });
  await runStages(ctx, stages);
  if (!ctx.replied) {
    if (ctx.response) respond(ctx);
    else {
      ctx.replied = true;
      reply.send(ctx.answer ?? null);
      finish(ctx);
    }
  }
  // Returning the reply tells Fastify the handler answered (possibly with a stream still flowing).
  return reply;
}

/** Listener options with TLS: Fastify takes the Node server options under `https` instead of `http`. */
export function withTls<T extends { http: object }>(
  opts: T,
  tls: { cert: Buffer; key: Buffer } | undefined,
): T {
  if (!tls) return opts;
  const { http, ...rest } = opts;
  return { ...rest, https: { ...http, cert: tls.cert, key: tls.key } } as unknown as T;
}
