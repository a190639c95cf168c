/**
 * The simulator hands each trace line's own parse of the body to the direct path instead of parsing
 * the text it sends again (DirectInput.body). That is exact only if (1) nothing in the pipeline
 * changes a body in place, so a trace replays the same however often it is run, and (2) a body with
 * a -0 (sent as 0) is parsed from the sent text instead.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { generate } from '../../examples/scenarios/generate.mjs';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_SOURCE } from '../../src/config/resolve.js';

const source = () => ({ file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) });

describe('simulator: the trace line`s parse of the body reused', () => {
  it('leaves every body of the trace as it was parsed, so a second run decides the same', async () => {
    const text = generate('template-campaign', 5, { duration: 60 }).text as string;
    const trace = parseTrace(text);
    const pristine = parseTrace(text).requests.map((r) => r.body);
    expect(trace.requests.length).toBeGreaterThan(100);
    const first = await runSimulation({ trace, traceName: 't', source: source(), seed: 1 });
    expect(trace.requests.map((r) => r.body)).toEqual(pristine);
    const second = await runSimulation({ trace, traceName: 't', source: source(), seed: 1 });
    expect(second.decisions).toEqual(first.decisions);
    expect(second.report).toEqual(first.report);
  }, 120_000);

  it('parses a body with a -0 from the text it sends, and decides it as the HTTP path does', async () => {
    const key = '{"type":"key","name":"k","tenant":"t","tier":"default"}';
    const req = (t: number, body: string) =>
      `{"type":"request","t":${t},"key":"k","ip":"198.51.100.7","path":"/v1/chat/completions","body":${body}}`;
    const text = [
      key,
      req(0, '{"model":"demo-model","max_tokens":-0,"messages":[{"role":"user","content":"hi"}]}'),
      req(1, '{"model":"demo-model","temperature":-0.0,"n":1,"messages":[{"role":"user","content":"hi"}]}'),
      req(2, '{"model":"demo-model","messages":[{"role":"user","content":"hello"}]}'),
    ].join('\n');
    const trace = parseTrace(text);
    expect(trace.requests.map((r) => r.reparse === true)).toEqual([true, true, false]);
    const direct = await runSimulation({ trace, traceName: 'z', source: source(), seed: 1 });
    const inject = await runSimulation({ trace, traceName: 'z', source: source(), seed: 1, mode: 'inject' });
    expect(direct.decisions).toEqual(inject.decisions);
  }, 120_000);
});
