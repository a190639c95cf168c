/**
 * The edge: turns a Refusal into the caller's wire format. OpenAI-style error JSON on `/v1/*`,
 * Anthropic-style on `/v1/messages`. Nothing else in the gateway knows about HTTP error shapes.
 */
import type { FastifyReply } from 'fastify';
import { anthropicErrorBody, ERRORS, openAIErrorBody, type Refusal } from '../core/errors.js';

export type WireFormat = 'openai' | 'anthropic';

export function wireFormatOf(url: string): WireFormat {
  return url.startsWith('/v1/messages') ? 'anthropic' : 'openai';
}

export function errorBody(format: WireFormat, r: Refusal): unknown {
  return format === 'anthropic' ? anthropicErrorBody(r) : openAIErrorBody(r);
}

export function sendRefusal(reply: FastifyReply, format: WireFormat, r: Refusal): FastifyReply {
  const def = ERRORS[r.code];
  if (r.headers) reply.headers(r.headers);
  if ('retryable' in def && def.retryable === false) reply.header('x-should-retry', 'false');
  return reply.code(def.status).type('application/json').send(errorBody(format, r));
}

/** A well-formed SSE error event for a stream that must end early, in the caller's format. */
export function sseErrorEvent(format: WireFormat, r: Refusal): string {
  if (format === 'anthropic') return `event: error\ndata: ${JSON.stringify(anthropicErrorBody(r))}\n\n`;
  return `data: ${JSON.stringify(openAIErrorBody(r))}\n\n`;
}
