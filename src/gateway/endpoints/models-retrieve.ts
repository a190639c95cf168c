/**
 * `GET /v1/models/{id}`: the model if the key may use it and a route serves it; otherwise 404 in the
 * caller's format (OpenAI's, or Anthropic's when the request carries `anthropic-version`, as the
 * Anthropic SDK's `models.retrieve` does). Never says whether a model the key may not use exists.
 */
import type { FastifyInstance } from 'fastify';
import { refuse } from '../../core/errors.js';
import type { GatewayDeps } from '../app.js';
import { sendRefusal, type WireFormat } from '../wire.js';
import { admit } from './admit.js';

export const MODELS_RETRIEVE_ACTION = 'models.retrieve';

/** The `created` every listed model carries (as GET /v1/models does). */
const CREATED = 1_700_000_000;

export function modelsRetrieveEndpoint(app: FastifyInstance, deps: GatewayDeps): void {
  app.get('/v1/models/*', async (request, reply) => {
    const id = decodeURIComponent((request.params as { '*': string })['*'] ?? '');
    const format: WireFormat =
      typeof request.headers['anthropic-version'] === 'string' ? 'anthropic' : 'openai';
    // Retrieval is allowed to every key (it shows only what the key may use); context rules still apply.
    const a = await admit(deps, request, reply, format, {
      action: MODELS_RETRIEVE_ACTION,
      model: null,
      ignoreScope: true,
    });
    if (!a) return reply;
    const route = id ? a.rt.route(id) : undefined;
    if (!route || !a.rt.access.modelAllowed(a.principal, id)) {
      a.done(404, 'SLUICE_UNKNOWN_MODEL');
      sendRefusal(reply, format, refuse('SLUICE_UNKNOWN_MODEL', id.slice(0, 200), { param: 'model' }));
      return reply;
    }
    a.done(200);
    if (format === 'anthropic')
      reply.send({ type: 'model', id, display_name: id, created_at: new Date(CREATED * 1000).toISOString() });
    else reply.send({ id, object: 'model', created: CREATED, owned_by: route.upstream });
    return reply;
  });
}
