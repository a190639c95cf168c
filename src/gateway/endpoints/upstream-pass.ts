/**
 * Pass-through of the Files and Batches APIs to a vendor upstream: any method, JSON or multipart body
 * bytes as received, the upstream's own credentials (the caller's never forwarded), the answer's
 * bytes and content type back. Also which upstream (or the built-in mock) serves a vendor's API.
 */

import type { UpstreamConfig } from '../../config/schema.js';
import { undici } from '../../providers/undici.js';
import type { Runtime } from '../runtime.js';

/** 120 s: uploads and downloads of batch files are larger than a model call's JSON. */
const TIMEOUT_MS = 120_000;

type VendorConfig = Extract<UpstreamConfig, { kind: 'openai' | 'anthropic' }>;

export interface PassAnswer {
  status: number;
  body: Buffer;
  headers: Record<string, string>;
}

const PASS_BACK = /^(content-type|x-request-id|request-id|x-ratelimit-|anthropic-ratelimit-|retry-after)/;

export async function passThrough(
  cfg: VendorConfig,
  method: string,
  path: string,
  body: Buffer | string | undefined,
  contentType: string | undefined,
  callerHeaders: Record<string, string | string[] | undefined>,
): Promise<PassAnswer> {
  const base = cfg.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { ...(cfg.headers ?? {}) };
  if (contentType) headers['content-type'] = contentType;
  if (cfg.kind === 'anthropic') {
    if (cfg.apiKey) headers['x-api-key'] = cfg.apiKey;
    const v = callerHeaders['anthropic-version'];
    headers['anthropic-version'] = typeof v === 'string' ? v : cfg.version;
    const beta = callerHeaders['anthropic-beta'];
    if (typeof beta === 'string') headers['anthropic-beta'] = beta;
  } else if (cfg.apiKey) headers.authorization = `Bearer ${cfg.apiKey}`;
  const res = await undici().request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    body,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers))
    if (PASS_BACK.test(k) && typeof v === 'string') out[k] = v;
  return { status: res.statusCode, body: bytes, headers: out };
}

/** Who answers a vendor's Files/Batches call: an upstream of that kind, the mock, or nobody. */
export type Server =
  | { kind: 'upstream'; cfg: VendorConfig }
  | { kind: 'mock' }
  | { kind: 'none'; why: string };

/**
 * With a model, the upstream its route names (it must be of the vendor's kind, or the mock); without
 * one (files), the first upstream of the vendor's kind, else a mock upstream if there is one.
 */
export function serverFor(rt: Runtime, vendor: 'openai' | 'anthropic', model?: string): Server {
  const ups = rt.cfg.upstreams;
  if (model !== undefined) {
    const route = rt.route(model);
    const cfg = route ? ups.find((u) => u.name === route.upstream) : undefined;
    if (!cfg) return { kind: 'none', why: `no upstream serves model "${model}"` };
    if (cfg.kind === 'mock') return { kind: 'mock' };
    if (cfg.kind === vendor) return { kind: 'upstream', cfg: cfg as VendorConfig };
    return {
      kind: 'none',
      why: `model "${model}" is served by a ${cfg.kind} upstream, which has no ${vendor} batch API`,
    };
  }
  const own = ups.find((u) => u.kind === vendor);
  if (own) return { kind: 'upstream', cfg: own as VendorConfig };
  if (ups.some((u) => u.kind === 'mock')) return { kind: 'mock' };
  return { kind: 'none', why: `no ${vendor} upstream is configured` };
}

/**
 * Which tenant created a file or batch through this instance: the upstream account is shared by every
 * tenant, so an id is only served to its owner. Bounded (oldest forgotten first): an id forgotten, or
 * created through another instance, answers 404 like an unknown one.
 */
export class Owners {
  private readonly m = new Map<string, string>();
  constructor(private readonly max = 100_000) {}
  set(id: string, tenant: string): void {
    this.m.delete(id);
    this.m.set(id, tenant);
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
  }
  owns(id: string, tenant: string): boolean {
    return this.m.get(id) === tenant;
  }
  delete(id: string): void {
    this.m.delete(id);
  }
}
