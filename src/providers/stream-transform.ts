/**
 * Transforms over a provider-neutral event stream: the engine of the `screen-output` stage.
 *
 * `transformEvents` passes every event on as it arrives; a transform sees each text delta and
 * keeps it (its original bytes go out untouched), replaces its text (re-rendered in the stream's
 * wire format with the same ids), or cuts the stream (a well-formed ending in the caller's format,
 * then the upstream is released). Nothing is buffered unless a transform holds text back.
 *
 * `slidingWindow` turns a text scanner into such a transform, matching patterns split across
 * chunks: it holds back at most `maxHold` characters per text channel, and only when the scanner
 * says the tail could be the start of a match.
 */
import type { StreamEvent, StreamFormat } from '../core/ports.js';
import {
  newStreamState,
  renderCut,
  renderText,
  type StreamState,
  type TextEvent,
  trackStream,
} from './stream-render.js';

export type TransformDecision =
  | { action: 'keep' }
  | { action: 'replace'; text: string }
  | { action: 'cut'; reason: string };

/** Text held back by a transform, to be released now with `template`'s ids. */
export interface HeldText {
  template: TextEvent;
  text: string;
}

export interface EventTransform {
  /** Decides what happens to one text delta. */
  text(ev: TextEvent): TransformDecision;
  /**
   * Decides what happens to a tool-call delta (its id, name and argument fragment): keep it or cut
   * the stream. Optional; tool calls are kept when absent. (Arguments are JSON fragments: a
   * transform that needs them whole accumulates them per `index` itself.)
   */
  toolCall?(
    ev: Extract<StreamEvent, { kind: 'tool-call' }>,
  ): { action: 'keep' } | { action: 'cut'; reason: string };
  /**
   * Releases text held back (or cuts, when the held text turns out to need it): called before every
   * event that ends or interrupts text (finish, tool call, error, lifecycle events; not pings or
   * comments) and when the stream ends.
   */
  flush?(): HeldText[] | { action: 'cut'; reason: string };
}

export interface TransformOptions {
  /** Called once when the stream is cut (to audit it). */
  onCut?(reason: string): void;
}

const KEEP: TransformDecision = { action: 'keep' };

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
 * The work of `transformEvents`, one event at a time and synchronous: `push(ev)` decides what goes
 * out for `ev` (read `out` right after), `end()` what goes out when the source ends. Kept apart from
 * the iteration so that `transformEvents` (events) and `transformedBytes` (bytes, no generator) share
 * every decision. After a cut, `cut` is true and nothing more goes out.
 */
class EventTransformer {
  readonly state: StreamState = newStreamState();
  /** Responses only: the text that went out per output/content index, once anything was modified. */
  readonly emitted: Map<string, string> | undefined;
  modified = false;
  cut = false;
  /** What the last `push` or `end` sends, in order (reused: read it before the next call). */
  readonly out: StreamEvent[] = [];

  constructor(
    readonly format: StreamFormat,
    readonly transform: EventTransform,
    readonly opts: TransformOptions,
  ) {
    if (format === 'responses') this.emitted = new Map();
  }

  private note(ev: TextEvent, text: string): void {
    const emitted = this.emitted;
    if (!emitted) return;
    const k = `${ev.choice}:${ev.contentIndex}`;
    emitted.set(k, (emitted.get(k) ?? '') + text);
  }

  private cutWith(reason: string, choice: number): void {
    this.opts.onCut?.(reason);
    this.out.push({
      kind: 'finish',
      raw: renderCut(this.format, reason, this.state),
      sse: 'cut',
      choice,
      reason: 'content_filter',
    });
    this.cut = true;
  }

  /** Sends held text; on a cut, the cut ending instead (and `cut` is set). */
  private release(choice: number): void {
    const held = this.transform.flush?.();
    if (held === undefined) return;
    if (!Array.isArray(held)) {
      this.cutWith(held.reason, choice);
      return;
    }
    for (const h of held) {
      if (h.text.length === 0) continue;
      this.modified = true;
      this.note(h.template, h.text);
      const out = textEvent(this.format, h.template, h.text);
      trackStream(this.format, this.state, out);
      this.out.push(out);
    }
  }

  push(ev: StreamEvent): void {
    const { format, state, out } = this;
    out.length = 0;
    if (this.cut) return;
    if (ev.kind === 'text') {
      const d = this.transform.text(ev);
      if (d.action === 'cut') {
        this.cutWith(d.reason, ev.choice);
        return;
      }
      if (d.action === 'keep') {
        this.note(ev, ev.text);
        trackStream(format, state, ev);
        out.push(ev);
        return;
      }
      this.modified = true;
      this.note(ev, d.text);
      if (d.text.length === 0 && !finishes(ev)) return;
      const re = textEvent(format, ev, d.text);
      trackStream(format, state, re);
      out.push(re);
      return;
    }
    if (!passive(ev)) {
      this.release('choice' in ev ? ev.choice : 0);
      if (this.cut) return;
    }
    if (ev.kind === 'tool-call' && this.transform.toolCall) {
      const d = this.transform.toolCall(ev);
      if (d.action === 'cut') {
        this.cutWith(d.reason, ev.choice);
        return;
      }
    }
    const o = this.modified && this.emitted ? patchResponsesDone(ev, this.emitted) : ev;
    trackStream(format, state, o);
    out.push(o);
  }

