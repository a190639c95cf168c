/**
 * An incremental Server-Sent Events parser that works on raw bytes.
 *
 * Providers use it to read usage out of upstream streams while passing the bytes on: every
 * complete block (the lines up to and including a blank line) is returned with its exact raw
 * bytes, so a caller can forward blocks unchanged, drop one (the usage-only chunk), or stop at a
 * block boundary and append a well-formed error event.
 *
 * Line ends may be LF, CRLF or CR, and chunks may split lines, line ends and UTF-8 characters
 * anywhere: CR and LF never occur inside a multi-byte UTF-8 sequence, so lines are cut on bytes
 * and decoded whole.
 */

/** One dispatched event, as the WHATWG EventSource algorithm defines it. */
export interface SseEvent {
  /** The `event:` field, or `message` when none was given. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field, when the block had one. */
  id?: string;
}

/** The raw bytes of one block and the event it dispatched (undefined for comment-only or empty blocks). */
export interface SseBlock {
  raw: Uint8Array;
  event: SseEvent | undefined;
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = new Uint8Array(0);

/**
 * Feed chunks with `push`; each call returns the blocks completed by that chunk, in order.
 * `end` returns the trailing bytes that never got their blank line (if any) as a last block,
 * dispatched leniently the way the OpenAI and Anthropic SDKs do at end of stream.
 */
export class SseParser {
  // ignoreBOM: keep a BOM so only the one opening the stream is stripped (below), not one per line.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  /** Bytes received but not yet returned as part of a block. */
  private buf: Uint8Array = EMPTY;
  /** Offset in `buf` where the current (incomplete) line starts. */
  private lineStart = 0;
  /** The previous chunk ended with CR, so an LF at the start of this one belongs to it. */
  private afterCr = false;
  private first = true;
  private data: string[] = [];
  private eventType = '';
  private id: string | undefined;

  push(chunk: Uint8Array): SseBlock[] {
    if (chunk.length === 0) return [];
    const prev = this.buf.length;
    const buf = prev === 0 ? chunk : concat(this.buf, chunk);
    const blocks: SseBlock[] = [];
    let blockStart = 0;
    let lineStart = this.lineStart;
    if (!this.afterCr && buf.indexOf(CR, prev) < 0) {
      // No CR in what arrived (the usual stream, LF line ends): each line ends at the next LF,
      // found by the native indexOf rather than a loop over every byte in JavaScript.
      for (let i = buf.indexOf(LF, prev); i >= 0; i = buf.indexOf(LF, i + 1)) {
        if (i === lineStart) {
          blocks.push({ raw: buf.subarray(blockStart, i + 1), event: this.dispatch() });
          blockStart = i + 1;
        } else {
          this.field(buf.subarray(lineStart, i));
        }
        lineStart = i + 1;
      }
      this.buf = blockStart === buf.length ? EMPTY : buf.subarray(blockStart);
      this.lineStart = lineStart - blockStart;
      return blocks;
    }
    for (let i = prev; i < buf.length; i++) {
      const b = buf[i];
      if (this.afterCr) {
        this.afterCr = false;
        // The LF of a CRLF split across chunks: part of the line end already seen.
        if (b === LF) {
          lineStart = i + 1;
          continue;
        }
      }
      if (b !== LF && b !== CR) continue;
      const lineEnd = i;
      if (b === CR) {
        if (i + 1 < buf.length) {
          if (buf[i + 1] === LF) i++;
        } else {
          this.afterCr = true;
        }
      }
      if (lineEnd === lineStart) {
        blocks.push({ raw: buf.subarray(blockStart, i + 1), event: this.dispatch() });
        blockStart = i + 1;
      } else {
        this.field(buf.subarray(lineStart, lineEnd));
      }
      lineStart = i + 1;
    }
    this.buf = blockStart === buf.length ? EMPTY : buf.subarray(blockStart);
    this.lineStart = lineStart - blockStart;
    return blocks;
  }

  /** Ends the stream: returns the unfinished block (if any bytes remain), dispatching what it holds. */
  end(): SseBlock | undefined {
    const buf = this.buf;
    if (buf.length === 0) return undefined;
    if (this.lineStart < buf.length) this.field(buf.subarray(this.lineStart));
    const block = { raw: buf, event: this.dispatch() };
    this.buf = EMPTY;
    this.lineStart = 0;
    return block;
  }

  /** Bytes pushed but not yet returned in a block (0 when the stream is at an event boundary). */
  pendingBytes(): number {
    return this.buf.length;
  }

  private field(line: Uint8Array): void {
    let text = this.decoder.decode(line);
    if (this.first) {
      // A byte-order mark may open the stream; it is not part of the first field name.
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text.length === 0 || text.charCodeAt(0) === 0x3a /* ':' comment */) return;
    const colon = text.indexOf(':');
    let name: string;
    let value: string;
    if (colon === -1) {
      name = text;
      value = '';
    } else {
      name = text.slice(0, colon);
      value = text.charCodeAt(colon + 1) === 0x20 ? text.slice(colon + 2) : text.slice(colon + 1);
    }
    switch (name) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
        // `retry` and unknown fields carry nothing Sluice needs.
        break;
    }
  }

  private dispatch(): SseEvent | undefined {
    const data = this.data;
    const eventType = this.eventType;
    this.data = [];
    this.eventType = '';
    if (data.length === 0) return undefined;
    const ev: SseEvent = { event: eventType || 'message', data: data.join('\n') };
    if (this.id !== undefined) ev.id = this.id;
    return ev;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Parses a whole SSE text at once (tests and small bodies). */
export function parseSse(bytes: Uint8Array | string): SseEvent[] {
  const p = new SseParser();
  const input = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  const events: SseEvent[] = [];
  for (const b of p.push(input)) if (b.event) events.push(b.event);
  const last = p.end();
  if (last?.event) events.push(last.event);
  return events;
}
