/**
 * The HTTP transport the openai and anthropic providers share: one undici Pool per upstream,
 * header hygiene in both directions, transport errors mapped to UpstreamError, whole-body reads
 * with a cap, and the stream relay that passes SSE bytes on while reading usage out of them.
 */
import type { Readable } from 'node:stream';
import type { Pool } from 'undici';
import type { StreamEvent, Usage } from '../core/ports.js';
import { UpstreamError } from '../core/ports.js';
import { closeable } from './closeable-stream.js';
import type { ChunkSource } from './request-streamed.js';
import { type SseEvent, SseParser } from './sse.js';
import { dualView } from './stream-events.js';
import { undici } from './undici.js';
import { PIN_MISMATCH, type TlsConnectOptions } from './upstream-tls.js';

/** Timeouts in milliseconds, as `UpstreamConfig.timeouts` holds them after parsing. */
export interface UpstreamTimeouts {
  connect: number;
  headers: number;
  body: number;
}

/** Hooks a wrapper (the circuit breaker) uses to hear about failures that happen after `call` returned. */
export interface ProviderHooks {
  /** A stream broke after its headers arrived (reset, timeout, oversized event). Not called for a client abort. */
  onStreamFailure?(err: UpstreamError): void;
}

/** Options for the HTTP providers. */
export interface HttpProviderOptions {
  hooks?: ProviderHooks;
  /** `upstreams[].tls` as connect options (upstream-tls.ts). */
  tls?: TlsConnectOptions;
}

/**
 * 64 MiB: an upstream answer larger than this (non-streaming) is refused as a protocol error;
 * image answers with several b64 PNGs stay well under it.
 */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** 16 MiB: one SSE event larger than this means the upstream is not speaking SSE. */
export const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/** A keep-alive pool to one origin; pipelining 1 because upstreams stream long answers. */
export function createPool(origin: string, timeouts: UpstreamTimeouts, tls?: TlsConnectOptions): Pool {
  return new (undici().Pool)(origin, {
    pipelining: 1,
    connect: { timeout: timeouts.connect, ...tls },
    headersTimeout: timeouts.headers,
    bodyTimeout: timeouts.body,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
}

/** Joins a base path (`/v1`, `/`, ``) and an endpoint path without doubling slashes. */
export function joinPath(basePath: string, path: string): string {
  return basePath.replace(/\/+$/, '') + path;
}

/** Request headers a caller may never pass to an upstream: credentials, framing and hop-by-hop. */
const REQUEST_DENY = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'host',
  'content-length',
  'content-type',
  'accept-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

/** The caller's forwardable headers with credentials and hop-by-hop headers removed, names lowercased. */
export function safeRequestHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (!REQUEST_DENY.has(name)) out[name] = v;
  }
  return out;
}

/**
 * Response headers never given back to the caller: hop-by-hop (RFC 9110 §7.6.1), framing (the
 * gateway may rewrite the body), cookies and credentials, and headers naming the upstream account.
 */
const RESPONSE_DENY = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'set-cookie',
  'set-cookie2',
  'cookie',
  'authorization',
  'www-authenticate',
  'x-api-key',
  'api-key',
  'openai-organization',
  'openai-project',
  'anthropic-organization-id',
  'server',
  'date',
  'alt-svc',
  'via',
  'strict-transport-security',
]);

function isRateHeader(name: string): boolean {
  return (
    name.startsWith('x-ratelimit-') ||
    name.startsWith('anthropic-ratelimit-') ||
    name === 'retry-after' ||
    name === 'retry-after-ms' ||
    name === 'ratelimit' ||
    name === 'ratelimit-policy'
  );
}

/** Splits upstream response headers into those safe for the caller and the upstream's rate-limit feedback. */
export function splitResponseHeaders(raw: Record<string, string | string[] | undefined>): {
  headers: Record<string, string>;
  rateHeaders: Record<string, string>;
} {
  const headers: Record<string, string> = {};
  const rateHeaders: Record<string, string> = {};
  // Headers named in `Connection` are hop-by-hop too.
  const connection = raw.connection;
  // Most answers name nothing beyond keep-alive/close: no set to build then.
  const named =
    connection === undefined || connection === ''
      ? undefined
      : new Set(
          (Array.isArray(connection) ? connection.join(',') : connection)
            .split(',')
            .map((s) => s.trim().toLowerCase())
            .filter(Boolean),
        );
  for (const k in raw) {
    const v = raw[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    const value = Array.isArray(v) ? v.join(', ') : v;
    if (isRateHeader(name)) rateHeaders[name] = value;
    else if (!RESPONSE_DENY.has(name) && !named?.has(name)) headers[name] = value;
  }
  return { headers, rateHeaders };
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
]);

