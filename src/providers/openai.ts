/**
 * The `openai` provider: any OpenAI-compatible base URL (OpenAI, vLLM, Ollama, llama.cpp server).
 *
 * Sluice adds the upstream credential itself and forwards only the safe caller headers it is
 * given. For chat and completions streams it asks for `stream_options.include_usage` and, when
 * the caller did not ask for it, drops the extra usage-only chunk from the bytes it passes on.
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

export type OpenAIUpstreamConfig = Extract<UpstreamConfig, { kind: 'openai' }>;

/** Paths appended to the base URL (which ends in `/v1`). */
export const OPENAI_PATHS: Partial<Record<Endpoint, string>> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  images: '/images/generations',
  responses: '/responses',
};

const ZERO: Usage = { inputTokens: 0, outputTokens: 0, images: 0 };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Usage out of a non-streaming OpenAI JSON answer, per endpoint. Missing fields count 0. */
export function openaiUsageFromJson(endpoint: Endpoint, json: Record<string, unknown> | undefined): Usage {
  if (!json) return { ...ZERO };
  const u = isObject(json.usage) ? json.usage : undefined;
  const input = count(u?.prompt_tokens) ?? count(u?.input_tokens) ?? 0;
  const output = count(u?.completion_tokens) ?? count(u?.output_tokens) ?? 0;
  if (endpoint === 'images') {
    return {
      inputTokens: input,
      outputTokens: output,
      images: Array.isArray(json.data) ? json.data.length : 0,
    };
  }
  if (endpoint === 'embeddings') return { inputTokens: input, outputTokens: 0, images: 0 };
  return { inputTokens: input, outputTokens: output, images: 0 };
}

/** The SSE error event that ends a broken OpenAI-format stream. */
export function openaiStreamError(endpoint: Endpoint, err: UpstreamError): string {
  const code = err.kind === 'timeout' ? 'SLUICE_UPSTREAM_TIMEOUT' : 'SLUICE_UPSTREAM_ERROR';
  const def = ERRORS[code];
  const error = { message: `${def.message}: the stream was interrupted`, type: def.type, code, param: null };
  if (endpoint === 'responses') {
    // Responses streams name their events; the SDKs throw on `event: error` and on a `data.error`.
    const payload = { type: 'error', code, message: error.message, param: null, error };
    return `event: error\ndata: ${JSON.stringify(payload)}\n\n`;
  }
  return `data: ${JSON.stringify({ error })}\n\n`;
}

/** Counts generated text in one chat/completions chunk (content, reasoning, refusal, tool arguments). */
function chunkChars(endpoint: Endpoint, choices: unknown[]): number {
  let n = 0;
  for (const c of choices) {
    if (!isObject(c)) continue;
    if (endpoint === 'completions') {
      if (typeof c.text === 'string') n += c.text.length;
      continue;
    }
    const d = c.delta;
    if (!isObject(d)) continue;
    if (typeof d.content === 'string') n += d.content.length;
    if (typeof d.reasoning_content === 'string') n += d.reasoning_content.length;
    if (typeof d.reasoning === 'string') n += d.reasoning.length;
    if (typeof d.refusal === 'string') n += d.refusal.length;
    if (Array.isArray(d.tool_calls)) {
      for (const t of d.tool_calls) {
        if (isObject(t) && isObject(t.function) && typeof t.function.arguments === 'string') {
          n += t.function.arguments.length;
        }
      }
    }
  }
  return n;
}

/**
 * Reads usage out of an OpenAI-format stream as it passes. Chat/completions: the last `usage`
 * seen (the include_usage chunk); responses: `response.completed|incomplete|failed`. Without a
 * report, output is estimated from the text seen and input from the request.
 */
export class OpenAIStreamObserver implements StreamObserver {
  private input: number | undefined;
  private output: number | undefined;
  private chars = 0;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly requestBody: Record<string, unknown>,
    /** Drop the usage-only chunk (`choices: []` with `usage`): the caller did not ask for it. */
    private readonly stripUsageChunk: boolean,
  ) {}

  onEvent(ev: SseEvent | undefined, raw: Uint8Array): StreamEvent | undefined {
    const format = this.endpoint === 'chat' || this.endpoint === 'completions' ? this.endpoint : 'responses';
    if (!ev) return classifyEvent(format, ev, raw, null);
    // One parse per event: usage is read here and the same object is classified.
    const obj = parseData(ev);
    if (!obj) return classifyEvent(format, ev, raw, null);
    if (this.endpoint === 'responses') {
      const type = obj.type;
      if (typeof type === 'string') {
        if (type.endsWith('.delta') && typeof obj.delta === 'string') this.chars += obj.delta.length;
        else if (
          (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') &&
          isObject(obj.response) &&
          isObject(obj.response.usage)
        ) {
          this.take(obj.response.usage);
        }
      }
      return classifyEvent(format, ev, raw, obj);
    }
    const choices = obj.choices;
    if (Array.isArray(choices)) this.chars += chunkChars(this.endpoint, choices);
    if (isObject(obj.usage)) {
      this.take(obj.usage);
      if (this.stripUsageChunk && Array.isArray(choices) && choices.length === 0) return undefined;
    }
    return classifyEvent(format, ev, raw, obj);
  }

  private take(u: Record<string, unknown>): void {
    this.input = count(u.prompt_tokens) ?? count(u.input_tokens) ?? this.input;
    this.output = count(u.completion_tokens) ?? count(u.output_tokens) ?? this.output;
  }

  usage(): Usage {
    return {
      inputTokens: this.input ?? estimateInputTokens(this.endpoint, this.requestBody),
      outputTokens: this.output ?? Math.ceil(this.chars / 4),
      images: 0,
    };
  }

  errorEvent(err: UpstreamError): StreamEvent {
    const text = openaiStreamError(this.endpoint, err);
    return {
      kind: 'error',
      raw: Buffer.from(text, 'utf8'),
      sse: this.endpoint === 'responses' ? 'error' : 'message',
      message: err.message,
    };
  }
}