  end(): void {
    this.out.length = 0;
    if (!this.cut) this.release(0);
  }
}

/**
 * Applies `transform` to a `format` stream. Unmodified events are yielded as the same objects (same
 * raw bytes), each as soon as it arrives. On a cut, held text is dropped, the cut ending is yielded
 * as one `finish` event, and the source is closed (which releases the upstream).
 */
export async function* transformEvents(
  format: StreamFormat,
  events: AsyncIterable<StreamEvent>,
  transform: EventTransform,
  opts: TransformOptions = {},
): AsyncGenerator<StreamEvent> {
  const t = new EventTransformer(format, transform, opts);
  for await (const ev of events) {
    t.push(ev);
    // Copied: `out` is reused by the next push, which a consumer may cause before reading these.
    if (t.out.length === 1) yield t.out[0]!;
    else if (t.out.length > 1) yield* [...t.out];
    if (t.cut) return;
  }
  t.end();
  yield* [...t.out];
}

const DONE: IteratorResult<Uint8Array> = { done: true, value: undefined };
const SETTLED = Promise.resolve();

/**
 * `eventBytes(transformEvents(...))` without the async generators: the bytes of the transformed
 * stream, the same bytes in the same order, with the transform run synchronously on each source
 * event as it is read, instead of a generator step per event in each of two layers. Output
 * screening's cost per stream is what every concurrent stream's first byte waits behind (issue 12:
 * TTFB with output screening on within 0.3 ms of off), so this path is kept to what the unscreened
 * one does: one chunk (one socket write) per upstream chunk, not one per event.
 *
 * The events of one upstream chunk are already in hand when the first of them is read (the event
 * view answers the next read at once, without I/O); a read that waits for the upstream does not
 * settle before a microtask queued after it. So after each event another read starts, and if it
 * has not settled by then, what was gathered goes out and that read is kept for the next `next()`.
 * Nothing waits for the upstream while it holds bytes to send: an event is held back at most one
 * microtask, and the first event of a stream (the role chunk, `message_start`) goes out alone.
 * An event that sends nothing (a delta held back whole) makes no chunk: reading goes on. On a cut,
 * the source is closed at once (which releases the upstream) and the cut ending ends the last
 * chunk. `return` closes the source.
 */
export function transformedBytes(
  format: StreamFormat,
  events: AsyncIterable<StreamEvent>,
  transform: EventTransform,
  opts: TransformOptions = {},
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: () =>
      new TransformedBytes(events[Symbol.asyncIterator](), new EventTransformer(format, transform, opts)),
  };
}

/**
 * The iterator of `transformedBytes`, as a small state machine: its handlers are made once per
 * stream (not per read), so a stream's reads allocate what the source's own promises do and
 * little more (the closures and promises of a read made 4-5 KB per stream of the bench's, as much
 * as the output screener itself). At most one source read is in flight; the consumer asks for one
 * chunk at a time.
 */
class TransformedBytes implements AsyncIterator<Uint8Array> {
  /** The source ended, the stream was cut, or the consumer left: nothing more is read. */
  private finished = false;
  private closed = false;
  private closing: Promise<unknown> | undefined;
  /** A source read is in flight: its result goes to `onResult`. */
  private reading = false;
  /** Sentinels queued and not run yet: only the last one judges the newest read. */
  private sentinels = 0;
  /** The bytes gathered for the next chunk. */
  private parts: Uint8Array[] = [];
  /** A failed read, when bytes gathered before it still had to go out. */
  private failure: { err: unknown } | undefined;
  /** The consumer's waiting `next()`. */
  private resolve: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  private reject: ((err: unknown) => void) | undefined;

  constructor(
    private readonly it: AsyncIterator<StreamEvent>,
    private readonly t: EventTransformer,
  ) {}

