/**
 * The built-in `mock` upstream: no network, answers every endpoint in the shape the real API
 * uses, with deterministic text derived from the prompt, realistic `usage`, and SSE streams paced
 * by `tokenDelay` (real timers: this is the mock server's own pacing, not Sluice logic).
 *
 * It runs inside the gateway process, so it stays cheap: no tokenizer, one small PRNG, and with
 * `tokenDelay: 0` a whole stream is yielded as one chunk.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamConfig } from '../config/schema.js';
import type {
  Endpoint,
  StreamEvent,
  StreamFormat,
  Upstream,
  UpstreamRequest,
  UpstreamResponse,
  Usage,
} from '../core/ports.js';
import { mulberry32 } from '../core/prng.js';
import { closeable } from './closeable-stream.js';
import {
  structuredAnswer,
  type ToolAnswerPlan,
  tokenPieces,
  toolAnswerPieces,
  toolAnswerWhole,
} from './mock-structured.js';
import { estimateInputTokens, lastUserText } from './prompt-text.js';
import type { SseEvent } from './sse.js';
import { classifyEvent, dualView, streamFormatOf } from './stream-events.js';

export type MockUpstreamConfig = Extract<UpstreamConfig, { kind: 'mock' }>;

/** What the mock advertises in /v1/models; it answers any other model name routed to it as well. */
export const MOCK_MODELS: { id: string; endpoints: Endpoint[] }[] = [
  { id: 'demo-model', endpoints: ['chat', 'completions', 'responses'] },
  { id: 'demo-embed', endpoints: ['embeddings'] },
  { id: 'demo-image', endpoints: ['images'] },
  { id: 'claude-demo', endpoints: ['messages'] },
];

/** 1536: the width of text-embedding-3-small, so mock vectors fit the columns real ones would. */
const DEFAULT_DIMENSIONS = 1536;
const MAX_DIMENSIONS = 4096;
/** A valid 1x1 transparent PNG. */
export const MOCK_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const FILLER = (
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et ' +
  'dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea ' +
  'commodo consequat'
).split(' ');

/** FNV-1a, 32 bits: a cheap, stable seed from the input text. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `\s` of a JavaScript regular expression (what `/\S+/` splits on), by UTF-16 code unit. */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Answer id prefixes, per endpoint, as the real APIs write them. */
const ID_HEAD: Partial<Record<Endpoint, string>> = {
  chat: 'chatcmpl-',
  completions: 'cmpl-',
  responses: 'resp_',
  messages: 'msg_',
};

/**
 * The mock's reply, as words (one token each): "This is a mock reply from Sluice to: <first words
 * of the prompt>..." padded with deterministic filler to exactly `count` words.
 */
