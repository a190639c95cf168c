/**
 * The detectors see a forwarded call when it is forwarded (stage `observe-abuse-start`) and its
 * output when it ends (`observe-abuse`): the upstream's latency is not part of a detector's delay,
 * and outputs are averaged over the calls that have ended.
 */
import { describe, expect, it } from 'vitest';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_SOURCE } from '../../src/config/resolve.js';
import { AnomalyDetectors, type Observation } from '../../src/core/anomaly/detectors.js';

const source = () => ({ file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) });

/** Six minutes of short chats, then image requests every 4 s that take the upstream 60 s each. */
function trace(): { text: string; shift: number } {
  const lines = ['{"type":"key","name":"bot","tenant":"acme","tier":"default"}'];
  const req = (t: number, path: string, body: object, latencyMs: number) =>
    lines.push(
      JSON.stringify({
        type: 'request',
        t,
        key: 'bot',
        ip: '198.51.100.7',
        path,
        body,
        upstream: { latencyMs },
      }),
    );
  let t = 0;
  for (let i = 0; i < 60; i++, t += 6)
    req(
      t,
      '/v1/chat/completions',
      { model: 'demo-model', messages: [{ role: 'user', content: `Where is order ${i}?` }] },
      500,
    );
  const shift = t;
  for (let i = 0; i < 10; i++, t += 4)
    req(
      t,
      '/v1/images/generations',
      { model: 'demo-image', prompt: `a poster of a famous mouse ${i}` },
      60_000,
    );
  return { text: lines.join('\n'), shift };
}

describe('abuse detection sees a call when it is forwarded', () => {
  for (const mode of ['direct', 'inject'] as const)
    it(`flags a style shift before the first slow answer has ended (${mode})`, async () => {
      const { text, shift } = trace();
      const r = await runSimulation({
        trace: parseTrace(text),
        traceName: 's',
        source: source(),
        seed: 1,
        mode,
      });
      const found = r.report.actions.filter((a) => a.detector === 'style-shift');
      expect(found.length).toBeGreaterThan(0);
      // The 4th image request is sent 12 s after the first; its answer would end 60 s after it.
      expect(found[0]!.t).toBeGreaterThanOrEqual(shift + 12);
      expect(found[0]!.t).toBeLessThan(shift + 60);
    }, 120_000);

  it('averages outputs over the calls that have ended, not the ones still running', () => {
    const T0 = Date.UTC(2026, 0, 1);
    const d = new AnomalyDetectors();
    const obs = (i: number, started: boolean, outputTokens: number): Observation => ({
      requestId: `r${i}`,
      keyId: 'k',
      tenantId: 't',
      ip: '198.51.100.7',
      userAgent: 'x',
      headerNames: [],
      endUser: null,
      started,
      action: 'chat.create',
      endpoint: 'chat',
      model: 'demo-model',
      prompt: `question ${i}`,
      inputTokens: 10,
      outputTokens,
      status: started ? 0 : 200,
    });
    // Ten minutes of calls of 100 output tokens, observed when they ended.
    for (let i = 0; i < 120; i++) d.observe(obs(i, false, 100), T0 + i * 5_000);
    // After a quiet 70 s, one call every 3 s, seen when forwarded; each ends 30 s later with 2,000 tokens.
    const found: string[] = [];
    const start = T0 + 670_000;
    for (let i = 0; i < 40; i++) {
      const at = start + i * 3_000;
      for (const f of d.observe(obs(200 + i, true, 0), at))
        if (f.detector === 'style-shift') found.push(f.reason);
      if (i >= 10) d.completed('k', 2_000, at);
    }
    expect(found.length).toBeGreaterThan(0);
    // 2,000 tokens a call that ended, not 2,000 x the ended calls / the calls started in the minute.
    expect(found[0]).toBe("answers of the last minute average 2000 output tokens, 20x this key's usual 100");
  });
});
