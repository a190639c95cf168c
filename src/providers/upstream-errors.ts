/**
 * Nothing from the upstream leaks: an upstream's error answer is mapped into Sluice's catalogue
 * instead of being passed through, and anything that looks like a credential is redacted from
 * what reaches the caller and the logs.
 *
 *   upstream 5xx (and anything else unexpected)  -> 502 SLUICE_UPSTREAM_ERROR, no upstream text
 *   upstream 401 / 403 (Sluice's own credential)  -> 502 SLUICE_UPSTREAM_ERROR, never the upstream body
 *   upstream 429                                  -> 429 SLUICE_UPSTREAM_RATE_LIMITED with its retry time
 *   other upstream 4xx (the caller's bad request) -> 400 SLUICE_UPSTREAM_REJECTED, the upstream's
 *                                                    message kept only when it cannot carry a credential
 *
 * Pure: no I/O, no clock. `internal` (for logs only) carries a redacted excerpt of the upstream body.
 */
import { anthropicErrorBody, ERRORS, openAIErrorBody, type Refusal, refuse } from '../core/errors.js';
import type { Endpoint, UpstreamResponse } from '../core/ports.js';

/** What replaces a credential-looking string. */
export const REDACTED = '[REDACTED]';

/** 300 chars: enough of an upstream message to be useful, short enough that it cannot smuggle a document. */
const MAX_MESSAGE = 300;
/** A configured secret shorter than this is not searched for (it would redact ordinary words). */
const MIN_SECRET = 8;

/**
 * Credential shapes (gitleaks-style): provider keys (`sk-…`, `sk-ant-…`, Google `AIza…`, GitHub,
 * Slack), bearer/basic tokens, JWTs, AWS access key ids and secret assignments, `key=value`
 * assignments of secret-named fields, PEM private keys, and long mixed letter/digit tokens.
 */
const CREDENTIAL_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/gi,
  /\bsk-[A-Za-z0-9_-]{6,}/g,
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g,
  /\bAIza[0-9A-Za-z_-]{30,}/g,
  /\bgh[pousr]_[A-Za-z0-9]{30,}/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
  /\b(?:aws_secret_access_key|api[_-]?key|apikey|secret|password|passwd|token|x-api-key|authorization)\b["']?\s*[:=]\s*["']?[^\s"',;}]{6,}/gi,
  // A long run of letters and digits mixing both (an opaque token), e.g. an AWS secret key.
  /\b(?=[A-Za-z0-9+/_-]{32,})(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}/g,
];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces every configured secret and every credential-looking string in `text` with `[REDACTED]`.
 * `secrets` are exact strings (the upstream's configured key and header values).
 */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= MIN_SECRET && out.includes(s))
      out = out.replace(new RegExp(escapeRegExp(s), 'g'), REDACTED);
  }
  for (const re of CREDENTIAL_PATTERNS) out = out.replace(re, REDACTED);
  return out;
}

/** True when `text` holds nothing that looks like a credential (nothing to redact). */
export function looksCredentialFree(text: string, secrets: readonly string[] = []): boolean {
  return redactCredentials(text, secrets) === text;
}

/** The upstream's own error message out of an OpenAI- or Anthropic-shaped error body, if any. */
export function upstreamMessage(body: Uint8Array): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!json || typeof json !== 'object') return undefined;
  const err = (json as { error?: unknown }).error;
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object') {
    const m = (err as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  }
  const m = (json as { message?: unknown }).message;
  return typeof m === 'string' ? m : undefined;
}