  next(): Promise<IteratorResult<Uint8Array>> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (this.reading) return; // its result (or the sentinel after it) answers
      if (this.failure || this.finished) return this.answer();
      this.read();
      // Bytes already in hand (gathered while the consumer was writing): send them, with whatever
      // else the source has in hand, but wait for nothing.
      if (this.parts.length > 0) this.watch();
    });
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.finished = true;
    this.closed = true;
    this.parts = [];
    await (this.closing ?? this.it.return?.());
    return DONE;
  }

  private read(): void {
    this.reading = true;
    this.it.next().then(this.onResult, this.onError);
  }

  /** Queues the check of the read just started: if it has not settled by then, it waits for I/O. */
  private watch(): void {
    this.sentinels++;
    // A reaction on a settled promise: queued now, behind the read's if that one has settled
    // (`queueMicrotask` would do the same, with an async resource per call).
    SETTLED.then(this.sentinel);
  }

  private readonly onResult = (r: IteratorResult<StreamEvent>): void => {
    this.reading = false;
    if (this.closed) return;
    const t = this.t;
    if (r.done) {
      this.finished = true;
      t.end();
    } else {
      t.push(r.value);
      if (t.cut) {
        this.finished = true;
        this.closing = Promise.resolve(this.it.return?.()); // releases the upstream now
      }
    }
    for (const e of t.out) this.parts.push(e.raw);
    if (!this.resolve) return; // the consumer asks later: the bytes wait in `parts`
    if (this.finished) {
      this.answer();
      return;
    }
    this.read();
    // With bytes in hand, the read just started is waited for only if the source answers it at
    // once; with none (a delta held back whole), however long it takes.
    if (this.parts.length > 0) this.watch();
  };

  private readonly onError = (err: unknown): void => {
    this.reading = false;
    if (this.closed) return;
    this.failure = { err };
    if (this.resolve) this.answer();
  };

  /** Runs one microtask after a read started: if the read has not settled, the chunk goes out. */
  private readonly sentinel = (): void => {
    if (--this.sentinels > 0 || !this.reading || !this.resolve || this.parts.length === 0) return;
    this.answer();
  };

  /** Answers the waiting `next()`: the gathered bytes, else a failure, else the end. */
  private answer(): void {
    const resolve = this.resolve!;
    const reject = this.reject!;
    this.resolve = undefined;
    this.reject = undefined;
    const parts = this.parts;
    if (parts.length > 0) {
      this.parts = [];
      resolve({ done: false, value: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
    } else if (this.failure) {
      const { err } = this.failure;
      this.failure = undefined;
      reject(err);
    } else if (this.closing) this.closing.then(() => resolve(DONE), reject);
    else resolve(DONE);
  }
}

/** The bytes of an event stream (what the gateway writes): each event's raw bytes, as they come. */
export async function* eventBytes(events: AsyncIterable<StreamEvent>): AsyncGenerator<Uint8Array> {
  for await (const ev of events) yield ev.raw;
}

/** What a scanner decides about the unreleased text of one channel. */
export type ScanResult =
  | { action: 'cut'; reason: string }
  | {
      action: 'pass';
      /** The text rewritten (e.g. redacted); omitted when unchanged. */
      text?: string;
      /**
       * Index (in the rewritten text) from which the tail could be the start of a match that more
       * text would complete, or a match that more text could extend (a greedy pattern reaching the
       * end): that tail is held back (at most `maxHold` characters of it) and rescanned with the next delta.
       */
      holdFrom?: number;
    };

/** What a scanner is told besides the text. */
export interface ScanContext {
  /** True when no more text follows on the channel (held text is being released): hold nothing. */
  final: boolean;
  /**
   * Up to `maxHold` characters released just before `text` on this channel (already sent, cannot be
   * changed): left context for word boundaries, so a scanner judges `text` as it sits in the answer.
   */
  before: string;
}

export interface TextScanner {
  /** Scans the text not yet released on one channel: held-back text followed by the new delta. */
  scan(text: string, ctx: ScanContext): ScanResult;
}

/** One text channel's window: text held back, the event it came in, and the text released before it. */
interface Channel {
  template: TextEvent | undefined;
  held: string;
  before: string;
}

/**
 * A transform that runs `scanner` over each text channel (choice and content index) with a sliding
 * window: held-back text is rescanned together with the next delta, so a pattern split across any
 * number of chunks, up to `maxHold` characters long, is seen whole.
 */
export function slidingWindow(scanner: TextScanner, opts: { maxHold: number }): EventTransform {
  const maxHold = Math.max(0, Math.floor(opts.maxHold));
  const channels = new Map<string, Channel>();
  const tail = (s: string) => (s.length > maxHold ? s.slice(s.length - maxHold) : s);
  return {
    text(ev: TextEvent): TransformDecision {
      const key = `${ev.choice}:${ev.contentIndex}`;
      let ch = channels.get(key);
      if (!ch) {
        ch = { template: undefined, held: '', before: '' };
        channels.set(key, ch);
      }
      const held = ch.held;
      const s = held + ev.text;
      const r = scanner.scan(s, { final: false, before: ch.before });
      if (r.action === 'cut') return r;
      const out = r.text ?? s;
      const cut =
        r.holdFrom === undefined
          ? out.length
          : Math.max(0, Math.min(out.length, Math.max(r.holdFrom, out.length - maxHold)));
      const release = out.slice(0, cut);
      ch.held = out.slice(cut);
      ch.template = ev;
      ch.before = tail(ch.before + release);
      if (held.length === 0 && release === ev.text) return KEEP;
      return { action: 'replace', text: release };
    },
    flush(): HeldText[] | { action: 'cut'; reason: string } {
      const out: HeldText[] = [];
      for (const ch of channels.values()) {
        if (ch.held.length === 0 || !ch.template) continue;
        const r = scanner.scan(ch.held, { final: true, before: ch.before });
        if (r.action === 'cut') {
          for (const c of channels.values()) c.held = '';
          return r;
        }
        const text = r.text ?? ch.held;
        out.push({ template: ch.template, text });
        ch.before = tail(ch.before + text);
        ch.held = '';
      }
      return out;
    },
  };
}
