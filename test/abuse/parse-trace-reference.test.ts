/**
 * `parseTrace` lost its per-line closures (issue 11: simulate speed); it must accept, reject and
 * describe every trace exactly as the code it replaced (a verbatim copy in reference/): the same
 * keys and requests, or the same TraceError message, for valid lines and for every way a field can
 * be wrong. `scanTrace`, which parses request lines only when the run reaches them, must end in the
 * same keys and requests, and refuse the same traces.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTrace, scanTrace, type TraceRequest } from '../../src/abuse/simulator.js';
import { parseTraceReference } from './reference/parse-trace-reference.js';

function outcome(parse: (text: string) => unknown, text: string): unknown {
  try {
    return { ok: parse(text) };
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message };
  }
}

/** A value that is sometimes right for a field and often wrong in one of the ways a trace can be. */
const anyValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ maxLength: 6 }),
  fc.constantFrom(
    '',
    '/v1/chat/completions',
    '/v1/models',
    'v1/x',
    '203.0.113.9',
    '2001:db8::1',
    'k1',
    'k2',
    'GET',
    'post',
  ),
  fc.integer({ min: -5, max: 700 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(
    fc.constantFrom('User-Agent', 'x-a', 'latencyMs', 'outputTokens', 'status', '__proto__'),
    fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -1, max: 700 }), fc.constant(null)),
    { maxKeys: 3 },
  ),
);

const keyLine = fc.record(
  {
    type: fc.constant('key'),
    name: fc.oneof(fc.constantFrom('k1', 'k2'), anyValue),
    tenant: fc.oneof(fc.constant('t'), anyValue),
    tier: fc.oneof(fc.constant('default'), anyValue),
    project: anyValue,
    expires: anyValue,
    scopes: anyValue,
    models: anyValue,
  },
  { requiredKeys: ['type'] },
);

const requestLine = fc.record(
  {
    type: fc.constant('request'),
    t: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(0.5, 1.25, 2.5), anyValue),
    key: fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), anyValue),
    authorization: anyValue,
    ip: fc.oneof(fc.constantFrom('198.51.100.7', '2001:db8::2'), anyValue),
    method: anyValue,
    path: fc.oneof(fc.constantFrom('/v1/chat/completions', '/v1/models', '/sluice/v1/me'), anyValue),
    headers: anyValue,
    body: fc.oneof(
      anyValue,
      fc.constant({ model: 'm', messages: [{ role: 'user', content: 'on 2024-01-05 -0' }] }),
    ),
    upstream: anyValue,
  },
  { requiredKeys: ['type'] },
);

/** A request whose only variable part is its time (to exercise the time order). */
const timedLine = fc
  .constantFrom(0, 0.5, 1, 1.25, 2.5, 2.4999)
  .map((t) => JSON.stringify({ type: 'request', t, key: 'k1', ip: '198.51.100.7', path: '/v1/models' }));

const line = fc.oneof(
  timedLine,
  keyLine.map((o) => JSON.stringify(o)),
  requestLine.map((o) => JSON.stringify(o)),
  fc.constantFrom(
    '',
    '   ',
    'not json',
    '[1,2]',
    '"x"',
    '{"type":"other"}',
    'null',
    '{"type":"request","t":-0,"key":"k1","ip":"1.2.3.4","path":"/v1/x","body":{"a":-0}}',
  ),
);

describe('parseTrace', () => {
  it('accepts and rejects exactly as the code it replaced, with the same messages', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.boolean(), (lines, crlf) => {
        const text = lines.join(crlf ? '\r\n' : '\n');
        expect(outcome(parseTrace, text)).toEqual(outcome(parseTraceReference, text));
      }),
      { numRuns: 3000 },
    );
  });

  it('parses a valid trace into the same keys and requests', () => {
    const text = [
      '{"type":"key","name":"k1","tenant":"t","tier":"default","scopes":["chat.*"],"expires":"1h"}',
      '{"type":"request","t":0,"key":"k1","ip":"198.51.100.7","path":"/v1/chat/completions","headers":{"User-Agent":"openai-node/4.77.0","X-Sluice-End-User":"u1"},"body":{"model":"m","messages":[{"role":"user","content":"hi"}]},"upstream":{"latencyMs":850,"outputTokens":143}}',
      '{"type":"request","t":0.4,"authorization":"Bearer nope","ip":"2001:db8::1","path":"/v1/models"}',
      '{"type":"request","t":1,"key":"k1","ip":"198.51.100.7","path":"/v1/embeddings","body":{"input":"on 2024-01-05"},"upstream":{"status":500}}',
    ].join('\n');
    const got = parseTrace(text);
    expect(got).toEqual(parseTraceReference(text));
    expect(got.requests.map((r) => [r.method, r.reparse ?? false])).toEqual([
      ['POST', false],
      ['GET', false],
      ['POST', true],
    ]);
    expect(got.requests[0]!.headers).toEqual({
      'user-agent': 'openai-node/4.77.0',
      'x-sluice-end-user': 'u1',
    });
  });
});

