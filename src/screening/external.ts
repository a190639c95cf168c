/**
 * The optional external classifier (issue 12 item 4): an OpenAI-moderation-compatible endpoint
 * (`kind: moderation`, POST /moderations) or a Llama-Guard-style chat model (`kind: chat`, a chat
 * completion whose answer starts with `safe` or `unsafe`, then a line of category codes), on an
 * `openai`-kind upstream with its own base URL, credentials and TLS settings.
 *
 * Verdicts are cached by the exact texts (hashed; a bounded LRU with a time to live), so a
 * conversation's earlier turns or a shared system prompt are not sent again. A call that times out,
 * fails or answers something unreadable is an error: the stage then applies the policy's `onError`
 * (fail open or fail closed). The texts are never logged.
 */
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { Clock } from '../core/ports.js';
import type { ExternalScreening } from '../core/screening/policy.js';
import { postJson } from '../gateway/endpoints/upstream-json.js';

export type OpenAIUpstream = Extract<UpstreamConfig, { kind: 'openai' }>;

export interface ExternalVerdict {
  unsafe: boolean;
  /** The categories the classifier named (moderation category names, or Llama Guard codes such as S1). */
  categories: string[];
}

export type ExternalOutcome =
  | { ok: true; verdict: ExternalVerdict; cached: boolean }
  | { ok: false; reason: 'timeout' | 'unreachable' | 'status' | 'unreadable' };

/** Bound on what is sent: a classifier is for prompts, not for megabytes of documents. */
const MAX_CHARS = 32_000;

export class ExternalScreener {
  private readonly cache = new Map<string, { at: number; verdict: ExternalVerdict }>();
  /** Calls made to the classifier (not answered from the cache). */
  calls = 0;

  constructor(private readonly clock: Clock) {}

  async screen(
    s: ExternalScreening,
    upstream: OpenAIUpstream,
    dispatcher: Dispatcher | undefined,
    texts: readonly string[],
  ): Promise<ExternalOutcome> {
    const key = cacheKey(s, upstream.name, texts);
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < s.cacheTtlMs) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return { ok: true, verdict: hit.verdict, cached: true };
    }
    this.calls++;
    let status: number;
    let body: unknown;
    try {
      const res = await postJson(
        upstream,
        s.kind === 'chat' ? '/chat/completions' : '/moderations',
        requestBody(s, texts),
        {},
        dispatcher,
        s.timeoutMs,
      );
      status = res.status;
      body = res.body;
    } catch (err) {
      const name = (err as Error).name;
      return {
        ok: false,
        reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable',
      };
    }
    if (status < 200 || status >= 300) return { ok: false, reason: 'status' };
    const verdict = s.kind === 'chat' ? readGuard(body) : readModeration(body, s.categories);
    if (!verdict) return { ok: false, reason: 'unreadable' };
    if (s.cacheSize > 0) {
      this.cache.set(key, { at: now, verdict });
      if (this.cache.size > s.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    }
    return { ok: true, verdict, cached: false };
  }
}

function cacheKey(s: ExternalScreening, upstream: string, texts: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`${upstream}\u0000${s.kind}\u0000${s.model ?? ''}\u0000${s.categories.join(',')}`);
  for (const t of texts) h.update(`\u0000${t}`);
  return h.digest('base64url');
}

function clip(texts: readonly string[]): string[] {
  const out: string[] = [];
  let left = MAX_CHARS;
  for (const t of texts) {
    if (left <= 0) break;
    out.push(t.length > left ? t.slice(0, left) : t);
    left -= t.length;
  }
  return out;
}

function requestBody(s: ExternalScreening, texts: readonly string[]): Record<string, unknown> {
  const input = clip(texts);
  if (s.kind === 'chat')
    return {
      ...(s.model ? { model: s.model } : {}),
      messages: [{ role: 'user', content: input.join('\n\n') }],
      max_tokens: 24,
      temperature: 0,
      stream: false,
    };
  return { ...(s.model ? { model: s.model } : {}), input };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** OpenAI's moderation answer: `results[]` with `flagged` and `categories` (name → boolean). */
export function readModeration(body: unknown, only: readonly string[]): ExternalVerdict | null {
  if (!isObj(body) || !Array.isArray(body.results) || body.results.length === 0) return null;
  const found = new Set<string>();
  let flagged = false;
  for (const r of body.results) {
    if (!isObj(r) || typeof r.flagged !== 'boolean') return null;
    const cats = isObj(r.categories) ? r.categories : {};
    for (const [name, on] of Object.entries(cats)) if (on === true) found.add(name);
    if (only.length === 0 ? r.flagged : only.some((c) => cats[c] === true)) flagged = true;
  }
  const categories = [...found].filter((c) => only.length === 0 || only.includes(c));
  return { unsafe: flagged, categories };
}

/** A Llama-Guard-style answer: `safe`, or `unsafe` and then a line of category codes (`S1,S10`). */
export function readGuard(body: unknown): ExternalVerdict | null {
  if (!isObj(body) || !Array.isArray(body.choices)) return null;
  const first = body.choices[0];
  const msg = isObj(first) && isObj(first.message) ? first.message : null;
  const text = msg && typeof msg.content === 'string' ? msg.content.trim() : null;
  if (text === null) return null;
  const [head = '', rest = ''] = text.split(/\r?\n/, 2);
  const word = head.trim().toLowerCase();
  if (word === 'safe') return { unsafe: false, categories: [] };
  if (word !== 'unsafe') return null;
  const categories = rest
    .split(/[,\s]+/)
    .map((c) => c.trim())
    .filter((c) => /^[A-Za-z0-9_.\-/]{1,40}$/.test(c));
  return { unsafe: true, categories };
}
