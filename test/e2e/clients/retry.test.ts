/**
 * With a 5-per-hour limit, every client surfaces its rate-limit error quickly instead of sleeping
 * until the window reopens (issue 15). Before the fix openai and @anthropic-ai/sdk slept the whole
 * `retry-after-ms` (an hour): these tests hung. Each client runs with its default retry settings.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { ChatAnthropic } from '@langchain/anthropic';
import { ChatOpenAI } from '@langchain/openai';
import { generateText } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientEnv, startClients } from './support.js';

let env: ClientEnv;
beforeAll(async () => {
  env = await startClients(`
upstreams: [{ name: local, kind: mock }]
models: [{ match: "*", upstream: local }]
tiers:
  default:
    limits:
      - { id: rph, requests: 5, window: 1h }
`);
  // 1. Spend the hour's five requests.
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${env.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(r.status).toBe(200);
  }
}, 120_000);
afterAll(async () => {
  await env?.s.stop();
});

/** Runs `call`, which must reject, and returns the error and the seconds it took. */
async function timed(call: () => Promise<unknown>): Promise<{ err: unknown; seconds: number }> {
  const t0 = performance.now();
  const err = await call().then(
    () => new Error('expected a rate-limit error'),
    (e: unknown) => e,
  );
  return { err, seconds: (performance.now() - t0) / 1000 };
}

describe('a 5-per-hour limit, spent', () => {
  it('the 429 says when the window reopens, with x-should-retry: false and no more than the window', async () => {
    const r = await fetch(`${env.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(r.status).toBe(429);
    expect(r.headers.get('x-should-retry')).toBe('false');
    const wait = Number(r.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(3000);
    // The exact reopening time: never longer than the window (it was up to one slot, 60 s, more).
    expect(wait).toBeLessThanOrEqual(3600);
    const err = (await r.json()).error;
    expect(err.code).toBe('SLUICE_RATE_LIMITED');
    expect(err.message).toMatch(/the window reopens in [\dhms.]+ \(at \d{4}-\d\d-\d\dT[\d:]+Z\)/);
  });

  it('openai SDK (default maxRetries 2): RateLimitError within 5 s', async () => {
    const c = new OpenAI({ baseURL: env.v1, apiKey: env.key });
    const { err, seconds } = await timed(() =>
      c.chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(seconds).toBeLessThan(5);
  });

  it('@anthropic-ai/sdk (default maxRetries 2): RateLimitError within 5 s', async () => {
    const c = new Anthropic({ baseURL: env.origin, apiKey: env.key });
    const { err, seconds } = await timed(() =>
      c.messages.create({
        model: 'claude-demo',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(seconds).toBeLessThan(5);
  });

  it('LangChain ChatOpenAI and ChatAnthropic (default maxRetries 6): a rate-limit error within 5 s', async () => {
    for (const m of [
      new ChatOpenAI({ model: 'demo-model', apiKey: env.key, configuration: { baseURL: env.v1 } }),
      new ChatAnthropic({ model: 'claude-demo', apiKey: env.key, anthropicApiUrl: env.origin }),
    ]) {
      const { err, seconds } = await timed(() => m.invoke('hi'));
      expect((err as { status?: number }).status).toBe(429);
      expect(seconds).toBeLessThan(5);
    }
  });

  it('AI SDK (default maxRetries 2): its own fixed backoff (2 s + 4 s) for waits over 60 s; no retry with maxRetries 0', async () => {
    // The AI SDK retries every 429 and ignores x-should-retry; with retry-after over 60 s it backs off
    // 2 s then 4 s. No header can shorten that, so the default surfaces in ~6 s (docs/clients.md).
    for (const model of [
      createOpenAI({ baseURL: env.v1, apiKey: env.key }).chat('demo-model'),
      createAnthropic({ baseURL: env.v1, apiKey: env.key })('claude-demo'),
    ]) {
      const dflt = await timed(() => generateText({ model, prompt: 'hi' }));
      expect(String(dflt.err)).toMatch(/429|Rate limit/i);
      expect(dflt.seconds).toBeLessThan(9);
      const none = await timed(() => generateText({ model, prompt: 'hi', maxRetries: 0 }));
      expect((none.err as { statusCode?: number }).statusCode).toBe(429);
      expect(none.seconds).toBeLessThan(5);
    }
  }, 30_000);
});
