/**
 * The mock stream's event view (`mockBatches`) classifies its pieces from the objects they were
 * written from instead of parsing its own bytes back (issue 11: `sluice simulate` speed). It must
 * give exactly the events a relayed stream's parser gives for the same bytes: `sseBatches` over the
 * byte view of the same answer, for every endpoint, with and without usage chunks, several choices,
 * cut-short replies, tool calls, JSON answers, any prompt text, and chunked by a token delay.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Endpoint, StreamEvent, UpstreamRequest } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';
import { sseBatches, streamFormatOf } from '../../src/providers/stream-events.js';

const NEVER = new AbortController().signal;

function request(endpoint: Endpoint, body: Record<string, unknown>): UpstreamRequest {
  return { endpoint, body, stream: true, signal: NEVER, requestId: 'r42', headers: {} };
}

/** The events as comparable values (raw bytes as text), batch by batch. */
function plain(batches: StreamEvent[][]): unknown[] {
  return batches.map((b) => b.map((e) => ({ ...e, raw: Buffer.from(e.raw).toString('utf8') })));
}

/** What the event view yields, batch by batch (a batch ends where the next `next()` had to wait). */
async function viaEvents(mock: MockUpstream, endpoint: Endpoint, body: Record<string, unknown>) {
  const res = await mock.call(request(endpoint, body));
  const all: StreamEvent[] = [];
  for await (const ev of res.events!) all.push(ev);
  return { all, usage: await res.usage };
}

/** What a parser makes of the byte view of the same answer. */
async function viaParser(mock: MockUpstream, endpoint: Endpoint, body: Record<string, unknown>) {
  const res = await mock.call(request(endpoint, body));
  const batches: StreamEvent[][] = [];
  for await (const b of sseBatches(streamFormatOf(endpoint)!, res.body as AsyncIterable<Uint8Array>))
    batches.push(b);
  return { batches, usage: await res.usage };
}

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer' } },
  required: ['city'],
};

function bodyFor(
  endpoint: Endpoint,
  prompt: string,
  o: { n: number; usage: boolean; maxTokens?: number; tools: boolean; json: boolean },
): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  if (o.maxTokens !== undefined)
    extra[endpoint === 'responses' ? 'max_output_tokens' : 'max_tokens'] = o.maxTokens;
  switch (endpoint) {
    case 'chat':
      return {
        model: 'demo-model',
        messages: [{ role: 'user', content: prompt }],
        n: o.n,
        ...(o.usage ? { stream_options: { include_usage: true } } : {}),
        ...(o.tools
          ? { tools: [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER } }] }
          : {}),
        ...(o.json ? { response_format: { type: 'json_object' } } : {}),
        ...extra,
      };
    case 'completions':
      return {
        model: 'demo-model',
        prompt,
        n: o.n,
        ...(o.usage ? { stream_options: { include_usage: true } } : {}),
        ...extra,
      };
    case 'responses':
      return {
        model: 'demo-model',
        input: prompt,
        ...(o.tools ? { tools: [{ type: 'function', name: 'get_weather', parameters: WEATHER }] } : {}),
        ...extra,
      };
    default:
      return {
        model: 'claude-demo',
        max_tokens: o.maxTokens ?? 256,
        messages: [{ role: 'user', content: prompt }],
        ...(o.tools ? { tools: [{ name: 'get_weather', input_schema: WEATHER }] } : {}),
      };
  }
}

describe('mock stream events', () => {
  it('equal the events a parser makes of the same bytes (whole streams)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Endpoint>('chat', 'completions', 'responses', 'messages'),
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          usage: fc.boolean(),
          maxTokens: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
          tools: fc.boolean(),
          json: fc.boolean(),
        }),
        fc.integer({ min: 1, max: 12 }),
        async (endpoint, prompt, o, words) => {
          const mock = new MockUpstream(
            { name: 'm', kind: 'mock', tokenDelay: 0, replyWords: words },
            { now: () => 1_767_225_600_000 },
          );
          const body = bodyFor(endpoint, prompt, o);
          const a = await viaEvents(mock, endpoint, body);
          const b = await viaParser(mock, endpoint, body);
          expect(plain([a.all])).toEqual(plain([b.batches.flat()]));
          expect(b.batches.length).toBe(1);
          expect(a.usage).toEqual(b.usage);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('equal them batch by batch when a token delay splits the stream into chunks', async () => {
    for (const endpoint of ['chat', 'completions', 'responses', 'messages'] as Endpoint[]) {
      const mock = new MockUpstream(
        { name: 'm', kind: 'mock', tokenDelay: 1, replyWords: 4 },
        { now: () => 0 },
      );
      const body = bodyFor(endpoint, 'naïve "quoted" 😀 text', {
        n: 2,
        usage: true,
        tools: false,
        json: false,
      });
      const res = await mock.call(request(endpoint, body));
      // The event view's batches, read through mockBatches' own grouping: events of one chunk arrive
      // together, so a batch is the run of events whose raw bytes share one underlying buffer.
      const evs: StreamEvent[] = [];
      for await (const ev of res.events!) evs.push(ev);
      const grouped: StreamEvent[][] = [];
      for (const ev of evs) {
        const last = grouped.at(-1);
        if (last && last[0]!.raw.buffer === ev.raw.buffer) last.push(ev);
        else grouped.push([ev]);
      }
      const b = await viaParser(mock, endpoint, body);
      expect(b.batches.length).toBeGreaterThan(2);
      expect(plain(grouped)).toEqual(plain(b.batches));
    }
  });
});
