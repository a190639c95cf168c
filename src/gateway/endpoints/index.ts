/**
 * Data-plane endpoints beyond the model calls (issue 15), as `GatewayDeps.plugins`.
 * Actions: `messages.count_tokens`, `models.retrieve`, `moderations.create`.
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayDeps } from '../app.js';
import { countTokensEndpoint } from './count-tokens.js';
import { modelsRetrieveEndpoint } from './models-retrieve.js';
import { moderationsEndpoint } from './moderations.js';

export { COUNT_TOKENS_ACTION } from './count-tokens.js';
export { MODELS_RETRIEVE_ACTION } from './models-retrieve.js';
export { MODERATIONS_ACTION } from './moderations.js';
export { notFoundFor } from './not-found.js';

export function clientEndpoints(app: FastifyInstance, deps: GatewayDeps): void {
  countTokensEndpoint(app, deps);
  modelsRetrieveEndpoint(app, deps);
  moderationsEndpoint(app, deps);
}
