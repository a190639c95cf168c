/**
 * `POST /v1/moderations` (OpenAI): forwarded to the model's upstream when it is an OpenAI-compatible
 * one, otherwise answered here in OpenAI's moderation shape. The local answer flags nothing (every
 * category false, every score 0): Sluice's own detectors look for prompt injection, secrets and PII,
 * not OpenAI's moderation categories. Its own action `moderations.create`, cheap in limits: one
 * request, no tokens.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { isRefusal, refuse } from '../../core/errors.js';
import type { GatewayDeps } from '../app.js';
import { requestLogIds } from '../pipeline/log-ids.js';
import { sideUpstream } from '../upstream-choice.js';
import { sendRefusal } from '../wire.js';
import { admit } from './admit.js';
import { postJson } from './upstream-json.js';

export const MODERATIONS_ACTION = 'moderations.create';
const DEFAULT_MODEL = 'omni-moderation-latest';

/** OpenAI's moderation categories, with the input types each applies to. */
const CATEGORIES: [string, string[]][] = [
  ['harassment', ['text']],
  ['harassment/threatening', ['text']],
  ['hate', ['text']],
  ['hate/threatening', ['text']],
  ['illicit', ['text']],
  ['illicit/violent', ['text']],
  ['self-harm', ['text', 'image']],
  ['self-harm/intent', ['text', 'image']],
  ['self-harm/instructions', ['text', 'image']],
  ['sexual', ['text', 'image']],
  ['sexual/minors', ['text']],
  ['violence', ['text', 'image']],
  ['violence/graphic', ['text', 'image']],
];

/** A verdict per input; the screening stage will provide real ones. */
export type ModerationVerdict = { flagged: boolean; categories?: Record<string, boolean> };

/** Inputs of a moderation request: a string, strings, or multimodal parts (text and image_url). */
export function moderationInputs(input: unknown): { text: boolean; image: boolean }[] | null {
  if (typeof input === 'string') return [{ text: true, image: false }];
  if (!Array.isArray(input) || input.length === 0) return null;
  if (input.every((x) => typeof x === 'string')) return input.map(() => ({ text: true, image: false }));
  // Multimodal: one result for the whole list of parts.
  const parts = input as { type?: unknown }[];
  return [{ text: parts.some((p) => p?.type === 'text'), image: parts.some((p) => p?.type === 'image_url') }];
}

/** The OpenAI moderation response for `verdicts`, one result per input. */
export function moderationResponse(
  model: string,
  inputs: { text: boolean; image: boolean }[],
  verdicts: ModerationVerdict[],
): unknown {
  return {
    id: `modr-${randomUUID()}`,
    model,
    results: inputs.map((kind, i) => {
      const v = verdicts[i] ?? { flagged: false };
      const categories: Record<string, boolean> = {};
      const scores: Record<string, number> = {};
      const applied: Record<string, string[]> = {};
      for (const [c, types] of CATEGORIES) {
        categories[c] = v.categories?.[c] === true;
        scores[c] = categories[c] ? 1 : 0;
        applied[c] = types.filter((t) => (t === 'text' ? kind.text : kind.image));
      }
      return {
        flagged: v.flagged,
        categories,
        category_scores: scores,
        category_applied_input_types: applied,
      };
    }),
  };
}

export function moderationsEndpoint(app: FastifyInstance, deps: GatewayDeps): void {
  app.post('/v1/moderations', async (request, reply) => {
    const body = request.body as Record<string, unknown> | null;
    const inputs = body && typeof body === 'object' ? moderationInputs(body.input) : null;
    if (!body || !inputs) {
      sendRefusal(
        reply,
        'openai',
        refuse('SLUICE_BAD_REQUEST', '"input" must be a string, an array of strings or an array of parts', {
          param: 'input',
        }),
      );
      return reply;
    }
    const model = typeof body.model === 'string' && body.model ? body.model : DEFAULT_MODEL;
    const a = await admit(deps, request, reply, 'openai', { action: MODERATIONS_ACTION, model });
    if (!a) return reply;
    const side = sideUpstream(a.rt.cfg, deps.upstreams, a.rt.route(model), {
      action: MODERATIONS_ACTION,
      tier: a.principal.tier,
      tenant: a.principal.tenantId,
    });
    if (isRefusal(side)) {
      deps.logger.info({ reqId: request.id, code: side.code, why: side.internal }, 'refused');
      a.done(503, side.code);
      sendRefusal(reply, 'openai', side);
      return reply;
    }
    const route = side?.route;
    const cfg = side?.cfg;
    if (route && cfg?.kind === 'openai') {
      try {
        const res = await postJson(
          cfg,
          '/moderations',
          { ...body, model: route.upstreamModel },
          request.headers,
          side.dispatcher,
        );
        a.done(res.status);
        reply.code(res.status).headers(res.headers).send(res.body);
      } catch (err) {
        deps.logger.warn(
          { ...requestLogIds(deps, request), err: (err as Error).message },
          'moderations upstream failed',
        );
        a.done(502, 'SLUICE_UPSTREAM_ERROR');
        sendRefusal(reply, 'openai', refuse('SLUICE_UPSTREAM_ERROR'));
      }
      return reply;
    }
    a.done(200);
    reply.send(moderationResponse(model, inputs, []));
    return reply;
  });
}
