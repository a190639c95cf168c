/**
 * Which upstream takes a request: the route's candidates (`upstream`, then `fallbacks`) filtered by
 * the labels the request's pins require (core/routing/pins.ts) and by their circuit breakers. Used by
 * the `routePins` stage and by the side endpoints (moderations, count_tokens) so no path skips a pin.
 */

import type { Dispatcher } from 'undici';
import type { SluiceConfig } from '../config/schema.js';
import { isRefusal, type Refusal, refuse } from '../core/errors.js';
import type { Endpoint, Upstream } from '../core/ports.js';
import {
  type Candidate,
  type CompiledPins,
  choose,
  compilePins,
  describeLabels,
  type Labels,
  type Requirement,
} from '../core/routing/pins.js';
import type { ModelRoute } from './model-routes.js';

interface CompiledRouting {
  pins: CompiledPins;
  labels: Map<string, Labels>;
}

/** Compiled once per policy snapshot (a reload brings a new config object). */
const compiled = new WeakMap<SluiceConfig, CompiledRouting>();

function routingOf(cfg: SluiceConfig): CompiledRouting {
  let c = compiled.get(cfg);
  if (!c) {
    c = {
      pins: compilePins(cfg.routing?.pins ?? []),
      labels: new Map(cfg.upstreams.map((u) => [u.name, u.labels ?? {}])),
    };
    compiled.set(cfg, c);
  }
  return c;
}

export interface RouteChoice {
  route: ModelRoute;
  upstream: Upstream;
  /** The labels the request is pinned to (null: not pinned). */
  pinned: Labels | null;
}

/**
 * The route and upstream for a request, or the refusal `SLUICE_NO_TRUSTED_UPSTREAM` when it is pinned
 * and no candidate carrying its labels is available. `endpoint` null: any endpoint (side endpoints).
 * A request without pins and a route without fallbacks come back as they were, without a lookup.
 */
export function chooseUpstream(
  cfg: SluiceConfig,
  upstreams: ReadonlyMap<string, Upstream>,
  route: ModelRoute,
  subject: { action: string; tier: string; tenant: string },
  endpoint: Endpoint | null,
): RouteChoice | Refusal | undefined {
  const r = routingOf(cfg);
  const req: Requirement | null = r.pins.any ? r.pins.required(subject) : null;
  if (!req && !route.fallbacks) return undefined;
  const names = [route.upstream, ...(route.fallbacks ?? [])];
  const candidates: Candidate[] = [];
  for (const name of names) {
    const u = upstreams.get(name);
    if (!u) continue;
    candidates.push({
      name,
      labels: r.labels.get(name) ?? {},
      available: u.available?.() ?? true,
      serves: endpoint === null || u.supports(endpoint),
    });
  }
  const c = choose(candidates, req);
  if (!c.ok) {
    const want = req ? describeLabels(req.labels) : '';
    const why = req?.conflict
      ? `pins want two values of label "${req.conflict}"`
      : c.passed.map((p) => `${p.name}: ${p.why}`).join('; ') || 'no candidate';
    return refuse('SLUICE_NO_TRUSTED_UPSTREAM', undefined, {
      decision: 'error',
      internal: `pinned to ${want}; ${why}`,
      audit: { pinned: req?.labels ?? {}, passedOver: c.passed },
    });
  }
  const upstream = upstreams.get(c.name)!;
  return {
    route: c.name === route.upstream ? route : { ...route, upstream: c.name },
    upstream,
    pinned: req ? req.labels : null,
  };
}

/**
 * For the side endpoints: the route's upstream config (after pins) and its pool, or the refusal.
 * `route` undefined: nothing to choose (the endpoint answers locally).
 */
export function sideUpstream(
  cfg: SluiceConfig,
  upstreams: ReadonlyMap<string, Upstream>,
  route: ModelRoute | undefined,
  subject: { action: string; tier: string; tenant: string },
):
  | { route: ModelRoute; cfg: SluiceConfig['upstreams'][number] | undefined; dispatcher?: Dispatcher }
  | Refusal
  | undefined {
  if (!route) return undefined;
  const c = chooseUpstream(cfg, upstreams, route, subject, null);
  if (isRefusal(c)) return c;
  const chosen = c?.route ?? route;
  const u = upstreams.get(chosen.upstream) as
    | (Upstream & { dispatcher?: () => Dispatcher | undefined })
    | undefined;
  return {
    route: chosen,
    cfg: cfg.upstreams.find((x) => x.name === chosen.upstream),
    dispatcher: u?.dispatcher?.(),
  };
}