/** An OpenAI-compatible upstream over one keep-alive undici Pool. */
export class OpenAIUpstream implements Upstream {
  readonly kind = 'openai' as const;
  readonly name: string;
  /** One keep-alive pool to the upstream's origin (also the side endpoints' dispatcher, TLS settings included). */
  readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    private readonly cfg: OpenAIUpstreamConfig,
    private readonly opts: HttpProviderOptions = {},
  ) {
    this.name = cfg.name;
    const url = new URL(cfg.baseUrl);
    // Trailing slashes dropped once here (what joinPath does), not on every call.
    this.basePath = joinPath(url.pathname, '');
    this.pool = createPool(url.origin, cfg.timeouts, opts.tls);
    this.secrets = [cfg.apiKey ?? '', ...Object.values(cfg.headers ?? {})].filter((v) => v.length > 0);
  }

  /** The upstream's configured credentials: redacted wherever an upstream error echoes them. */
  private readonly secrets: string[];

  supports(endpoint: Endpoint): boolean {
    return OPENAI_PATHS[endpoint] !== undefined;
  }

  advertisedModels(): { id: string; endpoints: Endpoint[] }[] {
    return [];
  }

  async call(req: UpstreamRequest): Promise<UpstreamResponse> {
    const path = OPENAI_PATHS[req.endpoint];
    if (!path)
      throw new UpstreamError('protocol', `${this.name}: endpoint ${req.endpoint} is not OpenAI-compatible`);
    // Copied only when something changes: a plain non-streamed body is serialised as it came.
    let body: Record<string, unknown> = req.body;
    let stripUsageChunk = false;
    if (req.stream) {
      body = { ...req.body, stream: true };
      if (req.endpoint === 'chat' || req.endpoint === 'completions') {
        const so = isObject(body.stream_options) ? body.stream_options : {};
        stripUsageChunk = so.include_usage !== true;
        body.stream_options = { ...so, include_usage: true };
      }
    } else if (body.stream !== undefined) {
      body = { ...req.body, stream: false };
    }
    const headers: Record<string, string> = {
      ...safeRequestHeaders(req.headers),
      ...this.cfg.headers,
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      // Usage is read from the bytes, so they must arrive uncompressed.
      'accept-encoding': 'identity',
      'x-request-id': req.requestId,
    };
    if (this.cfg.apiKey) headers.authorization = `Bearer ${this.cfg.apiKey}`;

    const requestOpts = {
      path: this.basePath + path,
      method: 'POST' as const,
      headers,
      body: JSON.stringify(body),
    };
    if (!req.stream) return this.callWhole(req, requestOpts);

    let res: StreamedResponse;
    try {
      res = await requestStreamed(this.pool, requestOpts, req.signal);
    } catch (err) {
      if (req.signal.aborted) throw err;
      throw toUpstreamError(err, this.name);
    }
    const { headers: outHeaders, rateHeaders } = splitResponseHeaders(res.headers);
    const contentType = outHeaders['content-type'] ?? '';
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    if (ok && contentType.includes('text/event-stream')) {
      const observer = new OpenAIStreamObserver(req.endpoint, req.body, stripUsageChunk);
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
    return this.wholeAnswer(req.endpoint, res.statusCode, outHeaders, rateHeaders, bytes);
  }

  /** A non-streaming call: the answer is collected whole by a dispatch handler. */
  private async callWhole(
    req: UpstreamRequest,
    opts: { path: string; method: 'POST'; headers: Record<string, string>; body: string },
  ): Promise<UpstreamResponse> {
    const res = await requestWhole(this.pool, opts, req.signal, this.name);
    const { headers: outHeaders, rateHeaders } = splitResponseHeaders(res.headers);
    return this.wholeAnswer(req.endpoint, res.statusCode, outHeaders, rateHeaders, res.body);
  }

  private wholeAnswer(
    endpoint: Endpoint,
    status: number,
    headers: Record<string, string>,
    rateHeaders: Record<string, string>,
    bytes: Buffer,
  ): UpstreamResponse {
    const ok = status >= 200 && status < 300;
    if (!ok) {
      // Never passed through: mapped into the catalogue, credentials redacted.
      return mappedErrorResponse(endpoint, {
        status,
        rateHeaders,
        body: bytes,
        upstream: this.name,
        secrets: this.secrets,
      });
    }
    const usage = (headers['content-type'] ?? '').includes('json')
      ? openaiUsageFromJson(endpoint, parseJsonObject(bytes))
      : { ...ZERO };
    return { status, headers, rateHeaders, body: bytes, usage: Promise.resolve(usage) };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