/** The upstream's certificate failed our checks (chain, validity, host name): it is not the upstream we trust. */
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  // Happy-eyeballs connects fail with an AggregateError of one error per address.
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  if (e.cause) return errorCode(e.cause);
  return undefined;
}

/**
 * Maps a transport error to UpstreamError. `beforeSend` is true only when the connection was
 * never established (refused, unresolvable, connect timeout, TLS handshake), so nothing was sent.
 */
export function toUpstreamError(err: unknown, upstream: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = errorCode(err) ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT')
    return new UpstreamError('timeout', `${upstream}: connect timeout`, true);
  if (code === 'UND_ERR_HEADERS_TIMEOUT')
    return new UpstreamError('timeout', `${upstream}: no response headers in time`);
  if (code === 'UND_ERR_BODY_TIMEOUT')
    return new UpstreamError('timeout', `${upstream}: response body stalled`);
  if (CONNECT_CODES.has(code))
    return new UpstreamError('connect', `${upstream}: cannot connect (${code})`, true);
  if (code === PIN_MISMATCH)
    return new UpstreamError('untrusted', `${upstream}: ${(err as Error).message}`, true);
  if (SERVER_CERT_CODES.has(code))
    return new UpstreamError('untrusted', `${upstream}: certificate not trusted (${code})`, true);
  if (code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || code === 'EPROTO' || code.includes('CERT')) {
    return new UpstreamError('connect', `${upstream}: TLS handshake failed (${code})`, true);
  }
  if (
    code.startsWith('HPE_') ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_HEADERS_OVERFLOW'
  ) {
    return new UpstreamError('protocol', `${upstream}: invalid HTTP response (${code})`);
  }
  return new UpstreamError('reset', `${upstream}: connection reset${code ? ` (${code})` : ''}`);
}