export function mockReplyWords(prompt: string, count: number): string[] {
  // The first 7 whitespace-separated words (as split(/\s+/) without empties gives them), without
  // splitting a long prompt whole.
  // Scanned by hand: `/\S+/g.exec` allocates a match array per word (the mock answers every call of
  // a simulation).
  const quoted: string[] = [];
  const n = prompt.length;
  for (let i = 0; i < n && quoted.length < 7; ) {
    while (i < n && isSpace(prompt.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !isSpace(prompt.charCodeAt(i))) i++;
    quoted.push(i - start > 32 ? `${prompt.slice(start, start + 32)}…` : prompt.slice(start, i));
  }
  const words = ['This', 'is', 'a', 'mock', 'reply', 'from', 'Sluice'];
  if (quoted.length === 0) words[words.length - 1] = 'Sluice.';
  else {
    words.push('to:');
    if (quoted.length > 6) {
      quoted.length = 6;
      quoted[5] = `${quoted[5]}...`;
    }
    words.push(...quoted);
  }
  const rnd = mulberry32(fnv1a(prompt));
  while (words.length < count) words.push(FILLER[Math.floor(rnd() * FILLER.length)]);
  if (words.length > count) words.length = count;
  return words;
}

/** A deterministic unit vector of `dims` floats seeded by the input. */
export function mockEmbedding(input: string, dims: number): number[] {
  const rnd = mulberry32(fnv1a(input));
  const v = new Array<number>(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = rnd() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] /= norm;
  return v;
}

/** "000" to "999" as ASCII, three bytes each. */
const DIGITS3 = Uint8Array.from({ length: 3000 }, (_, i) =>
  String((i / 3) | 0)
    .padStart(3, '0')
    .charCodeAt(i % 3),
);

/**
 * `v` as a JSON array of numbers with nine decimals (`[0.012345678,-0.000123400,...]`, as precise
 * as the floats real APIs print), written byte by byte (~20 us): JSON.stringify prints every double's
 * shortest form, which cost ~185 us for 1,536 of them, a twentieth of a `sluice simulate` run whose
 * trace had one embeddings request in twenty. Components are in [-1, 1] (a unit vector's).
 */
export function embeddingArrayJson(v: ArrayLike<number>): Buffer {
  const out = Buffer.allocUnsafe(2 + v.length * 13);
  let o = 0;
  out[o++] = 0x5b; // [
  for (let i = 0; i < v.length; i++) {
    if (i > 0) out[o++] = 0x2c; // ,
    const x = v[i]!;
    const q = Math.round(Math.abs(x) * 1e9);
    if (x < 0 && q > 0) out[o++] = 0x2d; // - (not before a zero)
    if (q >= 1e9) {
      out[o++] = 0x31; // 1 (a component of exactly +-1: a vector of one dimension)
      continue;
    }
    out[o++] = 0x30; // 0
    out[o++] = 0x2e; // .
    // Three groups of three digits (q < 1e9 fits an int32), each copied from DIGITS3.
    const a = (q / 1e6) | 0;
    const r = q - a * 1e6;
    const b = (r / 1e3) | 0;
    const c = r - b * 1e3;
    out[o] = DIGITS3[a * 3]!;
    out[o + 1] = DIGITS3[a * 3 + 1]!;
    out[o + 2] = DIGITS3[a * 3 + 2]!;
    out[o + 3] = DIGITS3[b * 3]!;
    out[o + 4] = DIGITS3[b * 3 + 1]!;
    out[o + 5] = DIGITS3[b * 3 + 2]!;
    out[o + 6] = DIGITS3[c * 3]!;
    out[o + 7] = DIGITS3[c * 3 + 1]!;
    out[o + 8] = DIGITS3[c * 3 + 2]!;
    o += 9;
  }
  out[o++] = 0x5d; // ]
  return out.subarray(0, o);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function clampInt(v: unknown, min: number, max: number, dflt: number): number {
  const n = num(v);
  if (n === undefined) return dflt;
  return Math.min(max, Math.max(min, Math.floor(n)));
}

const enc = new TextEncoder();

/** One SSE piece of a mock stream; `token` pieces are paced by `tokenDelay` and count as output. */
interface Piece {
  sse: string;
  token?: boolean;
  /**
   * The object the piece's `data:` line is the JSON of, when the piece was built from one the mock
   * made for it alone (the text and token chunks): the event view classifies it without parsing the
   * line back (see `mockBatches`). Absent: the line is parsed, as a relayed stream's would be.
   */
  data?: Record<string, unknown>;
}

function sse(data: unknown, event?: string): string {
  const json = typeof data === 'string' ? data : JSON.stringify(data);
  return event ? `event: ${event}\ndata: ${json}\n\n` : `data: ${json}\n\n`;
}

/** Everything one mock answer needs, computed once from the request. */
interface Plan {
  endpoint: Endpoint;
  model: string;
  id: string;
  created: number;
  input: number;
  /** Words of one choice. */
  words: string[];
  choices: number;
  /** True when max tokens cut the reply short. */
  truncated: boolean;
  body: Record<string, unknown>;
  /** `words` are token pieces of a JSON answer, joined with nothing (mock-structured.ts). */
  joined?: boolean;
  /** The answer is this tool call instead of text (mock-structured.ts). */
  tool?: ToolAnswerPlan;
}

/**
 * The built-in upstream. `now` gives `created` timestamps (defaults to the wall clock).
 * `vectors: 'constant'` (for `sluice simulate`, where no one reads an answer's body) answers every
 * embedding with one fixed unit vector per size instead of one seeded by its input: the same
 * shape, length and usage, without the ~20 µs per 1,536 floats of making and printing a new one.
 */
export class MockUpstream implements Upstream {
  readonly kind = 'mock' as const;
  readonly name: string;
  private readonly now: () => number;
  private readonly constantVectors: boolean;
  /** `vectors: 'constant'`: each size's vector, printed once (JSON array, and base64 JSON string). */
  private readonly printed = new Map<string, Buffer>();

  constructor(
    private readonly cfg: MockUpstreamConfig,
    opts: { now?: () => number; vectors?: 'seeded' | 'constant' } = {},
  ) {
    this.name = cfg.name;
    this.now = opts.now ?? Date.now;
    this.constantVectors = opts.vectors === 'constant';
  }

  /** One embedding as JSON: seeded by its input, or the constant one of its size. */
  private vectorJson(text: string, dims: number, base64: boolean): Buffer {
    const k = this.constantVectors ? `${dims}${base64 ? 'b' : 'a'}` : '';
    const kept = this.constantVectors ? this.printed.get(k) : undefined;
    if (kept) return kept;
    const v = mockEmbedding(this.constantVectors ? '' : text, dims);
    const json = base64
      ? Buffer.from(JSON.stringify(Buffer.from(new Float32Array(v).buffer).toString('base64')))
      : embeddingArrayJson(v);
    if (this.constantVectors) this.printed.set(k, json);
    return json;
  }

  supports(_endpoint: Endpoint): boolean {
    return true;
  }

  advertisedModels(): { id: string; endpoints: Endpoint[] }[] {
    return MOCK_MODELS.map((m) => ({ id: m.id, endpoints: [...m.endpoints] }));
  }

  async close(): Promise<void> {}

  /**
   * `outputTokens`, when given, is what the answer's usage reports as output instead of the mock's own
   * count (`sluice simulate`: a trace's `upstream.outputTokens`); the body is the same either way.
   */
  async call(req: UpstreamRequest, outputTokens?: number): Promise<UpstreamResponse> {
    if (req.signal.aborted) throw req.signal.reason ?? new Error('aborted');
    const body = req.body;
    const endpoint = req.endpoint;
    const model = typeof body.model === 'string' && body.model ? body.model : defaultModel(endpoint);
    const created = Math.floor(this.now() / 1000);
    const id = `${ID_HEAD[endpoint] ?? ''}${req.requestId}`;

    if (endpoint === 'embeddings') {
      const out = this.embeddings(body, model);
      const usage = reported(out.usage, outputTokens);
      return {
        status: 200,
        headers: jsonHeaders(endpoint, req.requestId),
        rateHeaders: {},
        body: out.body,
        usage: Promise.resolve(usage),
      };
    }
    if (endpoint === 'images') {
      const out = this.images(body, created);
      return done(200, jsonHeaders(endpoint, req.requestId), out.json, reported(out.usage, outputTokens));
    }

    const cap = maxTokens(endpoint, body);
    // Tools and JSON output formats get a schema-valid tool call or JSON text (mock-structured.ts).
    const prompt = lastUserText(endpoint, body);
    const structured = structuredAnswer(endpoint, body, prompt, req.requestId);
    const jsonPieces = structured?.kind === 'json' ? await tokenPieces(structured.text) : undefined;
    const reply = jsonPieces ? jsonPieces.length : this.cfg.replyWords;
    const limit = cap === undefined ? reply : Math.max(0, Math.min(reply, cap));
    const words = jsonPieces ? jsonPieces.slice(0, limit) : mockReplyWords(prompt, limit);
    const choices = endpoint === 'chat' || endpoint === 'completions' ? clampInt(body.n, 1, 16, 1) : 1;
    const plan: Plan = {
      endpoint,
      model,
      id,
      created,
      input: estimateInputTokens(endpoint, body),
      words,
      choices,
      truncated: limit < reply,
      body,
      joined: jsonPieces !== undefined,
    };
    if (structured?.kind === 'tool') {
      const pieces = await tokenPieces(structured.call.arguments);
      plan.tool = { endpoint, id, model, created, input: plan.input, call: structured.call, pieces, body };
      plan.words = pieces;
      plan.choices = 1;
      plan.truncated = false;
    }
    if (!req.stream) {
      const usage: Usage = {
        inputTokens: plan.input,
        outputTokens: outputTokens ?? plan.words.length * plan.choices,
        images: 0,
      };
      if (plan.endpoint === 'chat' && !plan.tool) {
        const text = textOf(plan);
        const body = Buffer.from(chatCompletionJson(plan, text), 'utf8');
        const res: MockChatAnswer = {
          status: 200,
          headers: jsonHeaders(endpoint, req.requestId),
          rateHeaders: {},
          body,
          usage: Promise.resolve(usage),
          mockChatText: text,
          mockChatBytes: body,
        };
        return res;
      }
      return doneText(200, jsonHeaders(endpoint, req.requestId), JSON.stringify(whole(plan)), usage);
    }
    return this.stream(
      plan,
      req.signal,
      {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        ...(endpoint === 'messages' ? { 'request-id': req.requestId } : { 'x-request-id': req.requestId }),
      },
      outputTokens,
    );
  }

  private embeddings(body: Record<string, unknown>, model: string): { body: Buffer; usage: Usage } {
    const raw = body.input;
    const inputs: string[] = [];
    if (typeof raw === 'string') inputs.push(raw);
    else if (Array.isArray(raw)) {
      if (raw.length > 0 && typeof raw[0] === 'number') inputs.push(JSON.stringify(raw));
      else for (const x of raw) inputs.push(typeof x === 'string' ? x : JSON.stringify(x));
    }
    const dims = clampInt(body.dimensions, 1, MAX_DIMENSIONS, DEFAULT_DIMENSIONS);
    const base64 = body.encoding_format === 'base64';
    // The JSON written in parts (each vector by embeddingArrayJson), in the order and shape
    // JSON.stringify gave { object, data: [{ object, index, embedding }], model, usage }.
    const parts: Buffer[] = [Buffer.from('{"object":"list","data":[')];
    inputs.forEach((text, index) => {
      parts.push(Buffer.from(`${index > 0 ? ',' : ''}{"object":"embedding","index":${index},"embedding":`));
      parts.push(this.vectorJson(text, dims, base64));
      parts.push(Buffer.from('}'));
    });
    const tokens = estimateInputTokens('embeddings', body);
    parts.push(
      Buffer.from(
        `],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`,
      ),
    );
    return {
      body: Buffer.concat(parts),
      usage: { inputTokens: tokens, outputTokens: 0, images: 0 },
    };
  }

  private images(body: Record<string, unknown>, created: number): { json: unknown; usage: Usage } {
    const n = clampInt(body.n, 1, 10, 1);
    const asUrl = body.response_format === 'url';
    const prompt = typeof body.prompt === 'string' ? body.prompt : '';
    const data = Array.from({ length: n }, () =>
      asUrl
        ? { url: `data:image/png;base64,${MOCK_PNG_BASE64}`, revised_prompt: prompt }
        : { b64_json: MOCK_PNG_BASE64, revised_prompt: prompt },
    );
    const input = estimateInputTokens('images', body);
    return {
      json: {
        created,
        data,
        usage: {
          input_tokens: input,
          output_tokens: 0,
          total_tokens: input,
          input_tokens_details: { text_tokens: input, image_tokens: 0 },
        },
      },
      usage: { inputTokens: input, outputTokens: 0, images: n },
    };
  }

  private stream(
    plan: Plan,
    signal: AbortSignal,
    headers: Record<string, string>,
    outputTokens: number | undefined,
  ): UpstreamResponse {
    const delay = this.cfg.tokenDelay;
    let produced = 0;
    let resolveUsage!: (u: Usage) => void;
    const usage = new Promise<Usage>((r) => {
      resolveUsage = r;
    });
    // `stopNow` ends the stream early: the request's signal aborted, or the consumer stopped reading.
    // A flag, not an AbortController: aborting one builds a DOMException (with a stack trace) and
    // dispatches an event, on every stream that ends (the consumer closes it when it has read it
    // all). A controller is made only to cut short a token delay's sleep.
    let halted = false;
    let sleeper: AbortController | undefined;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', stopNow);
      resolveUsage({ inputTokens: plan.input, outputTokens: outputTokens ?? produced, images: 0 });
    };
    // A consumer that never reads still gets its usage once the request is aborted.
    const stopNow = (): void => {
      if (halted) return;
      halted = true;
      settle();
      sleeper?.abort();
    };
    if (signal.aborted) stopNow();
    else signal.addEventListener('abort', stopNow, { once: true });

    // The pieces of the chunk `run` yielded last (read by the event view as it reads that chunk).
    let yielded: Piece[] = [];
    async function* run(): AsyncGenerator<Uint8Array> {
      let pending = '';
      let held: Piece[] = [];
      try {
        for (const piece of pieces(plan)) {
          if (halted) return;
          if (piece.token && delay > 0) {
            if (pending) {
              yielded = held;
              held = [];
              yield enc.encode(pending);
              pending = '';
              if (halted) return;
            }
            sleeper ??= new AbortController();
            try {
              await sleep(delay, undefined, { signal: sleeper.signal });
            } catch {
              return;
            }
          }
          if (piece.token) produced++;
          pending += piece.sse;
          held.push(piece);
        }
        if (pending && !halted) {
          yielded = held;
          yield enc.encode(pending);
        }
      } finally {
        settle();
      }
    }
    const body = closeable(run(), stopNow);
    // The event view classifies the same bytes with the same classifiers as a relayed stream, from
    // the pieces they were written from (no SSE or JSON parse); the byte view stays as cheap as
    // before (the gateway reads one or the other).
    const format = streamFormatOf(plan.endpoint);
    const events: AsyncIterable<StreamEvent> | undefined = format
      ? {
          [Symbol.asyncIterator]: () =>
            dualView(
              closeable(
                mockBatches(format, body, () => yielded),
                stopNow,
              ),
            ).events[Symbol.asyncIterator](),
        }
      : undefined;
    return { status: 200, headers, rateHeaders: {}, body, usage, ...(events ? { events } : {}) };
  }
}

/** `usage` with its output tokens replaced by `outputTokens`, when given. */
function reported(usage: Usage, outputTokens: number | undefined): Usage {
  return outputTokens === undefined ? usage : { ...usage, outputTokens };
}

/** A JSON answer's headers: its type and the upstream's request id (Anthropic names it `request-id`). */
function jsonHeaders(endpoint: Endpoint, requestId: string): Record<string, string> {
  return endpoint === 'messages'
    ? { 'content-type': 'application/json', 'request-id': requestId }
    : { 'content-type': 'application/json', 'x-request-id': requestId };
}

function done(
  status: number,
  headers: Record<string, string>,
  json: unknown,
  usage: Usage,
): UpstreamResponse {
  return doneText(status, headers, JSON.stringify(json), usage);
}

function doneText(
  status: number,
  headers: Record<string, string>,
  json: string,
  usage: Usage,
): UpstreamResponse {
  return { status, headers, rateHeaders: {}, body: Buffer.from(json, 'utf8'), usage: Promise.resolve(usage) };
}

/** A JSON number as JSON.stringify writes it. */
function jnum(x: number): string {
  return Number.isFinite(x) ? `${x}` : 'null';
}

/**
 * A whole chat answer of the mock, with the text all its choices carry and the bytes it was written
 * into: output screening reads the text there instead of decoding and parsing the bytes back
 * (`mockChatAnswerText`). Fields on the answer itself: a WeakMap entry per answer cost more than the
 * parse it saves.
 */
interface MockChatAnswer extends UpstreamResponse {
  readonly mockChatText: string;
  readonly mockChatBytes: Uint8Array;
}

/**
 * The text each choice's `message.content` holds, when `res` is a whole chat answer of the mock and
 * its body is still exactly the bytes the mock wrote (undefined for anything else: another
 * upstream's answer, a replaced or re-encoded body, a stream).
 */
export function mockChatAnswerText(res: UpstreamResponse): string | undefined {
  const m = res as Partial<MockChatAnswer>;
  return m.mockChatText !== undefined && m.mockChatBytes === res.body ? m.mockChatText : undefined;
}

/**
 * The non-streamed chat answer, written directly: byte for byte `JSON.stringify(whole(plan))` (a test
 * compares them), without building the object first (the mock answers most calls of a simulation).
 */
export function chatCompletionJson(
  plan: {
    id: string;
    created: number;
    model: string;
    words: string[];
    choices: number;
    truncated: boolean;
    input: number;
    joined?: boolean;
  },
  answer = plan.words.join(plan.joined ? '' : ' '),
): string {
  const text = JSON.stringify(answer);
  const finish = plan.truncated ? '"length"' : '"stop"';
  let choices = '';
  for (let index = 0; index < plan.choices; index++)
    choices += `${index > 0 ? ',' : ''}{"index":${index},"message":{"role":"assistant","content":${text},"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":${finish}}`;
  const input = plan.input;
  const output = plan.words.length * plan.choices;
  return (
    `{"id":${JSON.stringify(plan.id)},"object":"chat.completion","created":${jnum(plan.created)},"model":${JSON.stringify(plan.model)},` +
    `"choices":[${choices}],"usage":{"prompt_tokens":${jnum(input)},"completion_tokens":${jnum(output)},"total_tokens":${jnum(input + output)},` +
    `"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,` +
    `"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_sluice_mock"}`
  );
}

/** The reference `chatCompletionJson` must agree with (tests). */
export function chatCompletionReference(plan: Parameters<typeof chatCompletionJson>[0]): string {
  return JSON.stringify(whole({ ...plan, endpoint: 'chat', body: {} }));
}

function defaultModel(endpoint: Endpoint): string {
  if (endpoint === 'embeddings') return 'demo-embed';
  if (endpoint === 'images') return 'demo-image';
  if (endpoint === 'messages') return 'claude-demo';
  return 'demo-model';
}

/** The cap on output tokens the request sets, per endpoint's parameter name. */
function maxTokens(endpoint: Endpoint, body: Record<string, unknown>): number | undefined {
  const v =
    endpoint === 'responses'
      ? body.max_output_tokens
      : endpoint === 'chat'
        ? (body.max_completion_tokens ?? body.max_tokens)
        : body.max_tokens;
  const n = num(v);
  return n === undefined ? undefined : Math.floor(n);
}

function openaiUsage(input: number, output: number): Record<string, unknown> {
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function responsesUsage(input: number, output: number): Record<string, unknown> {
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + output,
  };
}

function anthropicUsage(input: number, output: number): Record<string, unknown> {
  return {
    input_tokens: input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: output,
  };
}

/** The Responses API object, in progress (no output yet) or finished. */
function responseObject(
  plan: Plan,
  status: 'in_progress' | 'completed' | 'incomplete',
): Record<string, unknown> {
  const text = textOf(plan);
  const finished = status !== 'in_progress';
  const b = plan.body;
  return {
    id: plan.id,
    object: 'response',
    created_at: plan.created,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: typeof b.instructions === 'string' ? b.instructions : null,
    max_output_tokens: num(b.max_output_tokens) ?? null,
    model: plan.model,
    output: finished
      ? [
          {
            type: 'message',
            id: `msg_${plan.id}`,
            status: status === 'completed' ? 'completed' : 'incomplete',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: [] }],
          },
        ]
      : [],
    parallel_tool_calls: true,
    previous_response_id: typeof b.previous_response_id === 'string' ? b.previous_response_id : null,
    store: false,
    temperature: num(b.temperature) ?? 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: num(b.top_p) ?? 1,
    truncation: 'disabled',
    usage: finished ? responsesUsage(plan.input, plan.words.length) : null,
    metadata: {},
  };
}

