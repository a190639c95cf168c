/**
 * Signed webhook deliveries for trust events: tier moves, rotation warnings and new secrets.
 * The body is signed `x-sluice-signature: sha256=<hex HMAC-SHA-256(secret, body)>` as alert webhooks
 * are. A body may hold a new API key: it is never logged, and what callers record of a delivery is
 * the webhook's origin, the status and the attempt count only.
 */
import { signAlertBody } from '../observability/alerts.js';

export interface DeliveryResult {
  ok: boolean;
  /** The webhook's origin only: paths often hold tokens. */
  webhook: string;
  attempts: number;
  status?: number;
  error?: string;
}

export interface DeliverOptions {
  fetchImpl?: typeof fetch;
  /** Attempts including the first (default 3); retried on transport errors, 408, 429 and 5xx. */
  attempts?: number;
  /** First retry delay (default 250 ms, doubling). */
  baseMs?: number;
  timeoutMs?: number;
}

export function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid-url';
  }
}

const RETRIABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

/** POSTs `payload` as JSON to `url`, signed with `secret`. Never throws. */
export async function deliver(
  url: string,
  secret: string | undefined,
  payload: Record<string, unknown>,
  opts: DeliverOptions = {},
): Promise<DeliveryResult> {
  const body = JSON.stringify(payload);
  const f = opts.fetchImpl ?? fetch;
  const max = opts.attempts ?? 3;
  const out: DeliveryResult = { ok: false, webhook: origin(url), attempts: 0 };
  for (let i = 0; i < max; i++) {
    out.attempts = i + 1;
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'sluice-trust',
      };
      if (secret) headers['x-sluice-signature'] = signAlertBody(secret, body);
      const r = await f(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      await r.arrayBuffer().catch(() => undefined);
      out.status = r.status;
      if (r.ok) {
        out.ok = true;
        delete out.error;
        return out;
      }
      out.error = `HTTP ${r.status}`;
      if (!RETRIABLE.has(r.status)) return out;
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string }; message?: string };
      out.error =
        e.name === 'TimeoutError' ? 'timeout' : String(e.cause?.code ?? e.message ?? err).slice(0, 200);
    }
    if (i + 1 < max) await new Promise((r) => setTimeout(r, (opts.baseMs ?? 250) * 2 ** i));
  }
  return out;
}
