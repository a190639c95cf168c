import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSse, type SseEvent, SseParser } from '../../src/providers/sse.js';

const enc = new TextEncoder();

function feed(chunks: Uint8Array[]): { events: SseEvent[]; raw: Uint8Array[] } {
  const p = new SseParser();
  const events: SseEvent[] = [];
  const raw: Uint8Array[] = [];
  for (const c of chunks) {
    for (const b of p.push(c)) {
      raw.push(b.raw);
      if (b.event) events.push(b.event);
    }
  }
  const last = p.end();
  if (last) {
    raw.push(last.raw);
    if (last.event) events.push(last.event);
  }
  return { events, raw };
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('SseParser', () => {
  it('parses event, multi-line data and id fields', () => {
    const events = parseSse('event: a\ndata: one\ndata: two\nid: 7\n\ndata: {"x":1}\n\n');
    expect(events).toEqual([
      { event: 'a', data: 'one\ntwo', id: '7' },
      { event: 'message', data: '{"x":1}', id: '7' },
    ]);
  });

  it('accepts CRLF and lone CR line ends', () => {
    expect(parseSse('data: a\r\n\r\ndata: b\r\rdata: c\n\n').map((e) => e.data)).toEqual(['a', 'b', 'c']);
  });

  it('ignores comments and dispatches nothing for blocks without data', () => {
    const p = new SseParser();
    const blocks = p.push(enc.encode(': keep-alive\n\nevent: x\n\ndata: y\n\n'));
    expect(blocks.map((b) => b.event?.data)).toEqual([undefined, undefined, 'y']);
    // The event name of a block without data does not leak into the next one.
    expect(blocks[2].event?.event).toBe('message');
  });

  it('keeps a CRLF split across chunks as one line end (no phantom blank line)', () => {
    const p = new SseParser();
    expect(p.push(enc.encode('data: a\r'))).toEqual([]);
    const blocks = p.push(enc.encode('\ndata: b\r\n\r\n'));
    expect(blocks).toHaveLength(1);
    expect(blocks[0].event).toEqual({ event: 'message', data: 'a\nb' });
  });

  it('decodes a UTF-8 character split across chunks', () => {
    const bytes = enc.encode('data: héllo ✓\n\n');
    const at = bytes.indexOf(0xc3) + 1;
    const { events } = feed([bytes.subarray(0, at), bytes.subarray(at)]);
    expect(events[0].data).toBe('héllo ✓');
  });

  it('returns an unterminated trailing event at end() and reports pending bytes', () => {
    const p = new SseParser();
    expect(p.push(enc.encode('data: [DONE]'))).toEqual([]);
    expect(p.pendingBytes()).toBe(12);
    const last = p.end();
    expect(last?.event?.data).toBe('[DONE]');
    expect(p.pendingBytes()).toBe(0);
  });

  it('strips a byte-order mark only at the start of the stream', () => {
    expect(parseSse('\ufeffdata: a\n\n')).toEqual([{ event: 'message', data: 'a' }]);
  });

  // Any chunking of a valid stream parses to the same events, and the blocks' raw bytes
  // concatenate back to exactly the input (what the relay forwards is what the upstream sent).
  it('property: any chunking yields the same events and the same bytes', () => {
    const line = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
    const event = fc.record({
      name: fc.option(fc.stringMatching(/^[a-z_.]{1,12}$/), { nil: undefined }),
      data: fc.array(line, { minLength: 1, maxLength: 3 }),
      id: fc.option(fc.stringMatching(/^[a-z0-9]{0,6}$/), { nil: undefined }),
      comment: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 6 }),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        (events, eol, bom, cuts) => {
          let text = bom ? '\ufeff' : '';
          const expected: SseEvent[] = [];
          let lastId: string | undefined;
          for (const e of events) {
            if (e.comment) text += `: note${eol}`;
            if (e.name !== undefined) text += `event: ${e.name}${eol}`;
            for (const d of e.data) text += `data: ${d}${eol}`;
            if (e.id !== undefined) {
              text += `id: ${e.id}${eol}`;
              lastId = e.id;
            }
            text += eol;
            const ev: SseEvent = { event: e.name ?? 'message', data: e.data.join('\n') };
            if (lastId !== undefined) ev.id = lastId;
            expected.push(ev);
          }
          const bytes = enc.encode(text);
          const whole = feed([bytes]);
          const chunked = feed(split(bytes, cuts));
          expect(chunked.events).toEqual(expected);
          expect(whole.events).toEqual(expected);
          expect(Buffer.concat(chunked.raw).equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { seed: 20240601, numRuns: 300 },
    );
  });
});