/** The non-streaming answer, per endpoint. */
function whole(plan: Plan): unknown {
  if (plan.tool) return toolAnswerWhole(plan.tool);
  const text = textOf(plan);
  const output = plan.words.length * plan.choices;
  switch (plan.endpoint) {
    case 'chat':
      return {
        id: plan.id,
        object: 'chat.completion',
        created: plan.created,
        model: plan.model,
        choices: Array.from({ length: plan.choices }, (_, index) => ({
          index,
          message: { role: 'assistant', content: text, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: plan.truncated ? 'length' : 'stop',
        })),
        usage: openaiUsage(plan.input, output),
        service_tier: 'default',
        system_fingerprint: 'fp_sluice_mock',
      };
    case 'completions':
      return {
        id: plan.id,
        object: 'text_completion',
        created: plan.created,
        model: plan.model,
        choices: Array.from({ length: plan.choices }, (_, index) => ({
          text,
          index,
          logprobs: null,
          finish_reason: plan.truncated ? 'length' : 'stop',
        })),
        usage: { prompt_tokens: plan.input, completion_tokens: output, total_tokens: plan.input + output },
        system_fingerprint: 'fp_sluice_mock',
      };
    case 'responses':
      return responseObject(plan, plan.truncated ? 'incomplete' : 'completed');
    default:
      return {
        id: plan.id,
        type: 'message',
        role: 'assistant',
        model: plan.model,
        content: [{ type: 'text', text }],
        stop_reason: plan.truncated ? 'max_tokens' : 'end_turn',
        stop_sequence: null,
        usage: anthropicUsage(plan.input, output),
      };
  }
}

/** Each word as it is streamed: a leading space on all but the first (token pieces as they are). */
/**
 * The event batches of a mock stream, one per chunk of `bytes` (as `sseBatches` makes them from a
 * relayed stream): each chunk is split into its pieces' bytes and each piece classified with the
 * object its data was written from (`Piece.data`), or its data line parsed where it has none. The
 * result equals `sseBatches(format, bytes)` event for event (test/providers/mock-stream-events.test.ts).
 * `piecesOf()` gives the pieces of the chunk just read. Returning early ends `bytes`.
 */
export async function* mockBatches(
  format: StreamFormat,
  bytes: AsyncIterable<Uint8Array>,
  piecesOf: () => readonly Piece[],
): AsyncGenerator<StreamEvent[]> {
  const it = bytes[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      yield piecesToEvents(format, r.value, piecesOf());
    }
  } finally {
    await it.return?.();
  }
}

