/**
 * Renderers per wire format (OpenAI chat, completions, Responses; Anthropic Messages): re-emit a
 * text delta with new text, end a stream well-formed after a cut, and rewrite the text of a whole
 * JSON answer. The toolkit of the `screen-output` stage (see stream-transform.ts).
 *
 * A cut ends the stream the way the upstream itself would end a filtered answer, so the official
 * SDKs parse it without throwing:
 *   chat / completions: a `finish_reason: "content_filter"` chunk per open choice, then `data: [DONE]`;
 *   responses:          `response.incomplete` with `incomplete_details.reason: "content_filter"`;
 *   messages:           `content_block_stop` for open blocks, `message_delta` with
 *                       `stop_reason: "refusal"`, then `message_stop` (an `error` event before any
 *                       `message_start`, where there is no message to end).
 */
import type { StreamEvent, StreamFormat } from '../core/ports.js';

export type TextEvent = Extract<StreamEvent, { kind: 'text' }>;

const enc = new TextEncoder();

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function frame(data: unknown, event?: string): Uint8Array {
  const json = JSON.stringify(data);
  return enc.encode(event ? `event: ${event}\ndata: ${json}\n\n` : `data: ${json}\n\n`);
}

/**
 * The SSE bytes of `template` (a text delta) carrying `text` instead: same ids, model, indexes and
 * every other field. Never mutates the template.
 */
export function renderText(format: StreamFormat, template: TextEvent, text: string): Uint8Array {
  const d = template.data;
  const named = template.sse !== 'message' ? template.sse : undefined;
  switch (format) {
    case 'chat':
    case 'completions': {
      const choices = Array.isArray(d.choices) ? d.choices : [];
      const c0 = isObject(choices[0]) ? choices[0] : {};
      const c =
        format === 'chat'
          ? { ...c0, delta: { ...(isObject(c0.delta) ? c0.delta : {}), content: text } }
          : { ...c0, text };
      return frame({ ...d, choices: [c, ...choices.slice(1)] }, named);
    }
    case 'responses':
      return frame({ ...d, delta: text }, named ?? 'response.output_text.delta');
    default:
      return frame(
        { ...d, delta: { ...(isObject(d.delta) ? d.delta : {}), text } },
        named ?? 'content_block_delta',
      );
  }
}

/** What a cut needs to know about the stream so far; kept by `trackStream`. */
export interface StreamState {
  /** The last event with a JSON object `data` (ids, model, created). */
  head?: Record<string, unknown>;
  /** Choices (chat, completions) that started and have not finished. */
  openChoices: Set<number>;
  /** Responses: the response object from `response.created` / `in_progress`. */
  response?: Record<string, unknown>;
  /** Responses: the next sequence number. */
  seq: number;
  /** Messages: `message_start` was seen. */
  messageStarted: boolean;
  /** Messages: content blocks started and not stopped. */
  openBlocks: Set<number>;
  /** Messages: output tokens reported so far (message_start / message_delta). */
  outputTokens: number;
}

export function newStreamState(): StreamState {
  return { openChoices: new Set(), seq: 0, messageStarted: false, openBlocks: new Set(), outputTokens: 0 };
}

/** Updates `state` with one event that went out to the caller. */
export function trackStream(format: StreamFormat, state: StreamState, ev: StreamEvent): void {
  const d = ev.data;
  if (!d) return;
  state.head = d;
  if (format === 'chat' || format === 'completions') {
    const choices = d.choices;
    if (!Array.isArray(choices)) return;
    for (const c of choices) {
      if (!isObject(c) || typeof c.index !== 'number') continue;
      if (typeof c.finish_reason === 'string') state.openChoices.delete(c.index);
      else state.openChoices.add(c.index);
    }
    return;
  }
  if (format === 'responses') {
    if (typeof d.sequence_number === 'number') state.seq = d.sequence_number + 1;
    if ((d.type === 'response.created' || d.type === 'response.in_progress') && isObject(d.response))
      state.response = d.response;
    return;
  }
  switch (d.type) {
    case 'message_start': {
      state.messageStarted = true;
      const m = isObject(d.message) ? d.message : {};
      const u = isObject(m.usage) ? m.usage : {};
      if (typeof u.output_tokens === 'number') state.outputTokens = u.output_tokens;
      break;
    }
    case 'content_block_start':
      if (typeof d.index === 'number') state.openBlocks.add(d.index);
      break;
    case 'content_block_stop':
      if (typeof d.index === 'number') state.openBlocks.delete(d.index);
      break;
    case 'message_delta': {
      const u = isObject(d.usage) ? d.usage : {};
      if (typeof u.output_tokens === 'number') state.outputTokens = u.output_tokens;
      break;
    }
    default:
      break;
  }
}