/** `scanTrace`, then every request read in order, as the simulation reads them. */
function scanAll(text: string): { keys: unknown; requests: TraceRequest[] } {
  const t = scanTrace(Buffer.from(text));
  const requests: TraceRequest[] = [];
  for (let i = 0; i < t.requests.length; i++) requests.push(t.requests.at(i)!);
  // Asking again for the request just read gives it again; past the end, nothing.
  if (requests.length > 0) expect(t.requests.at(requests.length - 1)).toBe(requests.at(-1));
  expect(t.requests.at(requests.length)).toBeUndefined();
  return { keys: t.keys, requests };
}

/** A line that is always valid (given keys k1 and k2 declared first, and times that only grow). */
const validLine = fc.oneof(
  fc.constantFrom(
    '{"type":"request","t":9,"key":"k1","ip":"198.51.100.7","path":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"héllo 2024-01-05"}]}}',
    '{"type":"request","t":9,"authorization":"Bearer x","ip":"2001:db8::1","path":"/v1/models"}',
    '  {"t":9,"type":"request","key":"k2","ip":"198.51.100.7","path":"/v1/embeddings","body":{"input":"x"}}',
    '{"type":"request","t":9,"key":"k1","ip":"198.51.100.7","path":"/v1/chat/completions","body":{"a":-0}}\r',
    '',
    '  ',
  ),
);
const KEYS =
  '{"type":"key","name":"k1","tenant":"t","tier":"default"}\n{"type":"key","name":"k2","tenant":"t","tier":"default"}';

describe('scanTrace', () => {
  it('ends in the same keys and requests as parseTrace, and refuses the same traces', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.boolean(), (lines, crlf) => {
        const text = lines.join(crlf ? '\r\n' : '\n');
        const eager = outcome(parseTrace, text) as { ok?: unknown; error?: string };
        const lazy = outcome(scanAll, text) as { ok?: unknown; error?: string };
        if (eager.ok) expect(lazy).toEqual(eager);
        else expect(lazy.error).toBe('TraceError');
      }),
      { numRuns: 3000 },
    );
  });

  it('names the same line and field as parseTrace when one line is wrong', () => {
    fc.assert(
      fc.property(
        fc.array(validLine, { maxLength: 5 }),
        line,
        fc.array(validLine, { maxLength: 5 }),
        (before, odd, after) => {
          const text = [KEYS, ...before, odd, ...after].join('\n');
          expect(outcome(scanAll, text)).toEqual(outcome(parseTrace, text));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('reads a trace with a byte-order mark, CRLF line ends and no final newline', () => {
    const text = `\ufeff${KEYS}\r\n{"type":"request","t":0,"key":"k1","ip":"10.0.0.1","path":"/v1/models"}\r\n{"type":"request","t":1,"key":"k2","ip":"10.0.0.1","path":"/v1/models"}`;
    const got = scanAll(text);
    expect(got).toEqual(parseTrace(text));
    expect(got.requests.map((r) => r.line)).toEqual([3, 4]);
  });

  it('refuses a request line whose JSON names the type twice, the second time not "request"', () => {
    const text = `${KEYS}\n{"type":"request","t":0,"key":"k1","ip":"10.0.0.1","path":"/v1/models","type":"key","name":"k3","tenant":"t","tier":"default"}`;
    expect(() => scanAll(text)).toThrow(/line 3: field "type" is given twice/);
  });
});