/** Reads a whole response body, refusing more than `max` bytes. Destroys the body on any failure. */
export function readBody(body: Readable, upstream: string, max = MAX_RESPONSE_BYTES): Promise<Buffer> {
  // Events rather than `for await`: the async iterator costs more than the rest of this on every response.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        body.destroy();
        reject(new UpstreamError('protocol', `${upstream}: response larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    body.once('error', (err) => {
      body.destroy();
      reject(err);
    });
    body.once('close', () => {
      if (!body.readableEnded) reject(new UpstreamError('reset', `${upstream}: response ended early`));
    });
  });
}

/** Reads a JSON object out of bytes, or undefined when it is not one. */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Non-negative integer out of an unknown field, or undefined. */
/**
 * A token or image count from an upstream's usage report. Values above 2^31-1 are treated as missing
 * (the estimate applies): no real answer is that large, and trusting one would write absurd usage and
 * settle a key into a debt it never leaves.
 */
export function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 2_147_483_647
    ? Math.round(v)
    : undefined;
}

/** What a provider does with the events of one stream. */
export interface StreamObserver {
  /**
   * Called for every SSE block (`ev` undefined for comment-only blocks) with its exact bytes; reads
   * usage and returns the block as a provider-neutral event, or undefined to drop its bytes from
   * what the caller gets. The block's JSON is parsed once, here.
   */
  onEvent(ev: SseEvent | undefined, raw: Uint8Array): StreamEvent | undefined;
  /** Usage so far; called once when the stream ends, breaks or is aborted. */
  usage(): Usage;
  /** A complete SSE error event in the caller's wire format, appended when the stream breaks. */
  errorEvent(err: UpstreamError): StreamEvent;
}

/**
 * Relays an upstream SSE body: the stream is parsed as it arrives into whole SSE blocks (so a stream
 * that breaks can always be ended with a well-formed error event), each classified once into a
 * provider-neutral event. `events` yields them; `body` yields their raw bytes, one write per upstream
 * chunk (both views share the stream: consume one). It pulls from the upstream only as fast as the
 * consumer reads. `usage` resolves when the stream ends, breaks, the consumer stops reading, or
 * `signal` aborts; it never rejects.
 */
export function relaySse(
  body: ChunkSource,
  signal: AbortSignal,
  observer: StreamObserver,
  upstream: string,
  hooks: ProviderHooks | undefined,
): { iterable: AsyncIterable<Uint8Array>; events: AsyncIterable<StreamEvent>; usage: Promise<Usage> } {
  let resolveUsage!: (u: Usage) => void;
  const usage = new Promise<Usage>((r) => {
    resolveUsage = r;
  });
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    signal.removeEventListener('abort', onAbort);
    let u: Usage;
    try {
      u = observer.usage();
    } catch {
      u = { inputTokens: 0, outputTokens: 0, images: 0 };
    }
    resolveUsage(u);
  };
  // A consumer that never starts reading still gets its usage when the request is aborted.
  const onAbort = (): void => {
    body.destroy();
    settle();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  // Set when the consumer stops reading: the body is destroyed on purpose, not broken.
  let stopped = false;

  async function* relay(): AsyncGenerator<StreamEvent[]> {
    const parser = new SseParser();
    try {
      for await (const chunk of body) {
        const blocks = parser.push(chunk as Uint8Array);
        if (parser.pendingBytes() > MAX_EVENT_BYTES) {
          throw new UpstreamError('protocol', `${upstream}: SSE event larger than ${MAX_EVENT_BYTES} bytes`);
        }
        if (blocks.length === 0) continue;
        const out: StreamEvent[] = [];
        for (const b of blocks) {
          const ev = observer.onEvent(b.event, b.raw);
          if (ev) out.push(ev);
        }
        if (out.length > 0) yield out;
      }
      const last = parser.end();
      if (last) {
        const ev = observer.onEvent(last.event, last.raw);
        if (ev) yield [ev];
      }
    } catch (err) {
      if (!signal.aborted && !stopped) {
        const ue = toUpstreamError(err, upstream);
        hooks?.onStreamFailure?.(ue);
        // Usage first: the error event is the last thing the caller reads.
        settle();
        yield [observer.errorEvent(ue)];
      }
    } finally {
      if (!body.destroyed) body.destroy();
      settle();
    }
  }
  const batches = closeable(relay(), () => {
    stopped = true;
    body.destroy();
    settle();
  });
  const { body: iterable, events } = dualView(batches);
  return { iterable, events, usage };
}

/** A whole (non-streaming) upstream answer. */
export interface WholeResponse {
  statusCode: number;
  /** Header names lowercased; repeated headers as arrays (as `Pool.request` gives them). */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * Sends one request and reads its whole answer, refusing more than `max` bytes. Uses `pool.dispatch`
 * with a handler that collects the body: no response stream object, which `pool.request` plus a
 * Readable costs on every call. Errors as the `request` + `readBody` pair gave them: the raw error
 * when `signal` aborted (its reason), otherwise an UpstreamError.
 */
export function requestWhole(
  pool: Pool,
  opts: { path: string; method: 'POST'; headers: Record<string, string>; body: string },
  signal: AbortSignal,
  upstream: string,
  max = MAX_RESPONSE_BYTES,
): Promise<WholeResponse> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<WholeResponse>((resolve, reject) => {
    let controller: { abort(reason: Error): void } | undefined;
    let done = false;
    let statusCode = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let chunks: Buffer[] = [];
    let size = 0;
    const onAbort = (): void => controller?.abort(signal.reason);
    const fail = (err: unknown): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      reject(signal.aborted ? err : toUpstreamError(err, upstream));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pool.dispatch(opts, {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(_c, status, h) {
        statusCode = status;
        headers = h as Record<string, string | string[] | undefined>;
      },
      onResponseData(c, chunk: Buffer) {
        if (done) return;
        size += chunk.length;
        if (size > max) {
          const err = new UpstreamError('protocol', `${upstream}: response larger than ${max} bytes`);
          fail(err);
          chunks = [];
          c.abort(err);
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        resolve({
          statusCode,
          headers,
          body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size),
        });
      },
      onResponseError(_c, err) {
        fail(err);
      },
    });
  });
}