/**
 * The bytes that end a `format` stream well-formed after a cut, given what went out so far.
 * `reason` is for the caller (Anthropic error message) and logs; the OpenAI formats carry the
 * standard `content_filter` reason.
 */
export function renderCut(
  format: StreamFormat,
  reason: string,
  state: StreamState = newStreamState(),
): Uint8Array {
  const h = state.head ?? {};
  const parts: Uint8Array[] = [];
  if (format === 'chat' || format === 'completions') {
    const choices = state.openChoices.size > 0 ? [...state.openChoices].sort((a, b) => a - b) : [0];
    for (const index of choices) {
      const choice =
        format === 'chat'
          ? { index, delta: {}, logprobs: null, finish_reason: 'content_filter' }
          : { text: '', index, logprobs: null, finish_reason: 'content_filter' };
      const chunk: Record<string, unknown> = {
        id: h.id ?? 'sluice-cut',
        object: format === 'chat' ? 'chat.completion.chunk' : 'text_completion',
        created: h.created ?? 0,
        model: h.model ?? '',
        choices: [choice],
      };
      parts.push(frame(chunk));
    }
    parts.push(enc.encode('data: [DONE]\n\n'));
  } else if (format === 'responses') {
    const base = state.response ?? { id: 'sluice-cut', object: 'response', output: [] };
    const response = {
      ...base,
      status: 'incomplete',
      incomplete_details: { reason: 'content_filter' },
    };
    parts.push(
      frame({ type: 'response.incomplete', response, sequence_number: state.seq }, 'response.incomplete'),
    );
  } else if (state.messageStarted) {
    for (const index of [...state.openBlocks].sort((a, b) => a - b)) {
      parts.push(frame({ type: 'content_block_stop', index }, 'content_block_stop'));
    }
    parts.push(
      frame(
        {
          type: 'message_delta',
          delta: { stop_reason: 'refusal', stop_sequence: null },
          usage: { output_tokens: state.outputTokens },
        },
        'message_delta',
      ),
    );
    parts.push(frame({ type: 'message_stop' }, 'message_stop'));
  } else {
    parts.push(
      frame(
        {
          type: 'error',
          error: { type: 'invalid_request_error', message: `Output blocked by Sluice: ${reason}` },
        },
        'error',
      ),
    );
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Rewrites every generated text of a whole (non-streaming) JSON answer with `rewrite`: chat
 * `choices[].message.content`, completions `choices[].text`, responses `output[].content[]` of type
 * `output_text` (and `output_text` convenience field), messages `content[]` of type `text`.
 * Returns the original bytes when nothing changed, else the re-serialised answer.
 */
export function rewriteJsonText(
  format: StreamFormat,
  body: Uint8Array,
  rewrite: (text: string) => string,
): Uint8Array {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return body;
  }
  if (!isObject(json)) return body;
  let changed = false;
  const apply = (obj: Record<string, unknown>, key: string): void => {
    const v = obj[key];
    if (typeof v !== 'string') return;
    const out = rewrite(v);
    if (out !== v) {
      obj[key] = out;
      changed = true;
    }
  };
  const each = (arr: unknown, fn: (o: Record<string, unknown>) => void): void => {
    if (Array.isArray(arr)) for (const x of arr) if (isObject(x)) fn(x);
  };
  switch (format) {
    case 'chat':
      each(json.choices, (c) => {
        if (isObject(c.message)) apply(c.message, 'content');
      });
      break;
    case 'completions':
      each(json.choices, (c) => apply(c, 'text'));
      break;
    case 'responses':
      each(json.output, (item) =>
        each(item.content, (part) => {
          if (part.type === 'output_text') apply(part, 'text');
        }),
      );
      apply(json, 'output_text');
      break;
    default:
      each(json.content, (block) => {
        if (block.type === 'text') apply(block, 'text');
      });
  }
  return changed ? Buffer.from(JSON.stringify(json), 'utf8') : body;
}
