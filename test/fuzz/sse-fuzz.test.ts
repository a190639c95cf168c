/**
 * Generated upstream SSE streams (valid events, garbage, invalid UTF-8, odd line ends, bogus usage
 * numbers, huge lines) split at random points, ending cleanly, with a reset, or with a stall, sent
 * by a stub upstream through a real `sluice serve` to a client, in both wire formats. For every
 * stream: the client's response completes; a stream the upstream broke ends with a well-formed
 * error event; nothing Sluice adds is malformed. Afterwards: one audit event per request, a sane
 * usage row for every answered stream, and a healthy process.
 */
import fc from 'fast-check';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../e2e/harness.js';
import {
  countBy,
  type FaultStub,
  isWireError,
  readRecords,
  type StubScript,
  sseData,
  startFaultStub,
  waitFor,
} from '../faults/support.js';
import { fuzzParams, fuzzTimeout } from './fuzz-config.js';

let s: SluiceProcess;
let stub: FaultStub;
let key: string;
const agent = new Agent({ connections: 2 });

beforeAll(async () => {
  stub = await startFaultStub();
  const dir = tempDir('sluice-ssefuzz-');
  const timeouts = '{ headers: 2s, body: 300ms }';
  const config = writeConfig(
    dir,
    `upstreams:
  - { name: oa, kind: openai, baseUrl: "${stub.url}", timeouts: ${timeouts} }
  - { name: an, kind: anthropic, baseUrl: "${stub.origin}", timeouts: ${timeouts} }
models:
  - { match: "script-oa*", upstream: oa }
  - { match: "script-an*", upstream: an }
tiers: { default: {} }
hardening: { authFailures: { perIp: 1000000, window: 1m } }
`,
  );
  s = await startSluice({ config, dataDir: dir });
  ({ key } = await createKey(s));
});
afterAll(async () => {
  await agent.close();
  if (s) {
    expect(await s.stop()).toBe(0);
    expect(s.output()).not.toMatch(/unhandled error|Unhandled|TypeError|RangeError/);
  }
  await stub?.close();
});

// --- generators ----------------------------------------------------------------------------------

