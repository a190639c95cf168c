/**
 * A plain JSON POST to an upstream for the small endpoints of this folder (count_tokens, moderations):
 * no stream, the upstream's own credentials, the caller's credentials never forwarded.
 */
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../../config/schema.js';
import { undici } from '../../providers/undici.js';

/** 30 s: these endpoints answer in milliseconds upstream; a hung one must not hold the caller. */
const TIMEOUT_MS = 30_000;

export interface JsonAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/** Response headers worth passing back (rate limits and request ids); nothing else. */
const PASS_BACK = /^(x-request-id|request-id|x-ratelimit-|anthropic-ratelimit-|retry-after)/;

/** POSTs `body` to `path` under the upstream's base URL with its credentials. Throws on a network error. */
export async function postJson(
  cfg: Extract<UpstreamConfig, { kind: 'openai' | 'anthropic' }>,
  path: string,
  body: unknown,
  callerHeaders: Record<string, string | string[] | undefined>,
  /** The upstream's own pool (its TLS settings: CA, client certificate, pins). Required when `cfg.tls` is set. */
  dispatcher?: Dispatcher,
  timeoutMs = TIMEOUT_MS,
): Promise<JsonAnswer> {
  // Never reach a TLS-pinned upstream through the global dispatcher: it would skip its checks.
  if (cfg.tls && !dispatcher) throw new Error(`${cfg.name}: no TLS-configured connection pool`);
  const base = cfg.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(cfg.headers ?? {}) };
  if (cfg.kind === 'anthropic') {
    if (cfg.apiKey) headers['x-api-key'] = cfg.apiKey;
    const v = callerHeaders['anthropic-version'];
    headers['anthropic-version'] = typeof v === 'string' ? v : cfg.version;
    const beta = callerHeaders['anthropic-beta'];
    if (typeof beta === 'string') headers['anthropic-beta'] = beta;
  } else if (cfg.apiKey) headers.authorization = `Bearer ${cfg.apiKey}`;
  const res = await undici().request(`${base}${path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { error: { message: 'upstream answered with a body that is not JSON' } };
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers))
    if (PASS_BACK.test(k) && typeof v === 'string') out[k] = v;
  return { status: res.statusCode, body: json, headers: out };
}
