/**
 * Limit states as response headers, and the refusal for a denied reserve.
 *
 * Three header families, all from the same BucketState[] (shadow limits are never advertised):
 *  - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, reset as a Go duration (`6m0s`,
 *    `1.5s`, `20ms`). When several limits count the same thing (rpm and rpd), the one with the least
 *    remaining is reported, as it is the one that binds next.
 *  - Anthropic (`/v1/messages`): `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
 *    {limit,remaining,reset}`, reset as an RFC 3339 instant.
 *  - IETF draft-ietf-httpapi-ratelimit-headers-10: `ratelimit-policy: "rpm";q=20;w=60, ...` and
 *    `ratelimit: "rpm";r=19;t=3, ...` with one item per limit. Requests need no unit; concurrency uses
 *    the registered `qu="concurrent-requests"`; tokens, images and money, which the draft does not
 *    register, carry `sluice-unit` (money in micro-dollars, as the fields must be integers).
 * Header names are lower case (HTTP/2 requires it; HTTP/1 is case-insensitive).
 */
import { ERRORS, type ErrorCode, type Refusal } from '../errors.js';
import type { BucketState, CostKind, LimitBucket } from '../ports.js';
import { USD_SCALE } from './units.js';

/** The deny side of a ReserveResult; `storeUnavailable` is set by the resilient store's `closed` mode. */
export interface DeniedReserve {
  bucketIndex: number;
  retryAfterMs: number;
  states: BucketState[];
  storeUnavailable?: boolean;
}

/** A refusal for a denied reserve, ready for the edge. */
export interface LimitDenial {
  code: ErrorCode;
  /** The public message, e.g. "Rate limit reached for tpm (per key): limit 40000, used 39000, requested 2000; try again in 1.5s". */
  message: string;
  /** Response headers: Retry-After, retry-after-ms, x-should-retry, plus every rate-limit family. */
  headers: Record<string, string>;
  /** The same as a catalogue Refusal (its `detail` is the message after the limit's name). */
  refusal: Refusal;
}

export interface HeaderOptions {
  /** Add Anthropic's `anthropic-ratelimit-*` family (for `/v1/messages`). */
  anthropic?: boolean;
  /**
   * The longest wait a client should sleep through (`limits.maxClientRetryWait`, default
   * {@link DEFAULT_MAX_CLIENT_RETRY_WAIT_MS}). A rate-limit denial whose window reopens later says so
   * in its message and carries `x-should-retry: false`, so SDKs that sleep whatever `retry-after-ms`
   * says (openai, @anthropic-ai/sdk: no cap) fail fast instead of hanging for an hour.
   */
  maxClientRetryWaitMs?: number;
}

/** 60 s: the AI SDK and LangChain already refuse to sleep longer than this on their own. */
export const DEFAULT_MAX_CLIENT_RETRY_WAIT_MS = 60_000;

