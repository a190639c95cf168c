/**
 * `POST /v1/messages/count_tokens` (Anthropic): forwarded to the model's upstream when it is an
 * Anthropic one, otherwise counted here with gpt-tokenizer (o200k: close to, not equal to, Claude's own
 * tokenizer). Its own action `messages.count_tokens` (also allowed to keys that may `messages.create`),
 * cheap in limits: one request, no tokens.
 */
import type { FastifyInstance } from 'fastify';
import { isRefusal, refuse } from '../../core/errors.js';
import { promptParts } from '../../providers/prompt-text.js';
import type { GatewayDeps } from '../app.js';
import { requestLogIds } from '../pipeline/log-ids.js';
import { sideUpstream } from '../upstream-choice.js';
import { sendRefusal } from '../wire.js';
import { admit } from './admit.js';
import { postJson } from './upstream-json.js';

export const COUNT_TOKENS_ACTION = 'messages.count_tokens';

/** Tokens of framing per message, as for the limits' estimate. */
const PER_MESSAGE = 4;
/** Above this many characters the count is ⌈chars / 4⌉: tokenizing megabytes would block the event loop. */
const TOKENIZE_MAX_CHARS = 200_000;

/** The local count of a Messages request's input: system, messages, tools. */
export async function countMessageTokens(body: Record<string, unknown>): Promise<number> {
  const { parts, messages } = promptParts('messages', body);
  if (body.tools !== undefined) parts.push(JSON.stringify(body.tools));
  const chars = parts.reduce((n, p) => n + p.length, 0);
  if (chars > TOKENIZE_MAX_CHARS) return Math.ceil(chars / 4) + PER_MESSAGE * messages;
  const { countTokens } = await import('../../providers/mock-structured.js');
  let n = PER_MESSAGE * messages;
  for (const p of parts) n += await countTokens(p);
  return n;
}

export function countTokensEndpoint(app: FastifyInstance, deps: GatewayDeps): void {
  app.post('/v1/messages/count_tokens', async (request, reply) => {
    const body = request.body as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      sendRefusal(reply, 'anthropic', refuse('SLUICE_BAD_REQUEST', 'the body must be a JSON object'));
      return reply;
    }
    const model = typeof body.model === 'string' ? body.model : '';
    if (!model || !Array.isArray(body.messages)) {
      sendRefusal(
        reply,
        'anthropic',
        refuse('SLUICE_BAD_REQUEST', '"model" and "messages" are required', {
          param: model ? 'messages' : 'model',
        }),
      );
      return reply;
    }
    const a = await admit(deps, request, reply, 'anthropic', {
      action: COUNT_TOKENS_ACTION,
      model,
      alsoAllowedBy: ['messages.create'],
    });
    if (!a) return reply;
    const route = a.rt.route(model);
    if (!route) {
      a.done(404, 'SLUICE_UNKNOWN_MODEL');
      sendRefusal(
        reply,
        'anthropic',
        refuse('SLUICE_UNKNOWN_MODEL', model.slice(0, 200), { param: 'model' }),
      );
      return reply;
    }
    const side = sideUpstream(a.rt.cfg, deps.upstreams, route, {
      action: COUNT_TOKENS_ACTION,
      tier: a.principal.tier,
      tenant: a.principal.tenantId,
    });
    if (isRefusal(side)) {
      deps.logger.info({ reqId: request.id, code: side.code, why: side.internal }, 'refused');
      a.done(503, side.code);
      sendRefusal(reply, 'anthropic', side);
      return reply;
    }
    const cfg = side?.cfg;
    if (side && cfg?.kind === 'anthropic') {
      try {
        const res = await postJson(
          cfg,
          '/v1/messages/count_tokens',
          { ...body, model: side.route.upstreamModel },
          request.headers,
          side.dispatcher,
        );
        a.done(res.status);
        reply.code(res.status).headers(res.headers).send(res.body);
      } catch (err) {
        deps.logger.warn(
          { ...requestLogIds(deps, request), err: (err as Error).message },
          'count_tokens upstream failed',
        );
        a.done(502, 'SLUICE_UPSTREAM_ERROR');
        sendRefusal(reply, 'anthropic', refuse('SLUICE_UPSTREAM_ERROR'));
      }
      return reply;
    }
    const inputTokens = await countMessageTokens(body);
    a.done(200);
    reply.send({ input_tokens: inputTokens });
    return reply;
  });
}
