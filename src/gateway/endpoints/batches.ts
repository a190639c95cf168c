/**
 * OpenAI Batch API (`/v1/batches`): authorised pass-through to the OpenAI upstream, or the mock. The
 * batch's declared size (its input file's requests and their summed estimate) is charged to the
 * limits of `batches.create` when it is created; every model it names is authorized. `batches.read`
 * (list, retrieve) and `batches.cancel` cost one request. Ids are served only to their tenant.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MockBatches } from '../../providers/mock-batches.js';
import type { GatewayDeps } from '../app.js';
import { admit, type BatchPlan } from './admit.js';
import { bad, fail, forward, notFound, ok } from './batch-common.js';
import { openAIBatchSize } from './batch-size.js';
import { type Owners, passThrough, serverFor } from './upstream-pass.js';

const ENDPOINTS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses'];

export function batchesEndpoints(
  app: FastifyInstance,
  deps: GatewayDeps,
  mock: MockBatches,
  owners: Owners,
): void {
  /** Notes the tenant of a batch and of its output files, so it may read them. */
  const own = (tenant: string) => (status: number, json: unknown) => {
    if (status >= 300 || !json || typeof json !== 'object') return;
    const b = json as { id?: unknown; output_file_id?: unknown; error_file_id?: unknown };
    for (const id of [b.id, b.output_file_id, b.error_file_id])
      if (typeof id === 'string') owners.set(id, tenant);
  };

  app.post('/v1/batches', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const fileId = typeof body.input_file_id === 'string' ? body.input_file_id : '';
    let content: Buffer | undefined;
    const a = await admit(deps, request, reply, 'openai', {
      action: 'batches.create',
      model: null,
      prepare: async (p, rt): Promise<BatchPlan | ReturnType<typeof bad>> => {
        if (!fileId) return bad('"input_file_id" is required', 'input_file_id');
        if (typeof body.endpoint !== 'string' || !ENDPOINTS.includes(body.endpoint))
          return bad(`"endpoint" must be one of ${ENDPOINTS.join(', ')}`, 'endpoint');
        if (typeof body.completion_window !== 'string')
          return bad('"completion_window" is required', 'completion_window');
        const server = serverFor(rt, 'openai');
        if (server.kind === 'none') return notFound(server.why);
        if (server.kind === 'mock') content = mock.file(p.tenantId, fileId)?.content;
        else if (owners.owns(fileId, p.tenantId)) {
          const res = await passThrough(
            server.cfg,
            'GET',
            `/files/${encodeURIComponent(fileId)}/content`,
            undefined,
            undefined,
            request.headers,
          ).catch(() => undefined);
          if (res && res.status < 300) content = res.body;
        }
        if (!content)
          return bad(`no input file "${fileId.slice(0, 100)}"`, 'input_file_id', 'SLUICE_NOT_FOUND');
        const size = openAIBatchSize(content.toString('utf8'), rt);
        if (typeof size === 'string')
          return bad(`input file ${fileId.slice(0, 100)}: ${size}`, 'input_file_id');
        return { size, models: size.models };
      },
    });
    if (!a) return reply;
    const tenant = a.principal.tenantId;
    const server = serverFor(a.rt, 'openai');
    if (server.kind === 'upstream')
      return forward(
        deps,
        request,
        a,
        reply,
        'openai',
        () =>
          passThrough(
            server.cfg,
            'POST',
            '/batches',
            JSON.stringify(body),
            'application/json',
            request.headers,
          ),
        own(tenant),
      );
    const created = mock.createBatch(
      tenant,
      body as Parameters<MockBatches['createBatch']>[1],
      deps.clock.now(),
    );
    return created
      ? ok(a, reply, created)
      : fail(a, reply, 'openai', notFound(`no input file "${fileId.slice(0, 100)}"`));
  });

  app.get('/v1/batches', async (request, reply) => {
    const a = await admit(deps, request, reply, 'openai', { action: 'batches.read', model: null });
    if (!a) return reply;
    const server = serverFor(a.rt, 'openai');
    const tenant = a.principal.tenantId;
    if (server.kind === 'none') return fail(a, reply, 'openai', notFound(server.why));
    if (server.kind === 'mock') return ok(a, reply, mock.listBatches(tenant));
    const q = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    return forward(
      deps,
      request,
      a,
      reply,
      'openai',
      () => passThrough(server.cfg, 'GET', `/batches${q}`, undefined, undefined, request.headers),
      (status, json) => {
        const l = json as { data?: { id?: string }[] };
        if (status < 300 && Array.isArray(l.data))
          return { ...l, data: l.data.filter((b) => typeof b.id === 'string' && owners.owns(b.id, tenant)) };
        return undefined;
      },
    );
  });

  const byId =
    (suffix: '' | '/cancel', action: string) => async (request: FastifyRequest, reply: FastifyReply) => {
      const id = (request.params as { id: string }).id;
      const a = await admit(deps, request, reply, 'openai', { action, model: null });
      if (!a) return reply;
      const server = serverFor(a.rt, 'openai');
      const tenant = a.principal.tenantId;
      const missing = notFound(`no batch "${id.slice(0, 100)}"`);
      if (server.kind === 'none') return fail(a, reply, 'openai', notFound(server.why));
      if (server.kind === 'mock') {
        const b = suffix ? mock.cancelBatch(tenant, id) : mock.batch(tenant, id);
        return b ? ok(a, reply, b) : fail(a, reply, 'openai', missing);
      }
      if (!owners.owns(id, tenant)) return fail(a, reply, 'openai', missing);
      return forward(
        deps,
        request,
        a,
        reply,
        'openai',
        () =>
          passThrough(
            server.cfg,
            suffix ? 'POST' : 'GET',
            `/batches/${encodeURIComponent(id)}${suffix}`,
            undefined,
            undefined,
            request.headers,
          ),
        own(tenant),
      );
    };
  app.get('/v1/batches/:id', byId('', 'batches.read'));
  app.post('/v1/batches/:id/cancel', byId('/cancel', 'batches.cancel'));
}