/** Go's `time.Duration` string for whole milliseconds: `0s`, `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function goDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  const t = Math.ceil(ms);
  if (t < 1000) return `${t}ms`;
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor((t % 3_600_000) / 60_000);
  const sMs = t % 60_000;
  const s = sMs % 1000 === 0 ? String(sMs / 1000) : (sMs / 1000).toFixed(3).replace(/0+$/, '');
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** RFC 3339 instant `ms` from now, to the second (rounded up: never earlier than the real reset). */
function rfc3339After(now: number, ms: number): string {
  return new Date(Math.ceil((now + ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The state that binds next among those of one kind: least remaining, then longest reset. */
function binding(states: readonly BucketState[], kind: CostKind): BucketState | undefined {
  let best: BucketState | undefined;
  for (const s of states) {
    if (s.shadow || s.kind !== kind) continue;
    if (!best || s.remaining < best.remaining || (s.remaining === best.remaining && s.resetMs > best.resetMs))
      best = s;
  }
  return best;
}

function intOf(n: number): string {
  return String(Math.max(0, Math.floor(n)));
}

const UNIT_PARAM: Record<CostKind, string> = {
  requests: '',
  concurrent: ';qu="concurrent-requests"',
  tokens: ';sluice-unit="tokens"',
  inputTokens: ';sluice-unit="input-tokens"',
  outputTokens: ';sluice-unit="output-tokens"',
  images: ';sluice-unit="images"',
  usd: ';sluice-unit="usd-micro"',
};

function quotaInt(kind: CostKind, n: number): string {
  return intOf(kind === 'usd' ? Math.round(n * USD_SCALE) : n);
}

/** Rate-limit headers for a response (allowed or denied). */
export function rateLimitHeaders(
  states: readonly BucketState[],
  now: number,
  opts: HeaderOptions = {},
): Record<string, string> {
  const h: Record<string, string> = {};
  const req = binding(states, 'requests');
  const tok = binding(states, 'tokens');
  if (req) {
    h['x-ratelimit-limit-requests'] = intOf(req.limit);
    h['x-ratelimit-remaining-requests'] = intOf(req.remaining);
    h['x-ratelimit-reset-requests'] = goDuration(req.resetMs);
  }
  if (tok) {
    h['x-ratelimit-limit-tokens'] = intOf(tok.limit);
    h['x-ratelimit-remaining-tokens'] = intOf(tok.remaining);
    h['x-ratelimit-reset-tokens'] = goDuration(tok.resetMs);
  }
  if (opts.anthropic) {
    const families: [string, BucketState | undefined][] = [
      ['requests', req],
      ['tokens', tok],
      ['input-tokens', binding(states, 'inputTokens')],
      ['output-tokens', binding(states, 'outputTokens')],
    ];
    for (const [name, s] of families) {
      if (!s) continue;
      h[`anthropic-ratelimit-${name}-limit`] = intOf(s.limit);
      h[`anthropic-ratelimit-${name}-remaining`] = intOf(s.remaining);
      h[`anthropic-ratelimit-${name}-reset`] = rfc3339After(now, s.resetMs);
    }
  }
  const policy: string[] = [];
  const current: string[] = [];
  for (const s of states) {
    if (s.shadow) continue;
    const window = s.kind === 'concurrent' ? '' : `;w=${Math.max(1, Math.ceil(s.windowMs / 1000))}`;
    policy.push(`"${s.id}";q=${quotaInt(s.kind, s.limit)}${window}${UNIT_PARAM[s.kind]}`);
    current.push(`"${s.id}";r=${quotaInt(s.kind, s.remaining)};t=${Math.ceil(s.resetMs / 1000)}`);
  }
  if (policy.length > 0) {
    h['ratelimit-policy'] = policy.join(', ');
    h.ratelimit = current.join(', ');
  }
  return h;
}

function amount(kind: CostKind, n: number): string {
  if (kind === 'usd') return `${Number(n.toFixed(6))} USD`;
  return String(Math.ceil(n));
}

/**
 * The refusal for a denied reserve: which code, the public message naming the limit that bound, and
 * the headers. `costs` are the costs the reserve asked for (same order as `buckets`).
 *  - a request that can never fit (cost > limit + burst) or any money limit → SLUICE_QUOTA_EXCEEDED,
 *    `x-should-retry: false` (waiting cannot help, or is a budget decision);
 *  - a concurrency limit → SLUICE_CONCURRENCY_LIMITED;
 *  - the limit store unavailable under `onStoreFailure: closed` → SLUICE_STORE_UNAVAILABLE;
 *  - anything else → SLUICE_RATE_LIMITED.
 */
export function denialOf(
  result: DeniedReserve,
  buckets: readonly LimitBucket[],
  costs: readonly number[],
  now: number,
  opts: HeaderOptions = {},
): LimitDenial {
  const i = result.bucketIndex;
  const b = buckets[i]!;
  const s = result.states[i];
  const cost = costs[i] ?? 0;
  const wait = result.retryAfterMs;
  const finite = Number.isFinite(wait);
  const scope = `${b.id} (per ${b.per})`;
  const capacity = b.limit + b.burst;
  const limitText =
    b.burst > 0 ? `${amount(b.kind, b.limit)} (+${amount(b.kind, b.burst)} burst)` : amount(b.kind, b.limit);
  const used = Math.max(0, capacity - (s?.remaining ?? 0));
  let code: ErrorCode;
  let message: string;
  if (result.storeUnavailable) {
    code = 'SLUICE_STORE_UNAVAILABLE';
    message = `Limit store unavailable for ${scope}; try again in ${goDuration(wait)}`;
  } else if (!finite || cost > capacity) {
    code = 'SLUICE_QUOTA_EXCEEDED';
    message = `Request too large for ${scope}: requested ${amount(b.kind, cost)}, limit ${limitText}; it can never fit`;
  } else if (b.kind === 'concurrent') {
    code = 'SLUICE_CONCURRENCY_LIMITED';
    message = `Concurrency limit reached for ${scope}: limit ${limitText}, in flight ${amount(b.kind, used)}; try again in ${goDuration(wait)}`;
  } else if (b.kind === 'usd') {
    code = 'SLUICE_QUOTA_EXCEEDED';
    message = `Quota exceeded for ${scope}: limit ${limitText}, used ${amount(b.kind, used)}, requested ${amount(b.kind, cost)}; resets in ${goDuration(wait)}`;
  } else {
    code = 'SLUICE_RATE_LIMITED';
    message = `Rate limit reached for ${scope}: limit ${limitText}, used ${amount(b.kind, used)}, requested ${amount(b.kind, cost)}; try again in ${goDuration(wait)}`;
  }
  // Too long to wait for: the caller is told when the window reopens, and SDKs are told not to sleep.
  const tooLong =
    finite &&
    (code === 'SLUICE_RATE_LIMITED' || code === 'SLUICE_CONCURRENCY_LIMITED') &&
    wait > (opts.maxClientRetryWaitMs ?? DEFAULT_MAX_CLIENT_RETRY_WAIT_MS);
  if (tooLong) {
    const at = rfc3339After(now, wait);
    message = `${message.slice(0, message.lastIndexOf('; try again in '))}; the window reopens in ${goDuration(wait)} (at ${at}), longer than a client should wait: not retrying`;
  }
  const headers = rateLimitHeaders(result.states, now, opts);
  if (finite) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(wait / 1000)));
    headers['retry-after-ms'] = String(Math.max(1, Math.ceil(wait)));
  }
  const retryable = (ERRORS[code] as { retryable?: boolean }).retryable !== false;
  if (!retryable || tooLong) headers['x-should-retry'] = 'false';
  const detail = message.slice(message.indexOf(' for ') + 5);
  return { code, message, headers, refusal: { code, detail, headers } };
}
