/**
 * The `anthropic` provider: `/v1/messages` only.
 *
 * Sluice sends its own `x-api-key`, the caller's `anthropic-version` when given (else the
 * configured one) and passes `anthropic-beta` through. Usage comes from the JSON `usage`, or in
 * streams from `message_start` (input) and `message_delta` (cumulative output).
 */
import type { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { ERRORS } from '../core/errors.js';
import type {
  Endpoint,
  StreamEvent,
  Upstream,
  UpstreamRequest,
  UpstreamResponse,
  Usage,
} from '../core/ports.js';
import { UpstreamError } from '../core/ports.js';
import {
  count,
  createPool,
  type HttpProviderOptions,
  joinPath,
  MAX_RESPONSE_BYTES,
  parseJsonObject,
  relaySse,
  requestWhole,
  type StreamObserver,
  safeRequestHeaders,
  splitResponseHeaders,
  toUpstreamError,
} from './http-upstream.js';
import { estimateInputTokens } from './prompt-text.js';
import { readAll, requestStreamed, type StreamedResponse } from './request-streamed.js';
import type { SseEvent } from './sse.js';
import { classifyEvent, parseData } from './stream-events.js';
import { mappedErrorResponse } from './upstream-errors.js';

export type AnthropicUpstreamConfig = Extract<UpstreamConfig, { kind: 'anthropic' }>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Input tokens of an Anthropic `usage`: uncached plus cache writes plus cache reads, i.e. the whole
 * prompt the model read (what OpenAI reports as prompt_tokens). Undefined when none is present.
 */
function inputOf(u: Record<string, unknown>): number | undefined {
  const base = count(u.input_tokens);
  const created = count(u.cache_creation_input_tokens);
  const read = count(u.cache_read_input_tokens);
  if (base === undefined && created === undefined && read === undefined) return undefined;
  return (base ?? 0) + (created ?? 0) + (read ?? 0);
}

/** Usage out of a non-streaming Anthropic message. Missing fields count 0. */
export function anthropicUsageFromJson(json: Record<string, unknown> | undefined): Usage {
  const u = json && isObject(json.usage) ? json.usage : undefined;
  if (!u) return { inputTokens: 0, outputTokens: 0, images: 0 };
  return { inputTokens: inputOf(u) ?? 0, outputTokens: count(u.output_tokens) ?? 0, images: 0 };
}

/** The SSE error event that ends a broken Anthropic-format stream. */
export function anthropicStreamError(err: UpstreamError): string {
  const def = ERRORS[err.kind === 'timeout' ? 'SLUICE_UPSTREAM_TIMEOUT' : 'SLUICE_UPSTREAM_ERROR'];
  const payload = {
    type: 'error',
    error: { type: 'api_error', message: `${def.message}: the stream was interrupted` },
  };
  return `event: error\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** Reads usage out of an Anthropic stream as it passes; never drops an event. */
export class AnthropicStreamObserver implements StreamObserver {
  private input: number | undefined;
  private startOutput: number | undefined;
  private output: number | undefined;
  private chars = 0;

  constructor(private readonly requestBody: Record<string, unknown>) {}

  onEvent(ev: SseEvent | undefined, raw: Uint8Array): StreamEvent | undefined {
    const type = ev?.event;
    if (
      !ev ||
      (type !== 'message_start' &&
        type !== 'message_delta' &&
        type !== 'content_block_delta' &&
        type !== 'content_block_start' &&
        type !== 'error')
    ) {
      // Pings, stops and unknown events: nothing to read, so no parse.
      return classifyEvent('messages', ev, raw, null);
    }
    const obj = parseData(ev);
    if (!obj) return classifyEvent('messages', ev, raw, null);
    if (type === 'content_block_delta') {
      const d = obj.delta;
      if (isObject(d)) {
        for (const k of ['text', 'partial_json', 'thinking'] as const) {
          const v = d[k];
          if (typeof v === 'string') this.chars += v.length;
        }
      }
    } else if (type === 'message_start') {
      const u = isObject(obj.message) && isObject(obj.message.usage) ? obj.message.usage : undefined;
      if (u) {
        this.input = inputOf(u) ?? this.input;
        this.startOutput = count(u.output_tokens);
      }
    } else if (type === 'message_delta' && isObject(obj.usage)) {
      // message_delta: output is cumulative; newer API versions may restate input there too.
      this.output = count(obj.usage.output_tokens) ?? this.output;
      this.input = inputOf(obj.usage) ?? this.input;
    }
    return classifyEvent('messages', ev, raw, obj);
  }

  usage(): Usage {
    return {
      inputTokens: this.input ?? estimateInputTokens('messages', this.requestBody),
      outputTokens: this.output ?? Math.max(this.startOutput ?? 0, Math.ceil(this.chars / 4)),
      images: 0,
    };
  }

  errorEvent(err: UpstreamError): StreamEvent {
    return {
      kind: 'error',
      raw: Buffer.from(anthropicStreamError(err), 'utf8'),
      sse: 'error',
      message: err.message,
    };
  }
}

/** An Anthropic Messages API upstream over one keep-alive undici Pool. */
export class AnthropicUpstream implements Upstream {
  readonly kind = 'anthropic' as const;
  readonly name: string;
  /** One keep-alive pool to the upstream's origin (also the side endpoints' dispatcher, TLS settings included). */
  readonly pool: Pool;
  private readonly path: string;

  constructor(
    private readonly cfg: AnthropicUpstreamConfig,
    private readonly opts: HttpProviderOptions = {},
  ) {
    this.name = cfg.name;
    const url = new URL(cfg.baseUrl);
    // Accept both `https://api.anthropic.com` and `https://host/v1` as the base URL.
    this.path = joinPath(url.pathname, /\/v1\/?$/.test(url.pathname) ? '/messages' : '/v1/messages');
    this.pool = createPool(url.origin, cfg.timeouts, opts.tls);
    this.secrets = [cfg.apiKey ?? '', ...Object.values(cfg.headers ?? {})].filter((v) => v.length > 0);
  }

  /** The upstream's configured credentials: redacted wherever an upstream error echoes them. */
  private readonly secrets: string[];

  supports(endpoint: Endpoint): boolean {
    return endpoint === 'messages';
  }

  advertisedModels(): { id: string; endpoints: Endpoint[] }[] {
    return [];
  }

  async call(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (req.endpoint !== 'messages') {
      throw new UpstreamError(
        'protocol',
        `${this.name}: endpoint ${req.endpoint} is not served by Anthropic`,
      );
    }
    // Copied only when something changes: a plain non-streamed body is serialised as it came.
    const body: Record<string, unknown> =
      req.stream || req.body.stream !== undefined ? { ...req.body, stream: req.stream } : req.body;
    const caller = safeRequestHeaders(req.headers);
    const headers: Record<string, string> = {
      ...caller,
      ...this.cfg.headers,
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      'accept-encoding': 'identity',
      'anthropic-version': caller['anthropic-version'] ?? this.cfg.version,
      'x-request-id': req.requestId,
    };
    if (this.cfg.apiKey) headers['x-api-key'] = this.cfg.apiKey;

    const requestOpts = { path: this.path, method: 'POST' as const, headers, body: JSON.stringify(body) };
    if (!req.stream) {
      // Non-streaming: collected whole by a dispatch handler, as for OpenAI (no response stream object).
      const whole = await requestWhole(this.pool, requestOpts, req.signal, this.name);
      const split = splitResponseHeaders(whole.headers);
      return this.wholeAnswer(whole.statusCode, split.headers, split.rateHeaders, whole.body);
    }
    let res: StreamedResponse;
    try {
      res = await requestStreamed(this.pool, requestOpts, req.signal);
    } catch (err) {
      if (req.signal.aborted) throw err;
      throw toUpstreamError(err, this.name);
    }
    const { headers: outHeaders, rateHeaders } = splitResponseHeaders(res.headers);
    const contentType = outHeaders['content-type'] ?? '';
    if (res.statusCode >= 200 && res.statusCode < 300 && contentType.includes('text/event-stream')) {
      const observer = new AnthropicStreamObserver(req.body);
      const { iterable, events, usage } = relaySse(
        res.body,
        req.signal,
        observer,
        this.name,
        this.opts.hooks,
      );
      return { status: res.statusCode, headers: outHeaders, rateHeaders, body: iterable, events, usage };
    }
    let bytes: Buffer;
    try {
      bytes = await readAll(
        res.body,
        MAX_RESPONSE_BYTES,
        () => new UpstreamError('protocol', `${this.name}: response larger than ${MAX_RESPONSE_BYTES} bytes`),
      );
    } catch (err) {
      if (req.signal.aborted) throw err;
      throw toUpstreamError(err, this.name);
    }
    return this.wholeAnswer(res.statusCode, outHeaders, rateHeaders, bytes);
  }

  private wholeAnswer(
    status: number,
    headers: Record<string, string>,
    rateHeaders: Record<string, string>,
    bytes: Buffer,
  ): UpstreamResponse {
    const ok = status >= 200 && status < 300;
    if (!ok) {
      // Never passed through: mapped into the catalogue, credentials redacted.
      return mappedErrorResponse('messages', {
        status,
        rateHeaders,
        body: bytes,
        upstream: this.name,
        secrets: this.secrets,
      });
    }
    const usage = (headers['content-type'] ?? '').includes('json')
      ? anthropicUsageFromJson(parseJsonObject(bytes))
      : { inputTokens: 0, outputTokens: 0, images: 0 };
    return { status, headers, rateHeaders, body: bytes, usage: Promise.resolve(usage) };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
