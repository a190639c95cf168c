/**
 * Stage `observe-abuse` (after `record`): the abuse detectors see the answered call — who, from
 * where, with which client, what was asked (a bounded prefix of the prompt) and what it used.
 * Never credentials: the header names that identify a request or carry a secret are left out.
 */
import { lastUserText } from '../../../providers/prompt-text.js';
import type { RequestContext } from '../context.js';

/** Header names that say nothing about the client (ids, credentials, sizes) stay out of its fingerprint. */
const NOT_FINGERPRINT = new Set([
  'authorization',
  'x-api-key',
  'x-request-id',
  'content-length',
  'host',
  'cookie',
]);

export function observeAbuse(ctx: RequestContext): undefined {
  const abuse = ctx.deps.abuse;
  const p = ctx.principal;
  if (!abuse || !p || !ctx.endpoint) return undefined;
  const raw = ctx.request.raw.rawHeaders;
  const headerNames: string[] = [];
  for (let i = 0; i < raw.length && headerNames.length < 32; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (!NOT_FINGERPRINT.has(n)) headerNames.push(n);
  }
  const body = ctx.body ?? {};
  const prompt =
    ctx.endpoint === 'images'
      ? typeof body.prompt === 'string'
        ? body.prompt
        : ''
      : lastUserText(ctx.endpoint, body);
  const usage = ctx.usage ?? { inputTokens: 0, outputTokens: 0, images: 0 };
  abuse.observe({
    requestId: ctx.id,
    keyId: p.keyId,
    tenantId: p.tenantId,
    ip: ctx.ip,
    userAgent: (ctx.request.headers['user-agent'] as string | undefined) ?? null,
    headerNames,
    endUser: ctx.facts?.endUser ?? null,
    action: ctx.action,
    endpoint: ctx.action.startsWith('tasks.') ? 'tasks' : ctx.endpoint,
    model: ctx.model,
    prompt: prompt.length > 2000 ? prompt.slice(0, 2000) : prompt,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    status: ctx.response?.status ?? 0,
  });
  return undefined;
}
