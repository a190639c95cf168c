/**
 * Response cache rules (pure): which requests may be answered from the cache, and the key an
 * answer is stored under. Exact match only: the key hashes the tenant, the endpoint, the upstream
 * and its model, the canonical request body (object keys sorted, so key order does not matter) and
 * the caller headers that change the answer. Nothing here does I/O or reads a clock.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import type { Endpoint } from '../ports.js';

/** Caller headers that change the upstream's answer (they are also the ones forwarded upstream). */
export const ANSWER_HEADERS = ['anthropic-version', 'anthropic-beta', 'openai-beta'] as const;

/** Bumped when the key's inputs or the entry encoding change: old entries are then never read. */
const KEY_VERSION = 'sluice-cache-v1';

export interface CacheRequest {
  endpoint: Endpoint;
  body: Record<string, unknown>;
  /** The caller's `x-sluice-cache` header (`on` | `off`), if any. */
  optIn?: string;
  /** The caller's `cache-control` header, if any. */
  cacheControl?: string;
}

export interface CacheRules {
  /** Cache requests that declare tools (function calling) too. Default false: tools may have side effects. */
  tools: boolean;
}

export type Cacheability =
  | { cache: true; why: 'opt-in' | 'embeddings' | 'temperature-0' }
  | { cache: false; why: 'off' | 'no-store' | 'tools' | 'not-deterministic' };

/**
 * Whether a request may be served from / stored in the cache:
 * - `x-sluice-cache: off` or `Cache-Control: no-store` (or `no-cache`) bypass, always;
 * - a request declaring tools (`tools`, `functions`) is never cached unless the policy allows it,
 *   even when the caller opts in;
 * - `x-sluice-cache: on` opts in;
 * - embeddings are deterministic and always cached;
 * - otherwise only `temperature: 0`. An ABSENT temperature is NOT deterministic: every provider
 *   defaults it to 1 (OpenAI, Anthropic), so the answer varies; images are never deterministic.
 */
export function cacheability(req: CacheRequest, rules: CacheRules): Cacheability {
  const opt = req.optIn?.trim().toLowerCase();
  if (opt === 'off') return { cache: false, why: 'off' };
  const cc = req.cacheControl?.toLowerCase() ?? '';
  if (/(^|[\s,])no-(store|cache)\b/.test(cc)) return { cache: false, why: 'no-store' };
  if (!rules.tools && hasTools(req.body)) return { cache: false, why: 'tools' };
  if (opt === 'on') return { cache: true, why: 'opt-in' };
  if (req.endpoint === 'embeddings') return { cache: true, why: 'embeddings' };
  if (req.endpoint !== 'images' && req.body.temperature === 0) return { cache: true, why: 'temperature-0' };
  return { cache: false, why: 'not-deterministic' };
}

function hasTools(body: Record<string, unknown>): boolean {
  for (const f of ['tools', 'functions']) {
    const v = body[f];
    if (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null) return true;
  }
  return false;
}

export interface KeyParts {
  tenantId: string;
  endpoint: Endpoint;
  /** The upstream's name and the model it is called with (a route change never serves old answers). */
  upstream: string;
  upstreamModel: string;
  body: Record<string, unknown>;
  /** The caller's headers (lower-case names); only ANSWER_HEADERS are part of the key. */
  headers: Record<string, string | string[] | undefined>;
}

/** The cache key: hex SHA-256 over the canonical JSON of every part. Tenants never share a key. */
export function cacheKey(p: KeyParts): string {
  const h: Record<string, string> = {};
  for (const name of ANSWER_HEADERS) {
    const v = p.headers[name];
    if (typeof v === 'string') h[name] = v;
    else if (Array.isArray(v)) h[name] = v.join(',');
  }
  const text = canonicalJson([KEY_VERSION, p.tenantId, p.endpoint, p.upstream, p.upstreamModel, h, p.body]);
  return createHash('sha256').update(text).digest('hex');
}
