/**
 * Provider-neutral stream events: one classifier per SSE dialect (OpenAI chat, completions,
 * Responses; Anthropic Messages) turning a parsed SSE event into a `StreamEvent` that keeps its
 * exact bytes, and the plumbing that exposes one stream both as events and as bytes.
 *
 * The providers' stream observers parse each event's JSON once (for usage) and hand the parsed
 * object here, so classification costs no second parse.
 */
import type { StreamEvent, StreamFormat } from '../core/ports.js';
import { closeable } from './closeable-stream.js';
import type { SseEvent } from './sse.js';
import { SseParser } from './sse.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;
}

/** The event's `data` as a JSON object, or undefined (`[DONE]`, pings without data, non-JSON). */
export function parseData(ev: SseEvent): Record<string, unknown> | undefined {
  const d = ev.data;
  if (d.length === 0 || d.charCodeAt(0) !== 0x7b /* '{' */) return undefined;
  try {
    const v: unknown = JSON.parse(d);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function errorMessage(obj: Record<string, unknown>): string {
  const e = obj.error;
  if (isObject(e) && typeof e.message === 'string') return e.message;
  if (typeof obj.message === 'string') return obj.message;
  return 'stream error';
}

/** Chat and completions chunks. */
function classifyChoices(
  format: 'chat' | 'completions',
  ev: SseEvent,
  raw: Uint8Array,
  obj: Record<string, unknown>,
): StreamEvent {
  const sse = ev.event;
  if (obj.error !== undefined && obj.choices === undefined) {
    return { kind: 'error', raw, sse, data: obj, message: errorMessage(obj) };
  }
  const choices = obj.choices;
  const c = Array.isArray(choices) && isObject(choices[0]) ? choices[0] : undefined;
  if (!c) {
    if (isObject(obj.usage)) {
      const u = obj.usage;
      const usage: { inputTokens?: number; outputTokens?: number } = {};
      const i = u.prompt_tokens ?? u.input_tokens;
      const o = u.completion_tokens ?? u.output_tokens;
      if (typeof i === 'number') usage.inputTokens = i;
      if (typeof o === 'number') usage.outputTokens = o;
      return { kind: 'usage', raw, sse, data: obj, usage };
    }
    return { kind: 'other', raw, sse, data: obj };
  }
  const choice = int(c.index);
  if (format === 'completions') {
    if (typeof c.text === 'string' && c.text.length > 0)
      return { kind: 'text', raw, sse, data: obj, text: c.text, choice, contentIndex: 0 };
  } else if (isObject(c.delta)) {
    const d = c.delta;
    if (typeof d.content === 'string' && d.content.length > 0)
      return { kind: 'text', raw, sse, data: obj, text: d.content, choice, contentIndex: 0 };
    if (Array.isArray(d.tool_calls) && isObject(d.tool_calls[0])) {
      const t = d.tool_calls[0];
      const fn = isObject(t.function) ? t.function : {};
      const out: StreamEvent = {
        kind: 'tool-call',
        raw,
        sse,
        data: obj,
        choice,
        index: int(t.index),
        arguments: typeof fn.arguments === 'string' ? fn.arguments : '',
      };
      if (typeof t.id === 'string') out.id = t.id;
      if (typeof fn.name === 'string') out.name = fn.name;
      return out;
    }
  }
  if (typeof c.finish_reason === 'string')
    return { kind: 'finish', raw, sse, data: obj, choice, reason: c.finish_reason };
  return { kind: 'other', raw, sse, data: obj };
}

/** Responses API events (named by `type`). */
function classifyResponses(ev: SseEvent, raw: Uint8Array, obj: Record<string, unknown>): StreamEvent {
  const sse = ev.event;
  const type = typeof obj.type === 'string' ? obj.type : ev.event;
  switch (type) {
    case 'response.output_text.delta':
      if (typeof obj.delta === 'string')
        return {
          kind: 'text',
          raw,
          sse,
          data: obj,
          text: obj.delta,
          choice: int(obj.output_index),
          contentIndex: int(obj.content_index),
        };
      break;
    case 'response.function_call_arguments.delta': {
      const out: StreamEvent = {
        kind: 'tool-call',
        raw,
        sse,
        data: obj,
        choice: int(obj.output_index),
        index: int(obj.output_index),
        arguments: typeof obj.delta === 'string' ? obj.delta : '',
      };
      if (typeof obj.item_id === 'string') out.id = obj.item_id;
      return out;
    }
    case 'response.output_item.added': {
      const item = obj.item;
      if (isObject(item) && item.type === 'function_call') {
        const out: StreamEvent = {
          kind: 'tool-call',
          raw,
          sse,
          data: obj,
          choice: int(obj.output_index),
          index: int(obj.output_index),
          arguments: '',
        };
        if (typeof item.id === 'string') out.id = item.id;
        if (typeof item.name === 'string') out.name = item.name;
        return out;
      }
      break;
    }
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed': {
      const r = isObject(obj.response) ? obj.response : {};
      const details = isObject(r.incomplete_details) ? r.incomplete_details : undefined;
      const reason =
        type === 'response.completed'
          ? 'stop'
          : type === 'response.failed'
            ? 'failed'
            : typeof details?.reason === 'string'
              ? details.reason
              : 'incomplete';
      return { kind: 'finish', raw, sse, data: obj, choice: 0, reason };
    }
    case 'error':
      return { kind: 'error', raw, sse, data: obj, message: errorMessage(obj) };
    default:
      break;
  }
  return { kind: 'other', raw, sse, data: obj };
}

/** Anthropic Messages events (named by `event:` and `type`). */
function classifyMessages(ev: SseEvent, raw: Uint8Array, obj: Record<string, unknown>): StreamEvent {
  const sse = ev.event;
  const type = typeof obj.type === 'string' ? obj.type : ev.event;
  if (type === 'content_block_delta' && isObject(obj.delta)) {
    const d = obj.delta;
    const index = int(obj.index);
    if (d.type === 'text_delta' && typeof d.text === 'string')
      return { kind: 'text', raw, sse, data: obj, text: d.text, choice: 0, contentIndex: index };
    if (d.type === 'input_json_delta' && typeof d.partial_json === 'string')
      return { kind: 'tool-call', raw, sse, data: obj, choice: 0, index, arguments: d.partial_json };
  } else if (type === 'content_block_start' && isObject(obj.content_block)) {
    const b = obj.content_block;
    if (b.type === 'tool_use' || b.type === 'server_tool_use') {
      const out: StreamEvent = {
        kind: 'tool-call',
        raw,
        sse,
        data: obj,
        choice: 0,
        index: int(obj.index),
        arguments: '',
      };
      if (typeof b.id === 'string') out.id = b.id;
      if (typeof b.name === 'string') out.name = b.name;
      return out;
    }
  } else if (type === 'message_delta' && isObject(obj.delta) && typeof obj.delta.stop_reason === 'string') {
    return { kind: 'finish', raw, sse, data: obj, choice: 0, reason: obj.delta.stop_reason };
  } else if (type === 'error') {
    return { kind: 'error', raw, sse, data: obj, message: errorMessage(obj) };
  }
  return { kind: 'other', raw, sse, data: obj };
}

/**
 * Classifies one SSE event of a `format` stream. `obj` is its parsed data when the caller already
 * parsed it (pass `null` to say "parsed, not a JSON object"; leave undefined to have it parsed here).
 */
export function classifyEvent(
  format: StreamFormat,
  ev: SseEvent | undefined,
  raw: Uint8Array,
  obj?: Record<string, unknown> | null,
): StreamEvent {
  if (!ev) return { kind: 'other', raw, sse: '' };
  const data = obj === undefined ? parseData(ev) : (obj ?? undefined);
  if (!data) return { kind: 'other', raw, sse: ev.event };
  switch (format) {
    case 'chat':
    case 'completions':
      return classifyChoices(format, ev, raw, data);
    case 'responses':
      return classifyResponses(ev, raw, data);
    default:
      return classifyMessages(ev, raw, data);
  }
}

/** The stream format an endpoint's SSE answers speak, or undefined for endpoints that never stream. */
export function streamFormatOf(endpoint: string): StreamFormat | undefined {
  return endpoint === 'chat' ||
    endpoint === 'completions' ||
    endpoint === 'responses' ||
    endpoint === 'messages'
    ? endpoint
    : undefined;
}

function concatRaw(batch: StreamEvent[]): Uint8Array {
  if (batch.length === 1) return batch[0]!.raw;
  return Buffer.concat(batch.map((e) => e.raw));
}

/**
 * Exposes one source of event batches (one batch per upstream chunk) both as events and as bytes.
 * `body` yields each batch's raw bytes concatenated (one write per upstream chunk, as before);
 * `events` yields the events one by one. Both drive the same source: consume one of them. Ending
 * either early (`return`) ends the source, even before the first `next()`.
 */
export function dualView(source: AsyncIterable<StreamEvent[]>): {
  body: AsyncIterable<Uint8Array>;
  events: AsyncIterable<StreamEvent>;
} {
  const it = source[Symbol.asyncIterator]();
  const stop = async (): Promise<IteratorResult<never>> => {
    await it.return?.();
    return { done: true, value: undefined };
  };
  const body: AsyncIterator<Uint8Array> = {
    async next() {
      for (;;) {
        const r = await it.next();
        if (r.done) return { done: true, value: undefined };
        if (r.value.length > 0) return { done: false, value: concatRaw(r.value) };
      }
    },
    return: stop,
  };
  let pending: StreamEvent[] = [];
  let at = 0;
  const events: AsyncIterator<StreamEvent> = {
    async next() {
      while (at >= pending.length) {
        const r = await it.next();
        if (r.done) return { done: true, value: undefined };
        pending = r.value;
        at = 0;
      }
      return { done: false, value: pending[at++]! };
    },
    return: stop,
  };
  return {
    body: { [Symbol.asyncIterator]: () => body },
    events: { [Symbol.asyncIterator]: () => events },
  };
}

/**
 * Parses an SSE byte stream into event batches (one per chunk), classifying each event. For
 * producers whose bytes are made, not relayed (the mock): the same classifiers, so the same path.
 * Returning early ends `src`.
 */
export async function* sseBatches(
  format: StreamFormat,
  src: AsyncIterable<Uint8Array>,
): AsyncGenerator<StreamEvent[]> {
  const parser = new SseParser();
  const it = src[Symbol.asyncIterator]();
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const blocks = parser.push(r.value);
      if (blocks.length > 0) yield blocks.map((b) => classifyEvent(format, b.event, b.raw));
    }
    const last = parser.end();
    if (last) yield [classifyEvent(format, last.event, last.raw)];
  } finally {
    await it.return?.();
  }
}

/**
 * The event view of a produced SSE byte stream (the mock's): parsed only when iterated, through the
 * same classifiers as relayed streams. `bytes` and the returned events share one stream: consume one.
 * `onClose` runs when the events consumer stops early (before the parser reaches the source).
 */
export function eventsOf(
  format: StreamFormat,
  bytes: AsyncIterable<Uint8Array>,
  onClose: () => void,
): AsyncIterable<StreamEvent> {
  return {
    [Symbol.asyncIterator]: () =>
      dualView(closeable(sseBatches(format, bytes), onClose)).events[Symbol.asyncIterator](),
  };
}
