/**
 * Through the real pipeline (createGateway + inject, on the simulator's virtual clock): a campaign
 * across several keys is quarantined; the quarantined capability answers 403 SLUICE_QUARANTINED in
 * both wire formats while the keys' other capabilities still work.
 */
import { describe, expect, it } from 'vitest';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_SOURCE } from '../../src/config/resolve.js';

describe('quarantine in the request path', () => {
  it('refuses the campaign capability in OpenAI and Anthropic formats and leaves other capabilities alone', async () => {
    const lines: string[] = [];
    const keys = (g: string) => Array.from({ length: 8 }, (_, i) => `${g}${i}`);
    for (const k of [...keys('a'), ...keys('b')])
      lines.push(JSON.stringify({ type: 'key', name: k, tenant: `tenant-${k}`, tier: 'default' }));
    const chat = (text: string) => ({
      model: 'demo-model',
      messages: [{ role: 'user', content: text }],
      max_tokens: 50,
    });
    let t = 0;
    const tick = (dt: number) => {
      t += dt;
      return t;
    };
    // 1. Four lockstep rounds: group a on /v1/chat/completions, group b on /v1/messages, two proxies each.
    for (let round = 0; round < 4; round++) {
      for (const [i, k] of keys('a').entries())
        lines.push(
          JSON.stringify({
            type: 'request',
            t: tick(0.05),
            key: k,
            ip: i % 2 ? '192.0.2.10' : '192.0.2.77',
            path: '/v1/chat/completions',
            body: chat(`Write a five-star review for gadget ${round * 10 + i} mentioning fast shipping`),
          }),
        );
      for (const [i, k] of keys('b').entries())
        lines.push(
          JSON.stringify({
            type: 'request',
            t: tick(0.05),
            key: k,
            ip: i % 2 ? '198.51.100.10' : '198.51.100.77',
            path: '/v1/messages',
            headers: { 'anthropic-version': '2023-06-01' },
            body: chat(`Generate 10 social media posts promoting brand ${round * 10 + i} with hashtags`),
          }),
        );
      t += 10;
    }
    // 2. After the campaign: the same keys call the paused capability and another one.
    const probe = lines.length;
    lines.push(
      JSON.stringify({
        type: 'request',
        t: tick(1),
        key: 'a3',
        ip: '192.0.2.10',
        path: '/v1/chat/completions',
        body: chat('hello'),
      }),
    );
    lines.push(
      JSON.stringify({
        type: 'request',
        t: tick(1),
        key: 'a3',
        ip: '192.0.2.10',
        path: '/v1/embeddings',
        body: { model: 'demo-embed', input: 'hello' },
      }),
    );
    lines.push(
      JSON.stringify({
        type: 'request',
        t: tick(1),
        key: 'b5',
        ip: '198.51.100.10',
        path: '/v1/messages',
        headers: { 'anthropic-version': '2023-06-01' },
        body: chat('hello'),
      }),
    );
    lines.push(
      JSON.stringify({
        type: 'request',
        t: tick(1),
        key: 'b5',
        ip: '198.51.100.10',
        path: '/v1/chat/completions',
        body: chat('hello'),
      }),
    );
    const trace = parseTrace(lines.join('\n'));
    const r = await runSimulation({
      trace,
      traceName: 'campaign',
      source: { file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE) },
      seed: 1,
    });
    const d = r.decisions.slice(probe - 16).map((l) => JSON.parse(l));
    expect(d.map((x) => [x.status, x.code])).toEqual([
      [403, 'SLUICE_QUARANTINED'],
      [200, null],
      [403, 'SLUICE_QUARANTINED'],
      [200, null],
    ]);
    const q = r.report.actions.filter((a) => a.action === 'quarantine');
    expect(new Set(q.map((a) => a.capability))).toEqual(new Set(['chat.create', 'messages.create']));
    // Every member key is named (once per detector that caught it).
    expect([...new Set(q.map((a) => a.key))].sort()).toEqual([...keys('a'), ...keys('b')].sort());
  }, 120_000);
});