function piecesToEvents(format: StreamFormat, chunk: Uint8Array, list: readonly Piece[]): StreamEvent[] {
  const out: StreamEvent[] = new Array(list.length);
  // When the chunk has as many bytes as its pieces have UTF-16 units, every unit was ASCII (any
  // other encodes to two or more bytes): each piece's byte length is then its length.
  let units = 0;
  for (let i = 0; i < list.length; i++) units += list[i]!.sse.length;
  const ascii = units === chunk.byteLength;
  let off = 0;
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!;
    const end = off + (ascii ? p.sse.length : Buffer.byteLength(p.sse, 'utf8'));
    out[i] = classifyEvent(format, sseEventOf(p.sse), chunk.subarray(off, end), p.data);
    off = end;
  }
  return out;
}

/**
 * The event an SSE parser dispatches for one mock piece: `[event: NAME\n]data: DATA\n\n` (the mock
 * writes one data line, JSON has no raw newline, and no `id:`), named `message` when unnamed.
 */
function sseEventOf(text: string): SseEvent {
  let event = 'message';
  let at = 0;
  if (text.startsWith('event: ')) {
    const nl = text.indexOf('\n');
    event = text.slice(7, nl);
    at = nl + 1;
  }
  return { event, data: text.slice(at + 6, text.length - 2) };
}

