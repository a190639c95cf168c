/**
 * Stage `deprecations` (after `authorize`, which knows the model and route): before a matching
 * entry's sunset the answer carries `Deprecation`, `Sunset` and `Link` headers; from the sunset on,
 * the call is refused with 410 SLUICE_SUNSET naming the replacement. The table is compiled once per
 * policy snapshot; with no entries, or none matching, the cost is a few Map lookups.
 */
import { DeprecationTable, deprecationHeaders, isSunset, sunsetDetail } from '../../../core/deprecations.js';
import { type Refusal, refuse } from '../../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import type { RequestContext } from '../context.js';

const tables = new WeakMap<Runtime, DeprecationTable>();

/** The compiled table of a policy snapshot (built on first use, then reused). */
export function deprecationTable(rt: Runtime): DeprecationTable {
  let t = tables.get(rt);
  if (!t) {
    t = new DeprecationTable(rt.cfg.deprecations ?? []);
    tables.set(rt, t);
  }
  return t;
}

export function deprecations(ctx: RequestContext): Refusal | undefined {
  const table = deprecationTable(ctx.rt);
  if (table.size === 0) return undefined;
  const url = ctx.request.url;
  const q = url.indexOf('?');
  const hit = table.find({
    model: ctx.model,
    route: q < 0 ? url : url.slice(0, q),
    action: ctx.action,
    keyId: ctx.principal?.keyId ?? null,
  });
  if (!hit) return undefined;
  const now = ctx.deps.clock.now();
  const sunset = isSunset(hit.entry, now);
  if (ctx.principal && ctx.deps.onDeprecated && (sunset || now >= hit.entry.announced))
    ctx.deps.onDeprecated(ctx.principal.tenantId, hit.entry, sunset);
  if (sunset) {
    return refuse('SLUICE_SUNSET', sunsetDetail(hit), {
      internal: `deprecation sunset ${hit.what}`,
      audit: { deprecation: hit.what, replacement: hit.entry.replacement ?? null },
    });
  }
  ctx.reply.headers(deprecationHeaders(hit.entry, now));
  return undefined;
}