/** Seconds to wait, from `retry-after-ms`, `retry-after` (seconds or HTTP date) — undefined when absent or odd. */
function retryHeaders(rateHeaders: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const ms = Number(rateHeaders['retry-after-ms']);
  const raw = rateHeaders['retry-after']?.trim() ?? '';
  const secs = /^\d+(?:\.\d+)?$/.test(raw) ? Number(raw) : undefined;
  if (Number.isFinite(ms) && ms >= 0 && rateHeaders['retry-after-ms'] !== undefined) {
    out['retry-after-ms'] = String(Math.ceil(ms));
    out['retry-after'] = String(Math.max(secs === undefined ? 0 : Math.ceil(secs), Math.ceil(ms / 1000)));
  } else if (secs !== undefined) {
    out['retry-after'] = String(Math.ceil(secs));
  } else if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(raw)) {
    // An HTTP date (RFC 9110 IMF-fixdate): safe to pass as it is, it can carry nothing else.
    out['retry-after'] = raw;
  }
  return out;
}

export interface UpstreamErrorInput {
  /** The upstream's status (not 2xx). */
  status: number;
  /** The upstream's rate-limit headers (retry-after, retry-after-ms, ...). */
  rateHeaders: Record<string, string>;
  /** The upstream's error body (never passed on). */
  body: Uint8Array;
  /** The upstream's name, for the log line. */
  upstream: string;
  /** The upstream's configured credentials (api key, header values): redacted wherever they appear. */
  secrets: readonly string[];
}

/**
 * Maps an upstream error answer to a Refusal in Sluice's catalogue. The refusal's `headers` hold the
 * retry time on a 429; its `internal` holds a redacted excerpt of the upstream body, for logs only.
 */
export function mapUpstreamError(input: UpstreamErrorInput): Refusal {
  const { status, upstream, secrets } = input;
  const raw = upstreamMessage(input.body) ?? Buffer.from(input.body).toString('utf8');
  const internal = `upstream ${upstream} answered ${status}: ${redactCredentials(raw.slice(0, 1000), secrets).slice(0, MAX_MESSAGE)}`;
  if (status === 429) {
    const headers = retryHeaders(input.rateHeaders);
    const wait = headers['retry-after'];
    return refuse(
      'SLUICE_UPSTREAM_RATE_LIMITED',
      /^\d+$/.test(wait ?? '') ? `retry in ${wait}s` : undefined,
      {
        headers,
        internal,
      },
    );
  }
  if (status === 401 || status === 403) {
    return refuse('SLUICE_UPSTREAM_ERROR', undefined, {
      internal: `upstream ${upstream} refused Sluice's credential (${status})`,
    });
  }
  if (status >= 400 && status < 500) {
    const message = upstreamMessage(input.body);
    // Kept only when short and credential-free: an echo of a header or a key is dropped whole.
    const keep =
      message !== undefined && message.length <= MAX_MESSAGE && looksCredentialFree(message, secrets);
    return refuse('SLUICE_UPSTREAM_REJECTED', keep ? message : undefined, { internal });
  }
  return refuse('SLUICE_UPSTREAM_ERROR', undefined, { internal });
}

/**
 * The whole answer the caller gets for a mapped upstream error, in the caller's wire format (Anthropic
 * shape on `messages`, OpenAI shape elsewhere). `status`, `headers` and `body` already hold the mapped
 * answer, so a gateway that passes them through leaks nothing; `refusal` and `upstreamStatus` let the
 * pipeline audit it as a refusal.
 */
export function mappedErrorResponse(endpoint: Endpoint, input: UpstreamErrorInput): UpstreamResponse {
  const refusal = mapUpstreamError(input);
  const def = ERRORS[refusal.code];
  const body = endpoint === 'messages' ? anthropicErrorBody(refusal) : openAIErrorBody(refusal);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...refusal.headers };
  if ('retryable' in def && def.retryable === false) headers['x-should-retry'] = 'false';
  return {
    status: def.status,
    headers,
    rateHeaders: input.rateHeaders,
    body: Buffer.from(JSON.stringify(body), 'utf8'),
    usage: Promise.resolve({ inputTokens: 0, outputTokens: 0, images: 0 }),
    refusal,
    upstreamStatus: input.status,
  };
}