function deltas(plan: Plan): string[] {
  return plan.joined ? plan.words : plan.words.map((w, i) => (i === 0 ? w : ` ${w}`));
}

function textOf(plan: Plan): string {
  return plan.words.join(plan.joined ? '' : ' ');
}

/** The SSE pieces of a streamed answer, in the order the real API sends them. */
function pieces(plan: Plan): Piece[] {
  const out: Piece[] = [];
  const push = (p: Piece): void => {
    out.push(p);
  };
  if (plan.tool) return toolAnswerPieces(plan.tool);
  switch (plan.endpoint) {
    case 'chat':
      chatPieces(plan, push);
      break;
    case 'completions':
      completionPieces(plan, push);
      break;
    case 'responses':
      responsesPieces(plan, push);
      break;
    default:
      messagesPieces(plan, push);
  }
  return out;
}

function includeUsage(body: Record<string, unknown>): boolean {
  const so = body.stream_options;
  return typeof so === 'object' && so !== null && (so as Record<string, unknown>).include_usage === true;
}

/** `"stop"` / `null` as JSON, without a stringify call per chunk. */
function finishJson(finish: string | null): string {
  return finish === null ? 'null' : `"${finish}"`;
}

/**
 * Chat chunks share everything but the choice: the head is serialised once per stream and each
 * chunk only stringifies its small delta (a stream is dozens of chunks; this halves the mock's cost).
 */
