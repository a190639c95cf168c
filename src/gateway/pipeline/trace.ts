/**
 * Ends a request's trace (src/observability/tracing.ts): the root span's GenAI semantic-convention
 * attributes and Sluice's own, the upstream call's client span, then hands it to the exporter.
 * Only called for a sampled request (`ctx.trace` set).
 */
import { type RequestContext, stageClockOf } from './context.js';

const OPERATION: Record<string, string> = {
  chat: 'chat',
  messages: 'chat',
  responses: 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
  images: 'image_generation',
};

export function endTrace(ctx: RequestContext): void {
  const t = ctx.trace;
  const tracer = ctx.deps.tracer;
  if (!t || !tracer) return;
  const now = stageClockOf(ctx.deps)();
  const a = t.attrs;
  a['sluice.request_id'] = ctx.id;
  a['sluice.action'] = ctx.action;
  if (ctx.endpoint) a['gen_ai.operation.name'] = OPERATION[ctx.endpoint] ?? ctx.endpoint;
  if (ctx.upstream) a['gen_ai.system'] = ctx.upstream.kind === 'mock' ? 'sluice.mock' : ctx.upstream.kind;
  if (ctx.route) {
    a['gen_ai.request.model'] = ctx.route.upstreamModel;
    a['gen_ai.response.model'] = ctx.route.upstreamModel;
    a['sluice.upstream'] = ctx.route.upstream;
  }
  if (ctx.model) a['sluice.model'] = ctx.model;
  const p = ctx.principal;
  if (p) {
    a['sluice.tenant'] = p.tenantId;
    a['sluice.key_id'] = p.keyId;
    a['sluice.tier'] = p.tier;
  }
  const body = ctx.body;
  if (body) {
    if (typeof body.temperature === 'number') a['gen_ai.request.temperature'] = body.temperature;
    const max = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens;
    if (typeof max === 'number') a['gen_ai.request.max_tokens'] = max;
  }
  if (ctx.usage) {
    a['gen_ai.usage.input_tokens'] = ctx.usage.inputTokens;
    a['gen_ai.usage.output_tokens'] = ctx.usage.outputTokens;
  }
  if (ctx.cache) a['sluice.cache'] = ctx.cache.hit ? 'hit' : 'miss';
  if (ctx.response) {
    a['http.response.status_code'] = ctx.response.status;
    if (a['sluice.decision'] === undefined)
      a['sluice.decision'] = ctx.response.status < 400 ? 'allowed' : 'error';
    if (ctx.response.status >= 500) t.error = true;
    // The upstream call: from its start to the end of its answer or stream (none for a cache hit).
    if (!ctx.cache?.hit && ctx.stageMs.gateway !== undefined) {
      const start = ctx.t0 + ctx.stageMs.gateway;
      t.span(
        `upstream ${a['gen_ai.operation.name'] ?? ''} ${ctx.route?.upstreamModel ?? ''}`.trim(),
        start,
        now,
        {
          'gen_ai.system': a['gen_ai.system'] ?? '',
          'gen_ai.request.model': ctx.route?.upstreamModel ?? '',
          'http.response.status_code': ctx.response.upstreamStatus ?? ctx.response.status,
        },
        3,
      );
    }
  } else if (a['sluice.decision'] === undefined) a['sluice.decision'] = 'allowed';
  tracer.end(t, `${ctx.request.method} ${ctx.action}`, now);
}
