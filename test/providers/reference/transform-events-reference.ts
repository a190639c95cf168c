/**
 * `transformEvents` as it was before `transformedBytes` (src/providers/stream-transform.ts at
 * 8b56e94), kept verbatim as the reference the new byte path is checked against
 * (`stream-transform-bytes.test.ts`). Not used by the gateway.
 */
import type { StreamEvent, StreamFormat } from '../../../src/core/ports.js';
import {
  newStreamState,
  renderCut,
  renderText,
  type StreamState,
  type TextEvent,
  trackStream,
} from '../../../src/providers/stream-render.js';
import type { EventTransform, TransformOptions } from '../../../src/providers/stream-transform.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when a chat/completions chunk also finishes its choice (its bytes cannot be dropped). */
function finishes(ev: TextEvent): boolean {
  const c = Array.isArray(ev.data.choices) ? ev.data.choices[0] : undefined;
  return isObject(c) && typeof c.finish_reason === 'string';
}

/** Events that neither end nor interrupt text: held text stays held across them. */
function passive(ev: StreamEvent): boolean {
  return ev.kind === 'other' && (ev.sse === '' || ev.sse === 'ping');
}

function textEvent(format: StreamFormat, template: TextEvent, text: string): TextEvent {
  const raw = renderText(format, template, text);
  return { ...template, raw, text };
}

/** Responses repeat the whole text in their `.done` and final events: patch it to what went out. */
function patchResponsesDone(ev: StreamEvent, emitted: Map<string, string>): StreamEvent {
  const d = ev.data;
  if (!d || typeof d.type !== 'string') return ev;
  const key = (o: unknown, c: unknown) => `${typeof o === 'number' ? o : 0}:${typeof c === 'number' ? c : 0}`;
  const textOf = (o: unknown, c: unknown): string | undefined => emitted.get(key(o, c));
  let out: Record<string, unknown> | undefined;
  const patchItem = (item: unknown, outputIndex: unknown): unknown => {
    if (!isObject(item) || !Array.isArray(item.content)) return item;
    return {
      ...item,
      content: item.content.map((part, ci) => {
        const t = textOf(outputIndex, ci);
        return isObject(part) && part.type === 'output_text' && t !== undefined ? { ...part, text: t } : part;
      }),
    };
  };
  switch (d.type) {
    case 'response.output_text.done': {
      const t = textOf(d.output_index, d.content_index);
      if (t !== undefined) out = { ...d, text: t };
      break;
    }
    case 'response.content_part.done': {
      const t = textOf(d.output_index, d.content_index);
      if (t !== undefined && isObject(d.part)) out = { ...d, part: { ...d.part, text: t } };
      break;
    }
    case 'response.output_item.done':
      out = { ...d, item: patchItem(d.item, d.output_index) };
      break;
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed':
      if (isObject(d.response) && Array.isArray(d.response.output)) {
        const output = d.response.output.map((item, oi) => patchItem(item, oi));
        out = { ...d, response: { ...d.response, output } };
        if (typeof d.response.output_text === 'string') {
          (out.response as Record<string, unknown>).output_text = [...emitted.values()].join('');
        }
      }
      break;
    default:
      break;
  }
  if (!out) return ev;
  const raw = Buffer.from(`event: ${ev.sse}\ndata: ${JSON.stringify(out)}\n\n`, 'utf8');
  return { ...ev, raw, data: out } as StreamEvent;
}

/**
 * Applies `transform` to a `format` stream. Unmodified events are yielded as the same objects (same
 * raw bytes), each as soon as it arrives. On a cut, held text is dropped, the cut ending is yielded
 * as one `finish` event, and the source is closed (which releases the upstream).
 */
export async function* referenceTransformEvents(
  format: StreamFormat,
  events: AsyncIterable<StreamEvent>,
  transform: EventTransform,
  opts: TransformOptions = {},
): AsyncGenerator<StreamEvent> {
  const state: StreamState = newStreamState();
  // Responses only: the text that went out per output/content index, once anything was modified.
  const emitted = new Map<string, string>();
  let modified = false;
  const note = (ev: TextEvent, text: string): void => {
    if (format !== 'responses') return;
    const k = `${ev.choice}:${ev.contentIndex}`;
    emitted.set(k, (emitted.get(k) ?? '') + text);
  };
  /** Yields held text; returns true when the flush cut the stream (the cut ending was yielded). */
  const release = function* (choice: number): Generator<StreamEvent, boolean> {
    const held = transform.flush?.() ?? [];
    if (!Array.isArray(held)) {
      opts.onCut?.(held.reason);
      yield {
        kind: 'finish',
        raw: renderCut(format, held.reason, state),
        sse: 'cut',
        choice,
        reason: 'content_filter',
      };
      return true;
    }
    for (const h of held) {
      if (h.text.length === 0) continue;
      modified = true;
      note(h.template, h.text);
      const out = textEvent(format, h.template, h.text);
      trackStream(format, state, out);
      yield out;
    }
    return false;
  };
  for await (const ev of events) {
    if (ev.kind === 'text') {
      const d = transform.text(ev);
      if (d.action === 'cut') {
        opts.onCut?.(d.reason);
        yield {
          kind: 'finish',
          raw: renderCut(format, d.reason, state),
          sse: 'cut',
          choice: ev.choice,
          reason: 'content_filter',
        };
        return;
      }
      if (d.action === 'keep') {
        note(ev, ev.text);
        trackStream(format, state, ev);
        yield ev;
        continue;
      }
      modified = true;
      note(ev, d.text);
      if (d.text.length === 0 && !finishes(ev)) continue;
      const out = textEvent(format, ev, d.text);
      trackStream(format, state, out);
      yield out;
      continue;
    }
    if (!passive(ev) && (yield* release('choice' in ev ? ev.choice : 0))) return;
    if (ev.kind === 'tool-call' && transform.toolCall) {
      const d = transform.toolCall(ev);
      if (d.action === 'cut') {
        opts.onCut?.(d.reason);
        yield {
          kind: 'finish',
          raw: renderCut(format, d.reason, state),
          sse: 'cut',
          choice: ev.choice,
          reason: 'content_filter',
        };
        return;
      }
    }
    const out = modified && format === 'responses' ? patchResponsesDone(ev, emitted) : ev;
    trackStream(format, state, out);
    yield out;
  }
  yield* release(0);
}
