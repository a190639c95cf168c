/**
 * The `deprecations` field of `GET /sluice/v1/me` (issue 19): every deprecation entry of the running
 * policy that applies to what the calling key can use — its own key, a model it may call, an action
 * in its scopes, a route whose action is in its scopes — once announced. Each entry says what, when
 * it was announced, when it is (or was) retired, the replacement and the link. Entries not yet
 * announced are not shown (an operator may stage them).
 */
import { compileGlob, compileGlobs } from '../../../core/authz/glob.js';
import type { DeprecationEntry } from '../../../core/deprecations.js';
import type { Principal } from '../../auth.js';
import type { Runtime } from '../../runtime.js';

/** The action of each forwarded route (the deprecation `route` names a path). */
const ROUTE_ACTIONS: Record<string, string> = {
  '/v1/chat/completions': 'chat.create',
  '/v1/completions': 'completions.create',
  '/v1/embeddings': 'embeddings.create',
  '/v1/images/generations': 'images.generate',
  '/v1/responses': 'responses.create',
  '/v1/messages': 'messages.create',
  '/v1/messages/count_tokens': 'messages.count_tokens',
  '/v1/moderations': 'moderations.create',
  '/v1/models': 'models.list',
};

export interface DeprecationNotice {
  /** What is deprecated: `model`, `route`, `action` or `key`, and its name or pattern. */
  kind: 'model' | 'route' | 'action' | 'key';
  name: string;
  announced: string;
  sunset: string;
  /** `deprecated` until the sunset, `retired` after it (calls get 410 SLUICE_SUNSET). */
  status: 'deprecated' | 'retired';
  replacement: string | null;
  link: string | null;
}

/**
 * `scopes`: the key's effective action patterns; `models`: sample model names the gateway knows
 * (routes, upstreams, limits), used to decide whether a model pattern touches the key.
 */
export function deprecationsFor(
  rt: Runtime,
  p: Principal,
  scopes: readonly string[],
  models: Iterable<string | null>,
  now: number,
): DeprecationNotice[] {
  const entries: readonly DeprecationEntry[] = rt.cfg.deprecations ?? [];
  if (entries.length === 0) return [];
  const inScope = compileGlobs(scopes);
  const known = [...models].filter((m): m is string => m !== null);
  const out: DeprecationNotice[] = [];
  for (const e of entries) {
    if (now < e.announced) continue;
    const m = e.match;
    let kind: DeprecationNotice['kind'];
    let name: string;
    let applies: boolean;
    if (m.key !== undefined) {
      kind = 'key';
      name = m.key;
      applies = m.key === p.keyId;
    } else if (m.model !== undefined) {
      kind = 'model';
      name = m.model;
      if (m.model.includes('*')) {
        const test = compileGlob(m.model);
        // The pattern read as a name (`mock-*` is allowed by `*` or `mock-*`), or a known model it matches.
        applies =
          rt.access.modelAllowed(p, m.model) || known.some((x) => test(x) && rt.access.modelAllowed(p, x));
      } else applies = rt.access.modelAllowed(p, m.model);
    } else if (m.action !== undefined) {
      kind = 'action';
      name = m.action;
      applies = inScope(m.action);
    } else {
      kind = 'route';
      name = m.route ?? '';
      const action =
        ROUTE_ACTIONS[name] ?? (name.startsWith('/v1/tasks/') ? `tasks.${name.slice(10)}` : null);
      // A route Sluice does not map to an action is listed: the key may well call it.
      applies = action === null || inScope(action);
    }
    if (!applies) continue;
    out.push({
      kind,
      name,
      announced: new Date(e.announced).toISOString(),
      sunset: new Date(e.sunset).toISOString(),
      status: now >= e.sunset ? 'retired' : 'deprecated',
      replacement: e.replacement ?? null,
      link: e.link ?? null,
    });
  }
  return out;
}
