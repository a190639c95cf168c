/**
 * The fast path of `sluice simulate` (gateway/pipeline/direct.ts, no Fastify) must decide exactly
 * as the real HTTP path (app.inject()) does: same status and code per trace line, same actions.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { generate } from '../../examples/scenarios/generate.mjs';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_SOURCE } from '../../src/config/resolve.js';

const defaultSource = () => ({ file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) });

/** A small mixed trace: a campaign, stuffing with bad keys, and hand-written odd requests. */
function mixedTrace(): string {
  const campaign = generate('template-campaign', 3, { duration: 120 }).text as string;
  const stuffing = generate('credential-stuffing', 4, { duration: 120 }).text as string;
  const lines = [...campaign.trim().split('\n'), ...stuffing.trim().split('\n')];
  const keys = new Map<string, string>();
  const reqs: { t: number; line: string }[] = [];
  for (const l of lines) {
    const o = JSON.parse(l);
    if (o.type === 'key') keys.set(o.name, l);
    else reqs.push({ t: o.t, line: l });
  }
  keys.set('odd', '{"type":"key","name":"odd","tenant":"odd","tier":"default"}');
  const odd = (t: number, rest: string) => `{"type":"request","t":${t},"key":"odd","ip":"10.9.0.1",${rest}}`;
  const chat = '{"model":"demo-model","messages":[{"role":"user","content":"hi"}]}';
  const extra = [
    odd(1, `"path":"/v1/models"`),
    odd(2, `"path":"/sluice/v1/me"`),
    odd(3, `"path":"/v1/nope","body":${chat}`),
    odd(4, `"method":"GET","path":"/v1/chat/completions"`),
    odd(5, `"path":"/v1/chat/completions","body":{"model":"demo-model"}`),
    odd(6, `"path":"/v1/chat/completions","headers":{"content-type":"text/plain"},"body":${chat}`),
    odd(
      7,
      `"path":"/v1/chat/completions","body":{"model":"demo-model","stream":true,"messages":[{"role":"user","content":"tell me"}]},"upstream":{"latencyMs":300}`,
    ),
    odd(
      8,
      `"path":"/v1/messages","body":{"model":"demo-model","max_tokens":20,"messages":[{"role":"user","content":"hi"}]},"upstream":{"status":500}`,
    ),
    odd(9, `"path":"/v1/chat/completions/","body":${chat},"upstream":{"status":429}`),
    odd(10, `"path":"/v1/tasks/summarize","body":{"input":"a long text"}`),
    odd(11, `"path":"/v1/embeddings","body":{"model":"demo-model","input":"x"}`),
    odd(12, `"path":"/v1/chat/completions","body":{"model":"demo-model","constructor":1,"messages":[]}`),
    `{"type":"request","t":13,"ip":"10.9.0.2","path":"/v1/chat/completions","body":${chat}}`.replace(
      '"ip"',
      '"authorization":"Basic abc","ip"',
    ),
    // Streams of every format (the mock's event view: test/providers/mock-stream-events.test.ts).
    odd(
      14,
      `"path":"/v1/messages","body":{"model":"claude-demo","max_tokens":30,"stream":true,"system":"be brief","messages":[{"role":"user","content":"naïve café 😀 tell me"}]},"upstream":{"latencyMs":200}`,
    ),
    odd(
      15,
      `"path":"/v1/completions","body":{"model":"demo-model","prompt":"once upon","stream":true,"n":2,"stream_options":{"include_usage":true}}`,
    ),
    odd(16, `"path":"/v1/responses","body":{"model":"demo-model","input":"hello there","stream":true}`),
    odd(
      17,
      `"path":"/v1/chat/completions","body":{"model":"demo-model","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"cut me short"}]}`,
    ),
  ].map((line, i) => ({ t: i + 1, line }));
  const all = [...reqs, ...extra].sort((a, b) => a.t - b.t);
  return [...keys.values(), ...all.map((r) => r.line)].join('\n');
}

describe('sluice simulate: direct path', () => {
  it('decides every line as the Fastify inject path does (statuses, codes, actions)', async () => {
    const trace = parseTrace(mixedTrace());
    expect(trace.requests.length).toBeGreaterThan(200);
    const direct = await runSimulation({ trace, traceName: 'm', source: defaultSource(), seed: 1 });
    const inject = await runSimulation({
      trace,
      traceName: 'm',
      source: defaultSource(),
      seed: 1,
      mode: 'inject',
    });
    expect(direct.decisions).toEqual(inject.decisions);
    expect(direct.report).toEqual(inject.report);
    // The trace is mixed enough to mean something: successes, refusals of several kinds, actions.
    const codes = new Set(direct.decisions.map((l) => JSON.parse(l).code));
    expect(codes.size).toBeGreaterThan(3);
    expect(direct.report.byStatus['200']).toBeGreaterThan(0);
    expect(direct.report.actions.length).toBeGreaterThan(0);
  }, 300_000);
});
