/**
 * Stage `screenExternal` (after `screenInput`): the optional external classifier of
 * `screening.external` (issue 12 item 4) — an OpenAI-moderation-compatible endpoint or a
 * Llama-Guard-style chat model on an `openai`-kind upstream. Off by default: the stage then returns
 * at once, synchronously, and costs a settings lookup.
 *
 *   - unsafe, `action: block` → 400 SLUICE_CONTENT_BLOCKED naming the external classifier (the
 *     categories go to the audit event only);
 *   - unsafe, `action: flag`  → forwarded; `x-sluice-screening` gains `external=<categories>`, the
 *     audit event's `screening.input.external` and `deps.onScreening` (metrics) hear of it;
 *   - timeout, error or an unreadable answer → `onError: allow` goes on (audited as
 *     `external: { error }`); `onError: block` answers 503 SLUICE_SCREENING_UNAVAILABLE.
 */
import type { SluiceConfig } from '../../../config/schema.js';
import { type Refusal, refuse } from '../../../core/errors.js';
import { EXTERNAL_OFF, type ExternalScreening } from '../../../core/screening/policy.js';
import { extractTexts, screeningEndpoint } from '../../../core/screening/request.js';
import { ExternalScreener, type OpenAIUpstream } from '../../../screening/external.js';
import type { RequestContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { policyFor } from './screen-input.js';

const screeners = new WeakMap<GatewayDeps, ExternalScreener>();

/** The screener (and its verdict cache) of one gateway. */
export function externalScreenerOf(deps: GatewayDeps): ExternalScreener {
  let s = screeners.get(deps);
  if (!s) {
    s = new ExternalScreener(deps.clock);
    screeners.set(deps, s);
  }
  return s;
}

/** Whether a config names an external classifier anywhere (top level or an override): else the stage is a no-op. */
const configured = new WeakMap<SluiceConfig, boolean>();
function anyExternal(cfg: SluiceConfig): boolean {
  let on = configured.get(cfg);
  if (on === undefined) {
    const layers = [cfg.tiers, cfg.tenants, cfg.projects, cfg.keys].flatMap((m) => Object.values(m ?? {}));
    on = [cfg.screening.external, ...layers.map((o) => o?.screening?.external)].some(
      (e) => e !== undefined && (e.upstream !== undefined || (e.action !== undefined && e.action !== 'off')),
    );
    configured.set(cfg, on);
  }
  return on;
}

export function screenExternal(ctx: RequestContext): Refusal | undefined | Promise<Refusal | undefined> {
  if (!ctx.body || !ctx.endpoint || !ctx.principal || !anyExternal(ctx.rt.cfg)) return undefined;
  const ext = policyFor(ctx.rt.cfg).settingsFor(ctx.principal).external ?? EXTERNAL_OFF;
  if (ext.action === 'off' || !ext.upstream) return undefined;
  const endpoint = screeningEndpoint(ctx.endpoint);
  if (!endpoint) return undefined;
  const texts = extractTexts(endpoint, ctx.body)
    .map((t) => t.text)
    .filter((t) => t.trim().length > 0);
  if (texts.length === 0) return undefined;
  const cfg = ctx.rt.cfg.upstreams.find((u) => u.name === ext.upstream);
  // The config check refuses an unknown or non-openai upstream; a reload race is an error like any other.
  if (cfg?.kind !== 'openai') return failed(ctx, ext, 'unreachable');
  const u = ctx.deps.upstreams.get(cfg.name) as
    | { dispatcher?: () => import('undici').Dispatcher | undefined }
    | undefined;
  return run(ctx, ext, cfg, u?.dispatcher?.(), texts);
}

async function run(
  ctx: RequestContext,
  ext: ExternalScreening,
  cfg: OpenAIUpstream,
  dispatcher: import('undici').Dispatcher | undefined,
  texts: string[],
): Promise<Refusal | undefined> {
  const out = await externalScreenerOf(ctx.deps).screen(ext, cfg, dispatcher, texts);
  if (!out.ok) return failed(ctx, ext, out.reason);
  if (!out.verdict.unsafe) return undefined;
  const record = {
    action: ext.action,
    categories: out.verdict.categories,
    ...(out.cached ? { cached: true } : {}),
  };
  const p = ctx.principal!;
  ctx.deps.onScreening?.({
    requestId: ctx.id,
    tenantId: p.tenantId,
    keyId: p.keyId,
    ip: ctx.ip,
    endpoint: ctx.endpoint ?? '',
    signals: [
      {
        direction: 'input',
        detector: 'external',
        action: ext.action === 'block' ? 'block' : 'flag',
        shadow: false,
        kinds: out.verdict.categories,
      },
    ],
  });
  if (ext.action === 'block')
    return refuse('SLUICE_CONTENT_BLOCKED', 'blocked by the external content classifier', {
      internal: `screening: external ${out.verdict.categories.join(',') || 'unsafe'}`,
      audit: { screening: { input: { ...(ctx.screening?.input ?? {}), external: record } } },
    });
  ctx.screening = {
    ...ctx.screening,
    input: { ...(ctx.screening?.input ?? { decision: 'flag' }), external: record },
  };
  const prev = ctx.reply.getHeader('x-sluice-screening');
  const tag = `external=${out.verdict.categories.join(',') || 'unsafe'}`;
  ctx.reply.header(
    'x-sluice-screening',
    typeof prev === 'string' && prev ? `${prev}; ${tag}` : `flag; ${tag}`,
  );
  return undefined;
}

function failed(ctx: RequestContext, ext: ExternalScreening, reason: string): Refusal | undefined {
  ctx.deps.logger.warn({ reqId: ctx.id, upstream: ext.upstream, reason }, 'external screening failed');
  const record = { error: reason, onError: ext.onError };
  if (ext.onError === 'block')
    return refuse('SLUICE_SCREENING_UNAVAILABLE', undefined, {
      internal: `external classifier: ${reason}`,
      audit: { screening: { input: { ...(ctx.screening?.input ?? {}), external: record } } },
    });
  ctx.screening = { ...ctx.screening, input: { ...(ctx.screening?.input ?? {}), external: record } };
  return undefined;
}