function chatPieces(plan: Plan, emit: (p: Piece) => void): void {
  const withUsage = includeUsage(plan.body);
  const head = {
    id: plan.id,
    object: 'chat.completion.chunk',
    created: plan.created,
    model: plan.model,
    service_tier: 'default',
    system_fingerprint: 'fp_sluice_mock',
    ...(withUsage ? { usage: null } : {}),
  };
  const prefix = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"index":`;
  // The text, and the object it is the JSON of (`Piece.data`), in the same key order. Written out
  // as literals: a spread of `head` per chunk made objects V8 reads slowly, and cost more than the
  // parse it saves.
  const { id, created, model } = plan;
  const chunk = (
    index: number,
    delta: Record<string, unknown>,
    deltaJson: string,
    finish: string | null,
  ): Piece => {
    const choices = [{ index, delta, logprobs: null, finish_reason: finish }];
    return {
      sse: `${prefix}${index},"delta":${deltaJson},"logprobs":null,"finish_reason":${finishJson(finish)}}]}\n\n`,
      data: withUsage
        ? {
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            service_tier: 'default',
            system_fingerprint: 'fp_sluice_mock',
            usage: null,
            choices,
          }
        : {
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            service_tier: 'default',
            system_fingerprint: 'fp_sluice_mock',
            choices,
          },
    };
  };
  const parts = deltas(plan);
  for (let index = 0; index < plan.choices; index++) {
    emit(
      chunk(
        index,
        { role: 'assistant', content: '', refusal: null },
        '{"role":"assistant","content":"","refusal":null}',
        null,
      ),
    );
    for (const content of parts) {
      const p = chunk(index, { content }, `{"content":${JSON.stringify(content)}}`, null);
      p.token = true;
      emit(p);
    }
    emit(chunk(index, {}, '{}', plan.truncated ? 'length' : 'stop'));
  }
  if (withUsage) {
    const output = plan.words.length * plan.choices;
    emit({ sse: sse({ ...head, choices: [], usage: openaiUsage(plan.input, output) }) });
  }
  emit({ sse: sse('[DONE]') });
}

function completionPieces(plan: Plan, emit: (p: Piece) => void): void {
  const withUsage = includeUsage(plan.body);
  const head = { id: plan.id, object: 'text_completion', created: plan.created, model: plan.model };
  const prefix = `data: ${JSON.stringify(head).slice(0, -1)},"choices":[{"text":`;
  const suffix = `,"system_fingerprint":"fp_sluice_mock"${withUsage ? ',"usage":null' : ''}}\n\n`;
  // The text, and the object it is the JSON of (`Piece.data`), in the same key order (literals, as
  // in chatPieces).
  const { id, created, model } = plan;
  const chunk = (index: number, text: string, finish: string | null): Piece => {
    const choices = [{ text, index, logprobs: null, finish_reason: finish }];
    return {
      sse: `${prefix}${JSON.stringify(text)},"index":${index},"logprobs":null,"finish_reason":${finishJson(finish)}}]${suffix}`,
      data: withUsage
        ? {
            id,
            object: 'text_completion',
            created,
            model,
            choices,
            system_fingerprint: 'fp_sluice_mock',
            usage: null,
          }
        : { id, object: 'text_completion', created, model, choices, system_fingerprint: 'fp_sluice_mock' },
    };
  };
  const parts = deltas(plan);
  for (let index = 0; index < plan.choices; index++) {
    for (const text of parts) {
      const p = chunk(index, text, null);
      p.token = true;
      emit(p);
    }
    emit(chunk(index, '', plan.truncated ? 'length' : 'stop'));
  }
  if (withUsage) {
    const output = plan.words.length * plan.choices;
    emit({
      sse: sse({
        ...head,
        choices: [],
        system_fingerprint: 'fp_sluice_mock',
        usage: { prompt_tokens: plan.input, completion_tokens: output, total_tokens: plan.input + output },
      }),
    });
  }
  emit({ sse: sse('[DONE]') });
}

function responsesPieces(plan: Plan, emit: (p: Piece) => void): void {
  let seq = 0;
  const ev = (type: string, fields: Record<string, unknown>) =>
    sse({ type, ...fields, sequence_number: seq++ }, type);
  const itemId = `msg_${plan.id}`;
  const text = textOf(plan);
  const final = responseObject(plan, plan.truncated ? 'incomplete' : 'completed');
  const part = { type: 'output_text', text: '', annotations: [] };
  emit({ sse: ev('response.created', { response: responseObject(plan, 'in_progress') }) });
  emit({ sse: ev('response.in_progress', { response: responseObject(plan, 'in_progress') }) });
  emit({
    sse: ev('response.output_item.added', {
      output_index: 0,
      item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
    }),
  });
  emit({
    sse: ev('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part }),
  });
  for (const delta of deltas(plan)) {
    const data = {
      type: 'response.output_text.delta',
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      delta,
      logprobs: [],
      sequence_number: seq++,
    };
    emit({ sse: sse(data, data.type), token: true, data });
  }
  emit({
    sse: ev('response.output_text.done', {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      text,
      logprobs: [],
    }),
  });
  emit({
    sse: ev('response.content_part.done', {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      part: { ...part, text },
    }),
  });
  emit({ sse: ev('response.output_item.done', { output_index: 0, item: (final.output as unknown[])[0] }) });
  emit({ sse: ev(plan.truncated ? 'response.incomplete' : 'response.completed', { response: final }) });
}

/** A piece written from an object made for it alone, which the event view reads instead of parsing it back. */
function objectPiece(data: Record<string, unknown>, event: string): Piece {
  return { sse: sse(data, event), data };
}

function messagesPieces(plan: Plan, emit: (p: Piece) => void): void {
  const start = {
    type: 'message_start',
    message: {
      id: plan.id,
      type: 'message',
      role: 'assistant',
      model: plan.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: anthropicUsage(plan.input, 1),
    },
  };
  emit(objectPiece(start, 'message_start'));
  emit(
    objectPiece(
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      'content_block_start',
    ),
  );
  emit(objectPiece({ type: 'ping' }, 'ping'));
  for (const text of deltas(plan)) {
    emit({
      sse: `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(text)}}}\n\n`,
      token: true,
      data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
    });
  }
  emit(objectPiece({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
  emit(
    objectPiece(
      {
        type: 'message_delta',
        delta: { stop_reason: plan.truncated ? 'max_tokens' : 'end_turn', stop_sequence: null },
        usage: { output_tokens: plan.words.length },
      },
      'message_delta',
    ),
  );
  emit(objectPiece({ type: 'message_stop' }, 'message_stop'));
}
