/**
 * `transformedBytes` (the screened stream's byte path, issue 12: output screening must not cost a
 * stream's first byte) against `transformEvents` as it was before it (kept verbatim under
 * reference/): for any stream in any of the four formats, any split of its text into deltas and
 * any output-screening policy, the bytes that go out, the cut reasons and what was found are the
 * same. Also: the first event goes out before the source has another, a cut closes the source at
 * once, and a consumer that leaves closes it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamEvent, StreamFormat } from '../../src/core/ports.js';
import { DEFAULT_SCREENING, type ScreeningSettings } from '../../src/core/screening/policy.js';
import { outputTransform } from '../../src/gateway/pipeline/stages/screen-output.js';
import { parseSse } from '../../src/providers/sse.js';
import { classifyEvent } from '../../src/providers/stream-events.js';
import { eventBytes, transformEvents, transformedBytes } from '../../src/providers/stream-transform.js';
import { referenceTransformEvents } from './reference/transform-events-reference.js';

const FORMATS: StreamFormat[] = ['chat', 'completions', 'responses', 'messages'];

/** Pieces a delta is made of: plain words, punctuation the screener holds, secrets, PII, a deny word. */
const PIECES = [
  'Hello',
  ' there',
  '!',
  ' ',
  '\n',
  'the key: ',
  'sk-proj-',
  'Xk3T9qLm2VbN8rWz',
  '4HjP6sDf1GyQ0cEa',
  'alice@example.com',
  '4111 1111 ',
  '1111 1111',
  'password=',
  'hunter2hunter2',
  'forbid',
  'den',
  'sluice-canary-00ff',
  'é',
];

const POLICIES: { name: string; settings: ScreeningSettings; canaries?: string[] }[] = [
  { name: 'defaults (secrets redacted)', settings: DEFAULT_SCREENING },
  {
    name: 'secrets block',
    settings: { ...DEFAULT_SCREENING, output: { secrets: 'block', pii: 'off', deny: [] } },
  },
  {
    name: 'secrets and PII redacted',
    settings: { ...DEFAULT_SCREENING, output: { secrets: 'redact', pii: 'redact', deny: [] } },
  },
  {
    name: 'PII blocked, secrets flagged, a deny word, a canary',
    settings: { ...DEFAULT_SCREENING, output: { secrets: 'flag', pii: 'block', deny: ['forbidden'] } },
    canaries: ['sluice-canary-00ff'],
  },
];

const j = JSON.stringify;
const named = (type: string, data: Record<string, unknown>) =>
  `event: ${type}\ndata: ${j({ type, ...data })}\n\n`;

