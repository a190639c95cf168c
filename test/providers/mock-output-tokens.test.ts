import { describe, expect, it } from 'vitest';
import type { Endpoint, UpstreamRequest } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';
import { readAll } from './stub-server.js';

const mock = () =>
  new MockUpstream(
    { name: 'local', kind: 'mock', tokenDelay: 0, replyWords: 12 },
    { now: () => 1_700_000_000_000 },
  );

function req(endpoint: Endpoint, body: Record<string, unknown>, stream = false): UpstreamRequest {
  return { endpoint, body, stream, signal: new AbortController().signal, requestId: 'r1', headers: {} };
}

const CHAT = {
  model: 'demo-model',
  messages: [{ role: 'user', content: 'Summarise this ticket: the printer is on fire' }],
};

describe('mock upstream: output tokens reported for a simulation (trace upstream.outputTokens)', () => {
  it('reports the given output tokens in usage and leaves the answer bytes as they were', async () => {
    for (const [endpoint, body] of [
      ['chat', CHAT],
      ['embeddings', { model: 'demo-embed', input: 'hello world', dimensions: 8 }],
      ['images', { model: 'demo-image', prompt: 'a cat' }],
      [
        'messages',
        { model: 'claude-demo', max_tokens: 50, messages: [{ role: 'user', content: 'hi there' }] },
      ],
    ] as [Endpoint, Record<string, unknown>][]) {
      const own = await mock().call(req(endpoint, body));
      const given = await mock().call(req(endpoint, body), 321);
      expect(await readAll(given.body), endpoint).toBe(await readAll(own.body));
      const ownUsage = await own.usage;
      expect(await given.usage, endpoint).toEqual({ ...ownUsage, outputTokens: 321 });
      // Key order as before (what the simulation's wrapper gave: a spread of the mock's usage).
      expect(Object.keys(await given.usage)).toEqual(Object.keys(ownUsage));
    }
  });

  it('a stream reports them once it has ended, and without them its own count', async () => {
    const own = await mock().call(req('chat', { ...CHAT, stream: true }, true));
    await readAll(own.body);
    expect((await own.usage).outputTokens).toBe(12);
    const given = await mock().call(req('chat', { ...CHAT, stream: true }, true), 5);
    await readAll(given.body);
    expect(await given.usage).toEqual({
      inputTokens: (await own.usage).inputTokens,
      outputTokens: 5,
      images: 0,
    });
  });
});
