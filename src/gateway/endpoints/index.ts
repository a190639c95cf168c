/**
 * Data-plane endpoints beyond the model calls (issue 15), as `GatewayDeps.plugins`.
 * Actions: `messages.count_tokens`, `models.retrieve`, `moderations.create`, and the Files and
 * Batches APIs of both vendors (`files.*`, `batches.*`, `messages.batches.*`).
 */
import type { FastifyInstance } from 'fastify';
import { MockBatches } from '../../providers/mock-batches.js';
import type { GatewayDeps } from '../app.js';
import { batchesEndpoints } from './batches.js';
import { countTokensEndpoint } from './count-tokens.js';
import { filesEndpoints } from './files.js';
import { messageBatchesEndpoints } from './message-batches.js';
import { modelsRetrieveEndpoint } from './models-retrieve.js';
import { moderationsEndpoint } from './moderations.js';
import { Owners } from './upstream-pass.js';

export { COUNT_TOKENS_ACTION } from './count-tokens.js';
export { MODELS_RETRIEVE_ACTION } from './models-retrieve.js';
export { MODERATIONS_ACTION } from './moderations.js';
export { notFoundFor } from './not-found.js';

export function clientEndpoints(app: FastifyInstance, deps: GatewayDeps): void {
  countTokensEndpoint(app, deps);
  modelsRetrieveEndpoint(app, deps);
  moderationsEndpoint(app, deps);
  // One mock store and one owner map per gateway: files, batches and message batches share them.
  const mock = new MockBatches();
  const owners = new Owners();
  filesEndpoints(app, deps, mock, owners);
  batchesEndpoints(app, deps, mock, owners);
  messageBatchesEndpoints(app, deps, mock, owners);
}
