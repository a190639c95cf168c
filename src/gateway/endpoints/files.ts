/**
 * OpenAI Files API (`/v1/files`): authorised pass-through to the OpenAI upstream, or the mock's
 * minimal store. Actions `files.create`, `files.read` (list, retrieve, content), `files.delete`; each
 * one request in limits. Ids are served only to the tenant that created them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MockBatches } from '../../providers/mock-batches.js';
import type { GatewayDeps } from '../app.js';
import { admit } from './admit.js';
import { bad, fail, forward, notFound, ok } from './batch-common.js';
import { type Owners, passThrough, serverFor } from './upstream-pass.js';

export function filesEndpoints(
  app: FastifyInstance,
  deps: GatewayDeps,
  mock: MockBatches,
  owners: Owners,
): void {
  // The upload is passed on as received (bytes), within the body size cap of every request.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  app.post('/v1/files', async (request, reply) => {
    const a = await admit(deps, request, reply, 'openai', { action: 'files.create', model: null });
    if (!a) return reply;
    const ct = request.headers['content-type'] ?? '';
    const raw = request.body;
    if (!Buffer.isBuffer(raw) || !ct.startsWith('multipart/form-data'))
      return fail(
        a,
        reply,
        'openai',
        bad('upload a file as multipart/form-data with "file" and "purpose"', 'file'),
      );
    const server = serverFor(a.rt, 'openai');
    const tenant = a.principal.tenantId;
    if (server.kind === 'none') return fail(a, reply, 'openai', notFound(server.why));
    if (server.kind === 'upstream')
      return forward(
        deps,
        request,
        a,
        reply,
        'openai',
        () => passThrough(server.cfg, 'POST', '/files', raw, ct, request.headers),
        (status, json) => {
          const id = (json as { id?: unknown }).id;
          if (status < 300 && typeof id === 'string') owners.set(id, tenant);
        },
      );
    let form: FormData;
    try {
      form = await new Request('http://local/', {
        method: 'POST',
        body: new Uint8Array(raw),
        headers: { 'content-type': ct },
      }).formData();
    } catch {
      return fail(a, reply, 'openai', bad('the multipart body could not be read', 'file'));
    }
    const file = form.get('file');
    const purpose = form.get('purpose');
    if (!file || typeof file === 'string') return fail(a, reply, 'openai', bad('"file" is required', 'file'));
    if (typeof purpose !== 'string' || !purpose)
      return fail(a, reply, 'openai', bad('"purpose" is required', 'purpose'));
    const bytes = Buffer.from(await file.arrayBuffer());
    return ok(a, reply, mock.createFile(tenant, file.name || 'upload', purpose, bytes, deps.clock.now()));
  });

  app.get('/v1/files', async (request, reply) => {
    const a = await admit(deps, request, reply, 'openai', { action: 'files.read', model: null });
    if (!a) return reply;
    const server = serverFor(a.rt, 'openai');
    const tenant = a.principal.tenantId;
    if (server.kind === 'none') return fail(a, reply, 'openai', notFound(server.why));
    if (server.kind === 'mock') return ok(a, reply, mock.listFiles(tenant));
    const q = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    // The upstream account is shared: the list keeps only this tenant's files.
    return forward(
      deps,
      request,
      a,
      reply,
      'openai',
      () => passThrough(server.cfg, 'GET', `/files${q}`, undefined, undefined, request.headers),
      (status, json) => {
        const l = json as { data?: { id?: string }[] };
        if (status < 300 && Array.isArray(l.data))
          return { ...l, data: l.data.filter((f) => typeof f.id === 'string' && owners.owns(f.id, tenant)) };
        return undefined;
      },
    );
  });

  const byId =
    (method: 'GET' | 'DELETE', suffix: string, action: string) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const id = (request.params as { id: string }).id;
      const a = await admit(deps, request, reply, 'openai', { action, model: null });
      if (!a) return reply;
      const server = serverFor(a.rt, 'openai');
      const tenant = a.principal.tenantId;
      const missing = notFound(`no file "${id.slice(0, 100)}"`);
      if (server.kind === 'none') return fail(a, reply, 'openai', notFound(server.why));
      if (server.kind === 'mock') {
        const f = mock.file(tenant, id);
        if (!f) return fail(a, reply, 'openai', missing);
        if (method === 'DELETE') return ok(a, reply, mock.deleteFile(tenant, id));
        if (suffix) {
          a.done(200);
          return reply.type('application/octet-stream').send(f.content);
        }
        return ok(a, reply, f.object);
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
            method,
            `/files/${encodeURIComponent(id)}${suffix}`,
            undefined,
            undefined,
            request.headers,
          ),
        (status) => {
          if (method === 'DELETE' && status < 300) owners.delete(id);
        },
      );
    };
  app.get('/v1/files/:id', byId('GET', '', 'files.read'));
  app.get('/v1/files/:id/content', byId('GET', '/content', 'files.read'));
  app.delete('/v1/files/:id', byId('DELETE', '', 'files.delete'));
}
