/**
 * Anthropic Message Batches (`/v1/messages/batches`): authorised pass-through to the Anthropic
 * upstream the batch's first model routes to, or the mock. The declared size (`requests` and their
 * summed estimate) is charged to the limits of `messages.batches.create`; every model named is
 * authorized. Reading (list, retrieve, results), cancel and delete cost one request each. Ids are
 * served only to their tenant.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MockBatches } from '../../providers/mock-batches.js';
import type { GatewayDeps } from '../app.js';
import { admit } from './admit.js';
import { bad, fail, forward, notFound, ok } from './batch-common.js';
import { anthropicBatchSize } from './batch-size.js';
import { type Owners, passThrough, serverFor } from './upstream-pass.js';

const PATH = '/v1/messages/batches';

export function messageBatchesEndpoints(
  app: FastifyInstance,
  deps: GatewayDeps,
  mock: MockBatches,
  owners: Owners,
): void {
  /** Where the caller fetches results: this gateway, as the request reached it. */
  const resultsUrl = (request: FastifyRequest) => (id: string) =>
    `${request.protocol}://${request.headers.host ?? 'localhost'}${PATH}/${id}/results`;
  const own = (tenant: string, request: FastifyRequest) => (status: number, json: unknown) => {
    if (status >= 300 || !json || typeof json !== 'object') return undefined;
    const b = json as { id?: unknown; results_url?: unknown };
    if (typeof b.id !== 'string') return undefined;
    owners.set(b.id, tenant);
    // The results are fetched through Sluice (authorised), never straight from the upstream.
    return b.results_url ? { ...b, results_url: resultsUrl(request)(b.id) } : undefined;
  };

  app.post(PATH, async (request, reply) => {
    const body = (request.body ?? {}) as { requests?: unknown };
    const first = Array.isArray(body.requests)
      ? (body.requests[0] as { params?: { model?: unknown } })?.params?.model
      : undefined;
    const model = typeof first === 'string' ? first : null;
    const a = await admit(deps, request, reply, 'anthropic', {
      action: 'messages.batches.create',
      model,
      prepare: async (_p, rt) => {
        const size = anthropicBatchSize(body.requests, rt);
        return typeof size === 'string' ? bad(size, 'requests') : { size, models: size.models };
      },
    });
    if (!a) return reply;
    const tenant = a.principal.tenantId;
    const server = serverFor(a.rt, 'anthropic', model ?? undefined);
    if (server.kind === 'none') return fail(a, reply, 'anthropic', bad(server.why, 'requests'));
    if (server.kind === 'upstream')
      return forward(
        deps,
        request,
        a,
        reply,
        'anthropic',
        () =>
          passThrough(server.cfg, 'POST', PATH, JSON.stringify(body), 'application/json', request.headers),
        own(tenant, request),
      );
    const requests = body.requests as { custom_id: string; params: Record<string, unknown> }[];
    return ok(a, reply, mock.createMessageBatch(tenant, requests, deps.clock.now(), resultsUrl(request)));
  });

  app.get(PATH, async (request, reply) => {
    const a = await admit(deps, request, reply, 'anthropic', {
      action: 'messages.batches.read',
      model: null,
    });
    if (!a) return reply;
    const server = serverFor(a.rt, 'anthropic');
    const tenant = a.principal.tenantId;
    if (server.kind === 'none') return fail(a, reply, 'anthropic', notFound(server.why));
    if (server.kind === 'mock') return ok(a, reply, mock.listMessageBatches(tenant));
    const q = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    return forward(
      deps,
      request,
      a,
      reply,
      'anthropic',
      () => passThrough(server.cfg, 'GET', `${PATH}${q}`, undefined, undefined, request.headers),
      (status, json) => {
        const l = json as { data?: { id?: string }[] };
        if (status < 300 && Array.isArray(l.data))
          return {
            ...l,
            data: l.data
              .filter((b) => typeof b.id === 'string' && owners.owns(b.id, tenant))
              .map((b) => ({
                ...b,
                results_url: (b as { results_url?: unknown }).results_url ? resultsUrl(request)(b.id!) : null,
              })),
          };
        return undefined;
      },
    );
  });

  const byId =
    (method: 'GET' | 'POST' | 'DELETE', suffix: '' | '/cancel' | '/results', action: string) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const id = (request.params as { id: string }).id;
      const a = await admit(deps, request, reply, 'anthropic', { action, model: null });
      if (!a) return reply;
      const server = serverFor(a.rt, 'anthropic');
      const tenant = a.principal.tenantId;
      const missing = notFound(`no message batch "${id.slice(0, 100)}"`);
      if (server.kind === 'none') return fail(a, reply, 'anthropic', notFound(server.why));
      if (server.kind === 'mock') {
        const b = mock.messageBatch(tenant, id);
        if (!b) return fail(a, reply, 'anthropic', missing);
        if (method === 'DELETE') return ok(a, reply, mock.deleteMessageBatch(tenant, id));
        if (suffix === '/results') {
          a.done(200);
          return reply.type('application/x-jsonl').send(b.results);
        }
        return ok(a, reply, b.object);
      }
      if (!owners.owns(id, tenant)) return fail(a, reply, 'anthropic', missing);
      return forward(
        deps,
        request,
        a,
        reply,
        'anthropic',
        () =>
          passThrough(
            server.cfg,
            method,
            `${PATH}/${encodeURIComponent(id)}${suffix}`,
            undefined,
            undefined,
            request.headers,
          ),
        suffix === '/results' ? undefined : own(tenant, request),
      );
    };
  app.get(`${PATH}/:id`, byId('GET', '', 'messages.batches.read'));
  app.get(`${PATH}/:id/results`, byId('GET', '/results', 'messages.batches.read'));
  app.post(`${PATH}/:id/cancel`, byId('POST', '/cancel', 'messages.batches.cancel'));
  app.delete(`${PATH}/:id`, byId('DELETE', '', 'messages.batches.delete'));
}
