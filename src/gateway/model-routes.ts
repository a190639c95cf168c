/**
 * Model routing: the config's `models` list, compiled once. First match wins; a route may rewrite
 * the model name sent upstream.
 */
import type { SluiceConfig } from '../config/schema.js';
import { compileGlob } from '../core/authz/glob.js';

export interface ModelRoute {
  upstream: string;
  /** Model name to send upstream. */
  upstreamModel: string;
  /** Other upstreams serving the model, in order (`models[].fallbacks`; gateway/upstream-choice.ts). */
  fallbacks?: readonly string[];
}

export function compileModelRoutes(cfg: SluiceConfig): (model: string) => ModelRoute | undefined {
  const routes = cfg.models.map((m) => ({
    test: compileGlob(m.match),
    upstream: m.upstream,
    rewrite: m.rewrite,
    fallbacks: m.fallbacks,
  }));
  const cache = new Map<string, ModelRoute | undefined>();
  return (model) => {
    if (cache.has(model)) return cache.get(model);
    const r = routes.find((x) => x.test(model));
    const out = r
      ? {
          upstream: r.upstream,
          upstreamModel: r.rewrite ?? model,
          ...(r.fallbacks?.length ? { fallbacks: r.fallbacks } : {}),
        }
      : undefined;
    // Bounded: model names come from callers.
    if (cache.size < 10_000) cache.set(model, out);
    return out;
  };
}