/** A whole stream in `format` whose text is `deltas` (split over two choices / parts when `two`). */
function streamOf(format: StreamFormat, deltas: string[], two: boolean): string[] {
  const at = (i: number) => (two ? i % 2 : 0);
  const whole = (k: number) => deltas.filter((_, i) => at(i) === k).join('');
  switch (format) {
    case 'chat':
    case 'completions': {
      const chunk = (index: number, delta: Record<string, unknown> | string, finish: string | null) =>
        `data: ${j({
          id: 'c1',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'm',
          choices: [
            format === 'chat'
              ? { index, delta, finish_reason: finish }
              : { index, text: delta, finish_reason: finish },
          ],
        })}\n\n`;
      const out = format === 'chat' ? [chunk(0, { role: 'assistant', content: '' }, null)] : [];
      deltas.forEach((d, i) => {
        out.push(chunk(at(i), format === 'chat' ? { content: d } : d, null));
      });
      for (const k of two ? [0, 1] : [0]) out.push(chunk(k, format === 'chat' ? {} : '', 'stop'));
      out.push(
        `data: ${j({ id: 'c1', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } })}\n\n`,
      );
      out.push('data: [DONE]\n\n');
      return out;
    }
    case 'responses': {
      const out = [named('response.created', { response: { id: 'r1', status: 'in_progress', output: [] } })];
      for (const k of two ? [0, 1] : [0]) {
        out.push(
          named('response.output_item.added', { output_index: k, item: { type: 'message', content: [] } }),
        );
        out.push(
          named('response.content_part.added', {
            output_index: k,
            content_index: 0,
            part: { type: 'output_text', text: '' },
          }),
        );
      }
      deltas.forEach((d, i) => {
        out.push(named('response.output_text.delta', { output_index: at(i), content_index: 0, delta: d }));
      });
      const items = (two ? [0, 1] : [0]).map((k) => ({
        type: 'message',
        content: [{ type: 'output_text', text: whole(k) }],
      }));
      for (const k of two ? [0, 1] : [0]) {
        out.push(named('response.output_text.done', { output_index: k, content_index: 0, text: whole(k) }));
        out.push(
          named('response.content_part.done', {
            output_index: k,
            content_index: 0,
            part: { type: 'output_text', text: whole(k) },
          }),
        );
        out.push(named('response.output_item.done', { output_index: k, item: items[k] }));
      }
      out.push(
        named('response.completed', {
          response: { id: 'r1', status: 'completed', output: items, output_text: whole(0) + whole(1) },
        }),
      );
      return out;
    }
    default: {
      const out = [
        named('message_start', {
          message: {
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: 'c',
            content: [],
            usage: { input_tokens: 3, output_tokens: 1 },
          },
        }),
      ];
      for (const k of two ? [0, 1] : [0])
        out.push(named('content_block_start', { index: k, content_block: { type: 'text', text: '' } }));
      deltas.forEach((d, i) => {
        out.push(named('content_block_delta', { index: at(i), delta: { type: 'text_delta', text: d } }));
        if (i % 3 === 2) out.push(named('ping', {}));
      });
      for (const k of two ? [0, 1] : [0]) out.push(named('content_block_stop', { index: k }));
      out.push(named('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }));
      out.push(named('message_stop', {}));
      return out;
    }
  }
}

function eventsOfBlocks(format: StreamFormat, blocks: string[]): StreamEvent[] {
  return blocks.map((b) => classifyEvent(format, parseSse(b)[0], Buffer.from(b)));
}

async function* feed(events: StreamEvent[]): AsyncGenerator<StreamEvent> {
  for (const e of events) yield e;
}

type Path = 'reference' | 'events' | 'bytes';

async function run(
  path: Path,
  format: StreamFormat,
  events: StreamEvent[],
  policy: (typeof POLICIES)[number],
) {
  const t = outputTransform(policy.settings, undefined, policy.canaries ? { canaries: policy.canaries } : {});
  const cuts: string[] = [];
  const opts = { onCut: (r: string) => cuts.push(r) };
  const src = feed(events);
  const bytes =
    path === 'reference'
      ? eventBytes(referenceTransformEvents(format, src, t, opts))
      : path === 'events'
        ? eventBytes(transformEvents(format, src, t, opts))
        : transformedBytes(format, src, t, opts);
  const chunks: Buffer[] = [];
  for await (const b of bytes) chunks.push(Buffer.from(b));
  return { out: Buffer.concat(chunks).toString('utf8'), cuts, found: t.found() };
}

describe('transformedBytes: the same bytes as transformEvents before it', () => {
  it('property: any format, any split of the text, any output policy', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...FORMATS),
        fc.integer({ min: 0, max: POLICIES.length - 1 }),
        fc.array(fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 3 }), { maxLength: 14 }),
        fc.boolean(),
        async (format, p, parts, two) => {
          const events = eventsOfBlocks(
            format,
            streamOf(
              format,
              parts.map((x) => x.join('')),
              two,
            ),
          );
          const ref = await run('reference', format, events, POLICIES[p]!);
          expect(await run('events', format, events, POLICIES[p]!)).toEqual(ref);
          expect(await run('bytes', format, events, POLICIES[p]!)).toEqual(ref);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('the cases that change bytes do change them (the property is not vacuous)', async () => {
    const deltas = ['Your key is ', 'sk-proj-', 'Xk3T9qLm2VbN8rWz', '4HjP6sDf1GyQ0cEa', ' bye'];
    for (const format of FORMATS) {
      const blocks = streamOf(format, deltas, false);
      const events = eventsOfBlocks(format, blocks);
      const redacted = await run('bytes', format, events, POLICIES[0]!);
      expect(redacted.out).toContain('[REDACTED:');
      expect(redacted.out).not.toContain('Xk3T9qLm2VbN8rWz');
      expect(redacted).toEqual(await run('reference', format, events, POLICIES[0]!));
      const cut = await run('bytes', format, events, POLICIES[1]!);
      expect(cut.cuts).toHaveLength(1);
      expect(cut).toEqual(await run('reference', format, events, POLICIES[1]!));
      // Nothing to screen: the upstream's bytes exactly.
      const plain = eventsOfBlocks(format, streamOf(format, ['Hello', ' there', ' friend'], false));
      expect((await run('bytes', format, plain, POLICIES[0]!)).out).toBe(
        streamOf(format, ['Hello', ' there', ' friend'], false).join(''),
      );
    }
  });
});

/** A source the test feeds by hand; records pulls and whether it was closed. */
function controllable() {
  const queue: StreamEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let closed = 0;
  let pulled = 0;
  const iterable: AsyncIterable<StreamEvent> = {
    [Symbol.asyncIterator]: () => ({
      async next() {
        while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
        if (queue.length === 0) return { done: true, value: undefined };
        pulled++;
        return { done: false, value: queue.shift()! };
      },
      async return() {
        ended = true;
        closed++;
        wake?.();
        return { done: true, value: undefined };
      },
    }),
  };
  return {
    iterable,
    push(...xs: StreamEvent[]) {
      queue.push(...xs);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    pulled: () => pulled,
    closed: () => closed,
  };
}

const chat = (blocks: string[]) => eventsOfBlocks('chat', blocks);
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

describe('transformedBytes: streaming behaviour', () => {
  const blocks = streamOf(
    'chat',
    ['Hello', ' there sk-proj-', 'Xk3T9qLm2VbN8rWz4HjP6sDf1GyQ0cEa', ' bye'],
    false,
  );

  it('the first event (the role chunk) goes out before the source has a second one', async () => {
    const src = controllable();
    const out = transformedBytes('chat', src.iterable, outputTransform(DEFAULT_SCREENING))[
      Symbol.asyncIterator
    ]();
    const evs = chat(blocks);
    // 1. Only the role chunk exists: it comes out, and nothing more was pulled.
    src.push(evs[0]!);
    const first = await out.next();
    expect(text(first.value)).toBe(blocks[0]);
    expect(src.pulled()).toBe(1);
    // 2. A plain delta goes out as it came, byte for byte.
    src.push(evs[1]!);
    expect(text((await out.next()).value)).toBe(blocks[1]);
    // 3. A delta ending in a possible secret is sent without its tail; the tail waits for the next delta.
    src.push(evs[2]!);
    const third = text((await out.next()).value);
    expect(JSON.parse(parseSse(third)[0]!.data).choices[0].delta.content).toBe(' there ');
    src.push(...evs.slice(3));
    src.end();
    let rest = '';
    for (;;) {
      const r = await out.next();
      if (r.done) break;
      rest += text(r.value);
    }
    expect(rest).toContain('[REDACTED:');
    expect(rest).not.toContain('Xk3T9qLm2VbN8rWz');
    expect(rest.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('events in hand together go out as one chunk; a read that waits is not waited for', async () => {
    const src = controllable();
    const out = transformedBytes('chat', src.iterable, outputTransform(DEFAULT_SCREENING))[
      Symbol.asyncIterator
    ]();
    const plain = streamOf('chat', ['Hello', ' there', ' friend'], false);
    const evs = chat(plain);
    // 1. The role chunk alone: it goes out alone, though the source has nothing more yet.
    src.push(evs[0]!);
    expect(text((await out.next()).value)).toBe(plain[0]);
    // 2. Three deltas arrive together (one upstream chunk): one chunk, the three events' bytes.
    src.push(...evs.slice(1, 4));
    expect(text((await out.next()).value)).toBe(plain.slice(1, 4).join(''));
    // 3. The rest arrives together and the source ends: the last chunk, then done.
    src.push(...evs.slice(4));
    src.end();
    expect(text((await out.next()).value)).toBe(plain.slice(4).join(''));
    expect((await out.next()).done).toBe(true);
  });

  it('a source that fails after events in hand: those go out first, then the error', async () => {
    const evs = chat(streamOf('chat', ['Hello', ' there'], false));
    let n = 0;
    const failing: AsyncIterable<StreamEvent> = {
      [Symbol.asyncIterator]: () => ({
        async next() {
          if (n < 2) return { done: false, value: evs[n++]! };
          throw new Error('upstream broke');
        },
      }),
    };
    const out = transformedBytes('chat', failing, outputTransform(DEFAULT_SCREENING))[Symbol.asyncIterator]();
    expect(text((await out.next()).value)).toBe(text(evs[0]!.raw) + text(evs[1]!.raw));
    await expect(out.next()).rejects.toThrow('upstream broke');
  });

  it('a cut closes the source at once and ends the stream with the cut', async () => {
    const src = controllable();
    const s = { ...DEFAULT_SCREENING, output: { secrets: 'block' as const, pii: 'off' as const, deny: [] } };
    const cuts: string[] = [];
    const out = transformedBytes('chat', src.iterable, outputTransform(s), { onCut: (r) => cuts.push(r) })[
      Symbol.asyncIterator
    ]();
    // The role chunk, the deltas up to ' bye' (which completes the key); the source has no end.
    src.push(...chat(blocks).slice(0, 5));
    const got: string[] = [];
    for (;;) {
      const r = await out.next();
      if (r.done) break;
      got.push(text(r.value));
    }
    expect(cuts).toHaveLength(1);
    expect(src.closed()).toBe(1);
    const last = parseSse(got.join(''));
    expect(last.at(-1)?.data).toBe('[DONE]');
    expect(JSON.parse(last.at(-2)!.data).choices[0].finish_reason).toBe('content_filter');
    expect(got.join('')).not.toContain('Xk3T9qLm2VbN8rWz');
  });

  it('a consumer that leaves closes the source', async () => {
    const src = controllable();
    const out = transformedBytes('chat', src.iterable, outputTransform(DEFAULT_SCREENING))[
      Symbol.asyncIterator
    ]();
    src.push(chat(blocks)[0]!);
    await out.next();
    await out.return?.();
    expect(src.closed()).toBe(1);
    expect((await out.next()).done).toBe(true);
  });
});
