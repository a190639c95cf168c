/**
 * Streams as events: the providers' event view, the renderers and transformEvents with a sliding
 * window (a secret split over three chunks is caught; unmodified streams are byte-identical; events
 * go downstream before the next upstream chunk exists).
 */
import type { ServerResponse } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSchema } from '../../src/config/schema.js';
import type { StreamEvent, StreamFormat, UpstreamRequest } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';
import { OpenAIUpstream, type OpenAIUpstreamConfig } from '../../src/providers/openai.js';
import { parseSse } from '../../src/providers/sse.js';
import { classifyEvent, sseBatches } from '../../src/providers/stream-events.js';
import { renderCut, rewriteJsonText } from '../../src/providers/stream-render.js';
import {
  type EventTransform,
  eventBytes,
  slidingWindow,
  type TextScanner,
  transformEvents,
} from '../../src/providers/stream-transform.js';
import { gate, type Stub, startStub } from './stub-server.js';

const FORMATS: StreamFormat[] = ['chat', 'completions', 'responses', 'messages'];
const mock = new MockUpstream(UpstreamSchema.parse({ name: 'm', kind: 'mock', replyWords: 12 }) as never, {
  now: () => 1_700_000_000_000,
});

function mockReq(endpoint: StreamFormat, body: Record<string, unknown> = {}): UpstreamRequest {
  const base =
    endpoint === 'completions'
      ? { prompt: 'hello there' }
      : endpoint === 'responses'
        ? { input: 'hello there' }
        : { messages: [{ role: 'user', content: 'hello there' }], max_tokens: 50 };
  return {
    endpoint,
    body: { model: 'demo', stream: true, ...base, ...body },
    stream: true,
    signal: new AbortController().signal,
    requestId: 'req1',
    headers: {},
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const text = (b: Uint8Array[] | Uint8Array) =>
  Buffer.concat((Array.isArray(b) ? b : [b]).map((x) => Buffer.from(x))).toString('utf8');

/** Events from in-memory SSE text, split into the given chunks. */
async function* chunksToEvents(format: StreamFormat, chunks: string[]): AsyncGenerator<StreamEvent> {
  async function* src() {
    for (const c of chunks) yield Buffer.from(c);
  }
  for await (const batch of sseBatches(format, src())) yield* batch;
}

/** A source the test feeds by hand: `push` one event, `end`; records how many were pulled. */
function controllable<T>() {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let pulled = 0;
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      async next() {
        while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
        if (queue.length === 0) return { done: true, value: undefined };
        pulled++;
        return { done: false, value: queue.shift()! };
      },
      async return() {
        ended = true;
        return { done: true, value: undefined };
      },
    }),
  };
  return {
    iterable,
    push(x: T) {
      queue.push(x);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    pulled: () => pulled,
  };
}

/** A toy secret scanner: `sk-` + 20 or more alphanumerics is redacted; a tail that could start one is held. */
const secretScanner: TextScanner = {
  scan(s, { final, before }) {
    // The released text before `s` is the left context that decides word boundaries.
    const lead = before;
    const full = lead + s;
    // A match that reaches the end may still grow with the next delta: hold it, unredacted, whole.
    const open = final ? null : /\bsk-[A-Za-z0-9]*$/.exec(full);
    const doneEnd = open ? Math.max(open.index, lead.length) : full.length;
    const out = full
      .slice(0, doneEnd)
      // A match that began in released text can only be redacted from here on.
      .replace(/\bsk-[A-Za-z0-9]{20,}/g, (_m, at: number) =>
        at >= lead.length ? '[REDACTED:key]' : `${full.slice(at, lead.length)}[REDACTED:key]`,
      )
      .slice(lead.length);
    if (open) return { action: 'pass', text: out + full.slice(doneEnd), holdFrom: out.length };
    const tail = final ? null : /\bsk?$/.exec(lead + out);
    return { action: 'pass', text: out, holdFrom: tail ? Math.max(0, tail.index - lead.length) : undefined };
  },
};

const chatChunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: finish }] })}\n\n`;

describe('event view of streams', () => {
  it('the mock exposes events for every streamed format; their raw bytes are exactly the byte view', async () => {
    for (const f of FORMATS) {
      const bytes = text(await collect((await mock.call(mockReq(f))).body as AsyncIterable<Uint8Array>));
      const events = await collect((await mock.call(mockReq(f))).events!);
      expect(text(events.map((e) => e.raw))).toBe(bytes);
      const deltas = events.filter((e) => e.kind === 'text').map((e) => (e as { text: string }).text);
      expect(deltas.join('')).toMatch(/^This is a mock reply from Sluice to: hello there/);
      expect(events.some((e) => e.kind === 'finish')).toBe(true);
    }
  });

  it('classifies tool calls, usage and errors in each dialect', () => {
    const raw = new Uint8Array();
    const ev = (data: unknown, event = 'message') => ({ event, data: JSON.stringify(data) });
    expect(
      classifyEvent(
        'chat',
        ev({
          choices: [
            {
              index: 0,
              delta: { tool_calls: [{ index: 1, id: 'c1', function: { name: 'f', arguments: '{"a"' } }] },
            },
          ],
        }),
        raw,
      ),
    ).toMatchObject({ kind: 'tool-call', index: 1, id: 'c1', name: 'f', arguments: '{"a"' });
    expect(
      classifyEvent('chat', ev({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }), raw),
    ).toMatchObject({
      kind: 'usage',
      usage: { inputTokens: 3, outputTokens: 4 },
    });
    expect(classifyEvent('chat', ev({ error: { message: 'x' } }), raw)).toMatchObject({
      kind: 'error',
      message: 'x',
    });
    expect(
      classifyEvent(
        'messages',
        ev(
          {
            type: 'content_block_delta',
            index: 2,
            delta: { type: 'input_json_delta', partial_json: '{"q":' },
          },
          'content_block_delta',
        ),
        raw,
      ),
    ).toMatchObject({ kind: 'tool-call', index: 2, arguments: '{"q":' });
    expect(
      classifyEvent(
        'responses',
        ev(
          { type: 'response.function_call_arguments.delta', output_index: 1, item_id: 'fc', delta: '{}' },
          'response.function_call_arguments.delta',
        ),
        raw,
      ),
    ).toMatchObject({ kind: 'tool-call', id: 'fc', arguments: '{}' });
    expect(classifyEvent('messages', ev({ type: 'ping' }, 'ping'), raw)).toMatchObject({ kind: 'other' });
  });

  describe('HTTP relay', () => {
    let stub: Stub;
    beforeAll(async () => {
      stub = await startStub();
    });
    afterAll(async () => {
      await stub.close();
    });

    it('relayed events carry the upstream bytes exactly, and usage is still read (one parse)', async () => {
      const chunks = [
        chatChunk('Hel'),
        chatChunk('lo'),
        chatChunk('', 'stop'),
        `data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } })}\n\n`,
        'data: [DONE]\n\n',
      ];
      stub.handler = (_r, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const c of chunks) res.write(c);
        res.end();
      };
      const cfg = UpstreamSchema.parse({
        name: 'o',
        kind: 'openai',
        baseUrl: `${stub.origin}/v1`,
        apiKey: 'k',
      });
      const u = new OpenAIUpstream(cfg as OpenAIUpstreamConfig);
      const res = await u.call({ ...mockReq('chat', { stream_options: { include_usage: true } }) });
      const events = await collect(res.events!);
      expect(text(events.map((e) => e.raw))).toBe(chunks.join(''));
      expect(events.map((e) => e.kind)).toEqual(['text', 'text', 'finish', 'usage', 'other']);
      expect(await res.usage).toEqual({ inputTokens: 5, outputTokens: 2, images: 0 });
      await u.close();
    });

    it('relayed events arrive as the upstream sends them: the first before the second is even written', async () => {
      const second = gate();
      stub.handler = async (_r, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chatChunk('first'));
        await second.promise;
        res.end(chatChunk('second'));
      };
      const cfg = UpstreamSchema.parse({
        name: 'o',
        kind: 'openai',
        baseUrl: `${stub.origin}/v1`,
        apiKey: 'k',
      });
      const u = new OpenAIUpstream(cfg as OpenAIUpstreamConfig);
      const res = await u.call(mockReq('chat'));
      const it = res.events![Symbol.asyncIterator]();
      const a = await it.next();
      expect(a.value).toMatchObject({ kind: 'text', text: 'first' });
      second.open();
      const b = await it.next();
      expect(b.value).toMatchObject({ kind: 'text', text: 'second' });
      expect((await it.next()).done).toBe(true);
      await u.close();
    });
  });
});

describe('transformEvents', () => {
  it('unmodified streams are byte-identical to the input, in every format (window on, nothing held)', async () => {
    for (const f of FORMATS) {
      const src = (await mock.call(mockReq(f))).events!;
      const input: Uint8Array[] = [];
      async function* tee() {
        for await (const e of src) {
          input.push(e.raw);
          yield e;
        }
      }
      const out = await collect(
        eventBytes(transformEvents(f, tee(), slidingWindow(secretScanner, { maxHold: 64 }))),
      );
      expect(text(out)).toBe(text(input));
    }
  });

  it('a secret split across three chunks is caught (redacted), the rest of the text kept', async () => {
    const secret = 'sk-ABCDEFGHIJ0123456789xyz';
    const chunks = [
      chatChunk('my key is sk'),
      chatChunk('-ABCDEFGHIJ01'),
      chatChunk('23456789xyz, bye'),
      chatChunk('', 'stop'),
      'data: [DONE]\n\n',
    ];
    const out = text(
      await collect(
        eventBytes(
          transformEvents(
            'chat',
            chunksToEvents('chat', chunks),
            slidingWindow(secretScanner, { maxHold: 64 }),
          ),
        ),
      ),
    );
    expect(out).not.toContain(secret);
    for (const part of ['ABCDEFGHIJ01', '23456789xyz']) expect(out).not.toContain(part);
    const events = parseSse(out);
    const content = events
      .filter((e) => e.data !== '[DONE]')
      .map((e) => JSON.parse(e.data).choices[0].delta.content ?? '')
      .join('');
    expect(content).toBe('my key is [REDACTED:key], bye');
    expect(events.at(-1)?.data).toBe('[DONE]');
    // The same ids and model as the upstream's chunks.
    expect(JSON.parse(events[0]!.data)).toMatchObject({ id: 'chatcmpl-1', model: 'gpt-x' });
  });

  it('property: for any text and any split into chunks, the output text is the whole text redacted', async () => {
    const secret = 'sk-ABCDEFGHIJ0123456789xyz';
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom('a', 'b', ' ', 's', 'k', '-', '1', 'é'), maxLength: 40 }),
        fc.string({ unit: fc.constantFrom('a', ' ', 's', 'k', '.'), maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 8 }),
        async (before, after, cutsAt) => {
          const whole = `${before}${secret}${after}`;
          const points = [...new Set(cutsAt.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
          const pieces: string[] = [];
          let at = 0;
          for (const p of [...points, whole.length]) {
            if (p > at) pieces.push(whole.slice(at, p));
            at = p;
          }
          const chunks = [...pieces.map((p) => chatChunk(p)), chatChunk('', 'stop'), 'data: [DONE]\n\n'];
          const out = text(
            await collect(
              eventBytes(
                transformEvents(
                  'chat',
                  chunksToEvents('chat', chunks),
                  slidingWindow(secretScanner, { maxHold: 64 }),
                ),
              ),
            ),
          );
          const content = parseSse(out)
            .filter((e) => e.data !== '[DONE]')
            .map((e) => JSON.parse(e.data).choices[0].delta.content ?? '')
            .join('');
          const expected = secretScanner.scan(whole, { final: true, before: '' });
          expect(content).toBe(expected.action === 'pass' ? (expected.text ?? whole) : '');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a window too small for the secret misses it (the bound is real)', async () => {
    const chunks = [
      chatChunk('key sk'),
      chatChunk('-ABCDEFGHIJ01'),
      chatChunk('23456789xyz'),
      chatChunk('', 'stop'),
    ];
    const out = text(
      await collect(
        eventBytes(
          transformEvents(
            'chat',
            chunksToEvents('chat', chunks),
            slidingWindow(secretScanner, { maxHold: 4 }),
          ),
        ),
      ),
    );
    expect(out).toContain('ABCDEFGH');
  });

  it('an event goes downstream before the next upstream chunk is produced (no buffering)', async () => {
    const src = controllable<StreamEvent>();
    const encoded = (s: string) => [...chunksToEventsSync('chat', s)];
    const out = transformEvents('chat', src.iterable, slidingWindow(secretScanner, { maxHold: 64 }))[
      Symbol.asyncIterator
    ]();
    // 1. One chunk in: it comes out while the source holds nothing more.
    for (const e of encoded(chatChunk('Hello'))) src.push(e);
    const first = await out.next();
    expect(first.done).toBe(false);
    expect(src.pulled()).toBe(1);
    expect(text(first.value!.raw)).toBe(chatChunk('Hello'));
    // 2. A chunk whose tail might start a secret is held; the next one releases it.
    for (const e of encoded(chatChunk(' world sk'))) src.push(e);
    const second = await out.next();
    expect(JSON.parse(parseSse(text(second.value!.raw))[0]!.data).choices[0].delta.content).toBe(' world ');
    for (const e of encoded(chatChunk('y'))) src.push(e);
    const third = await out.next();
    expect(JSON.parse(parseSse(text(third.value!.raw))[0]!.data).choices[0].delta.content).toBe('sky');
    expect(src.pulled()).toBe(3);
    src.end();
    expect((await out.next()).done).toBe(true);
  });

  it('a cut ends the stream well-formed and closes the source', async () => {
    const src = controllable<StreamEvent>();
    for (const e of chunksToEventsSync('chat', chatChunk('fine ') + chatChunk('forbidden'))) src.push(e);
    const cutter: EventTransform = {
      text: (ev) =>
        ev.text.includes('forbidden') ? { action: 'cut', reason: 'deny list' } : { action: 'keep' },
    };
    const reasons: string[] = [];
    const out = text(
      await collect(
        eventBytes(transformEvents('chat', src.iterable, cutter, { onCut: (r) => reasons.push(r) })),
      ),
    );
    expect(reasons).toEqual(['deny list']);
    const evs = parseSse(out);
    expect(
      evs.map((e) => (e.data === '[DONE]' ? 'DONE' : JSON.parse(e.data).choices[0].finish_reason)),
    ).toEqual([null, 'content_filter', 'DONE']);
    expect(out).not.toContain('forbidden');
  });

  it('a tool call whose arguments the transform refuses cuts the stream (Anthropic: refusal ending)', async () => {
    const sse = (type: string, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const chunks = [
      sse('message_start', {
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'c',
          content: [],
          usage: { input_tokens: 3, output_tokens: 1 },
        },
      }),
      sse('content_block_start', {
        index: 0,
        content_block: { type: 'tool_use', id: 'tu_1', name: 'run', input: {} },
      }),
      sse('content_block_delta', {
        index: 0,
        delta: { type: 'input_json_delta', partial_json: '{"cmd":"rm -rf /"}' },
      }),
      sse('content_block_stop', { index: 0 }),
      sse('message_stop', {}),
    ];
    const seen: string[] = [];
    const transform: EventTransform = {
      text: () => ({ action: 'keep' }),
      toolCall: (ev) => {
        seen.push(`${ev.name ?? ''}|${ev.arguments}`);
        return ev.arguments.includes('rm -rf') ? { action: 'cut', reason: 'tool: rm' } : { action: 'keep' };
      },
    };
    const out = text(
      await collect(eventBytes(transformEvents('messages', chunksToEvents('messages', chunks), transform))),
    );
    expect(seen).toEqual(['run|', '|{"cmd":"rm -rf /"}']);
    expect(out).not.toContain('rm -rf');
    expect(parseSse(out).map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(JSON.parse(parseSse(out)[3]!.data).delta.stop_reason).toBe('refusal');
  });

  it('Responses: redacted text is also patched into the .done and final events', async () => {
    const secret = 'sk-ZZZZZZZZZZZZZZZZZZZZZZZZ';
    const res = await mock.call(mockReq('responses', { input: `leak ${secret} now` }));
    const out = text(
      await collect(
        eventBytes(transformEvents('responses', res.events!, slidingWindow(secretScanner, { maxHold: 64 }))),
      ),
    );
    expect(out).not.toContain(secret);
    expect(out).toContain('[REDACTED:key]');
    const final = parseSse(out).at(-1)!;
    expect(JSON.parse(final.data).response.output[0].content[0].text).toContain('[REDACTED:key]');
  });
});

describe('renderers', () => {
  it('renderCut per format', () => {
    expect(text(renderCut('chat', 'x'))).toMatch(
      /"finish_reason":"content_filter".*\n\ndata: \[DONE\]\n\n$/s,
    );
    expect(text(renderCut('completions', 'x'))).toMatch(/"finish_reason":"content_filter"/);
    expect(parseSse(renderCut('responses', 'x'))[0]).toMatchObject({ event: 'response.incomplete' });
    expect(JSON.parse(parseSse(renderCut('responses', 'x'))[0]!.data).response.incomplete_details).toEqual({
      reason: 'content_filter',
    });
    // No message started yet: an Anthropic error event.
    expect(parseSse(renderCut('messages', 'x'))[0]).toMatchObject({ event: 'error' });
  });

  it('rewriteJsonText rewrites the text of whole answers and keeps the bytes when nothing changes', async () => {
    for (const f of FORMATS) {
      const res = await mock.call({
        ...mockReq(f),
        stream: false,
        body: { ...mockReq(f).body, stream: false },
      });
      const body = res.body as Uint8Array;
      expect(rewriteJsonText(f, body, (t) => t)).toBe(body);
      const out = Buffer.from(rewriteJsonText(f, body, (t) => t.replace('mock', '[X]'))).toString();
      expect(out).toContain('This is a [X] reply');
      expect(out).not.toContain('a mock reply');
    }
  });
});

/** Parses SSE text into classified events synchronously (test helper for hand-fed sources). */
function chunksToEventsSync(format: StreamFormat, sseText: string): StreamEvent[] {
  const parts = sseText.split(/(?<=\n\n)/);
  return parts.filter(Boolean).map((p) => {
    const raw = Buffer.from(p);
    return classifyEvent(format, parseSse(p)[0], raw);
  });
}