const num = fc.oneof(
  fc.nat({ max: 5000 }),
  fc.constantFrom(-5, 1e300, 1.5, '12', null, Number.MAX_SAFE_INTEGER + 2),
);
const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }));
const ev = (data: unknown, event?: string) =>
  `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;

const openaiEvent = fc.oneof(
  {
    weight: 5,
    arbitrary: text.map((t) =>
      ev({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: t } }] }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(num, num).map(([p, c]) =>
      ev({
        id: 'c',
        object: 'chat.completion.chunk',
        choices: [],
        usage: { prompt_tokens: p, completion_tokens: c },
      }),
    ),
  },
  { weight: 1, arbitrary: fc.constant('data: [DONE]\n\n') },
);
const anthropicEvent = fc.oneof(
  {
    weight: 1,
    arbitrary: num.map((n) =>
      ev(
        {
          type: 'message_start',
          message: {
            id: 'm',
            type: 'message',
            role: 'assistant',
            content: [],
            usage: { input_tokens: n, output_tokens: 1 },
          },
        },
        'message_start',
      ),
    ),
  },
  {
    weight: 5,
    arbitrary: text.map((t) =>
      ev(
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } },
        'content_block_delta',
      ),
    ),
  },
  {
    weight: 1,
    arbitrary: num.map((n) =>
      ev(
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: n } },
        'message_delta',
      ),
    ),
  },
  { weight: 1, arbitrary: fc.constant(ev({ type: 'message_stop' }, 'message_stop')) },
  { weight: 1, arbitrary: fc.constant(ev({ type: 'ping' }, 'ping')) },
);
const garbage: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.constantFrom(
    ': keep-alive\n\n',
    'retry: 10\n',
    'id: 7\n',
    '\ufeff',
    '\r\n',
    '\r',
    '\n\n\n',
    'event: error\ndata: {"error":{}}\n\n',
    'data: {"choices":[{"delta":\n\n',
    'data:\n\n',
    'data: null\n\n',
    'data: [1,2\n\n',
  ),
  fc.string({ maxLength: 40 }).map((x) => `data: ${x}\n\n`),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }),
  fc.constant(`data: ${'x'.repeat(50_000)}\n\n`),
);

interface Case {
  format: 'openai' | 'anthropic';
  script: StubScript;
}

const caseArb: fc.Arbitrary<Case> = fc
  .tuple(
    fc.constantFrom<'openai' | 'anthropic'>('openai', 'anthropic'),
    fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }), {
      minLength: 1,
      maxLength: 12,
    }),
    fc.array(fc.nat(), { maxLength: 6 }),
    fc.oneof(
      { weight: 13, arbitrary: fc.constant<'end'>('end') },
      { weight: 6, arbitrary: fc.constant<'reset'>('reset') },
      { weight: 1, arbitrary: fc.constant<'stall'>('stall') },
    ),
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(200) },
      { weight: 1, arbitrary: fc.constantFrom(400, 429, 500, 503) },
    ),
    fc.infiniteStream(openaiEvent),
    fc.infiniteStream(anthropicEvent),
    fc.infiniteStream(garbage),
  )
  .map(([format, kinds, cuts, end, status, oa, an, junk]) => {
    const events = format === 'openai' ? oa : an;
    const pieces = kinds.map(
      (k) => (k === 0 ? events.next().value : junk.next().value) as string | Uint8Array,
    );
    const whole = Buffer.concat(
      pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))),
    );
    // Split the bytes at random points: lines, CRLFs and UTF-8 characters get cut anywhere.
    const at = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const c of [...at, whole.length]) {
      if (c > from) chunks.push(whole.subarray(from, c));
      from = c;
    }
    return {
      format,
      script: {
        status,
        headers: { 'content-type': status === 200 ? 'text/event-stream' : 'application/json' },
        chunks,
        delayMs: 2,
        end,
      },
    };
  });

interface Result {
  id: string;
  status: number;
  c: Case;
}
const results: Result[] = [];
let n = 0;

describe('fuzz: SSE from the upstream to the client', () => {
  it(
    'garbage, split and broken streams: the client always gets a complete, well-formed end',
    async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const id = String(n++);
          stub.scripts.set(id, c.script);
          const anthropic = c.format === 'anthropic';
          const r = await undiciFetch(`${s.url}${anthropic ? '/v1/messages' : '/v1/chat/completions'}`, {
            method: 'POST',
            dispatcher: agent,
            headers: {
              ...(anthropic ? { 'x-api-key': key } : { authorization: `Bearer ${key}` }),
              'content-type': 'application/json',
            },
            body: JSON.stringify({
              model: anthropic ? 'script-an' : 'script-oa',
              x_script: id,
              stream: true,
              max_tokens: 50,
              messages: [{ role: 'user', content: 'x' }],
            }),
            signal: AbortSignal.timeout(10_000),
          });
          // 1. The body always completes (a broken upstream never breaks the client's connection).
          const body = await r.text();
          stub.scripts.delete(id);
          results.push({ id: r.headers.get('x-request-id')!, status: r.status, c });
          const problem = (why: string) =>
            new Error(`${why}\nstatus ${r.status} body: ${JSON.stringify(body.slice(-300))}`);
          const sluiceError = r.status >= 500 && r.status !== c.script.status;
          if (sluiceError) {
            // 2. An error Sluice made is in the caller's format.
            if (!isWireError(c.format, JSON.parse(body))) throw problem('Sluice error not in wire format');
            return;
          }
          if (r.status !== 200 || !(r.headers.get('content-type') ?? '').includes('event-stream')) return;
          // 3. A stream the upstream broke ends with one complete error event in the caller's format.
          if (c.script.end !== 'end') {
            if (!body.endsWith('\n\n')) throw problem('broken stream does not end on an event boundary');
            const events = sseData(body);
            const last = JSON.parse(events.at(-1)!);
            // (The Anthropic provider's interruption event carries no SLUICE code: accepted as Anthropic-shaped.)
            if (!isWireError(c.format, last, { anthropicCode: false }))
              throw problem('broken stream does not end with a wire-format error');
            if (anthropic && !/event: error\r?\ndata: [^\n]*\n\n$/.test(body))
              throw problem('anthropic error event lacks event: error');
          } else if (body.includes('(SLUICE_UPSTREAM') || body.includes('"code":"SLUICE_UPSTREAM')) {
            // 4. A clean end gets nothing appended.
            throw problem('an error event was added to a stream the upstream ended cleanly');
          }
        }),
        fuzzParams(1),
      );
    },
    fuzzTimeout(1),
  );

  it('one audit event per request, a sane usage row for every answered stream, a healthy process', async () => {
    expect(results.length).toBeGreaterThan(0);
    const rec = await waitFor(() => {
      const x = readRecords(s.dataDir);
      const a = countBy(x.audit);
      return results.every((r) => a.get(r.id) === 1) ? x : undefined;
    });
    expect(rec).toBeDefined();
    const usage = await waitFor(() => {
      const u = countBy(readRecords(s.dataDir).usage);
      return results.filter((r) => r.status === 200).every((r) => u.get(r.id) === 1)
        ? readRecords(s.dataDir).usage
        : undefined;
    });
    expect(usage).toBeDefined();
    for (const u of usage!) {
      for (const v of [u.input_tokens, u.output_tokens]) {
        // Finite and non-negative. (Not bounded: an upstream's absurd report is kept as is, see the
        // known-bug test in test/faults/upstream-faults.test.ts.)
        expect(Number.isInteger(v) && v >= 0, `usage ${JSON.stringify(u)}`).toBe(true);
      }
    }
    expect([...countBy(usage!).values()].every((x) => x === 1)).toBe(true);
    const h = await undiciFetch(`${s.url}/healthz`, { dispatcher: agent });
    expect(h.status).toBe(200);
  });
});
