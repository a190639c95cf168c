import { encode } from 'gpt-tokenizer';
import { describe, expect, it } from 'vitest';
import {
  estimateInputTokens,
  estimateRequest,
  IMAGE_INPUT_TOKENS,
  MESSAGE_OVERHEAD_TOKENS,
} from '../../../src/core/limits/estimate.js';

const opts = { defaultOutputTokens: 4096 };

describe('estimateRequest', () => {
  it('input is ⌈UTF-8 bytes / 3⌉ of the text plus a per-message overhead', () => {
    const body = {
      messages: [
        { role: 'system', content: 'abc' },
        { role: 'user', content: 'é'.repeat(3) },
      ],
    };
    // "abc" 3 bytes + "ééé" 6 bytes (+ role strings "system" 6 and "user" 4) = 19 bytes → 7, + 2 messages.
    expect(estimateInputTokens(body)).toBe(Math.ceil(19 / 3) + 2 * MESSAGE_OVERHEAD_TOKENS);
  });

  it('is above the real token count for prose and CJK, and within 15% below it for dense code and symbols', () => {
    const above = [
      'The quick brown fox jumps over the lazy dog. '.repeat(40),
      '東京は日本の首都であり、世界最大の都市圏の一つです。'.repeat(20),
    ];
    const near = [
      'function add(a, b) {\n  return a + b;\n}\nconsole.log(add(2, 3));\n'.repeat(20),
      'Ünïcödé façade — naïve café, 123 456 789.'.repeat(30),
    ];
    const est = (text: string) =>
      estimateRequest('chat', { messages: [{ role: 'user', content: text }] }, opts).inputTokens;
    for (const text of above) expect(est(text)).toBeGreaterThanOrEqual(encode(text).length);
    for (const text of near) {
      expect(est(text)).toBeGreaterThanOrEqual(0.85 * encode(text).length);
      expect(est(text)).toBeLessThanOrEqual(2 * encode(text).length);
    }
  });

  it('output is max_tokens, max_completion_tokens or max_output_tokens, times the choices', () => {
    expect(estimateRequest('chat', { messages: [], max_tokens: 100 }, opts).outputTokens).toBe(100);
    expect(
      estimateRequest('chat', { messages: [], max_completion_tokens: 70, n: 3 }, opts).outputTokens,
    ).toBe(210);
    expect(estimateRequest('responses', { input: 'hi', max_output_tokens: 55 }, opts).outputTokens).toBe(55);
    expect(
      estimateRequest('completions', { prompt: 'hi', max_tokens: 10, best_of: 4, n: 2 }, opts).outputTokens,
    ).toBe(40);
    expect(estimateRequest('messages', { messages: [] }, opts).outputTokens).toBe(4096);
  });

  it('embeddings produce no output; image generation counts n images (default 1)', () => {
    expect(estimateRequest('embeddings', { input: ['a', 'b'], max_tokens: 99 }, opts)).toMatchObject({
      outputTokens: 0,
      images: 0,
    });
    expect(estimateRequest('images', { prompt: 'a cat' }, opts)).toMatchObject({
      outputTokens: 0,
      images: 1,
    });
    expect(estimateRequest('images', { prompt: 'a cat', n: 4 }, opts).images).toBe(4);
  });

  it('an image part costs a fixed amount, not its base64 bytes', () => {
    const data = `data:image/png;base64,${'A'.repeat(1_000_000)}`;
    const openai = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what?' },
            { type: 'image_url', image_url: { url: data } },
          ],
        },
      ],
    };
    const t = estimateInputTokens(openai);
    expect(t).toBeGreaterThanOrEqual(IMAGE_INPUT_TOKENS);
    expect(t).toBeLessThan(IMAGE_INPUT_TOKENS + 20);
    const anthropic = {
      messages: [
        { role: 'user', content: [{ type: 'image', source: { type: 'base64', data: 'A'.repeat(500_000) } }] },
      ],
    };
    expect(estimateInputTokens(anthropic)).toBeLessThan(IMAGE_INPUT_TOKENS + 20);
  });

  it('counts token-id prompts one per id, and system, instructions and tools as text', () => {
    expect(estimateInputTokens({ prompt: [1, 2, 3, 4, 5] })).toBe(5);
    expect(estimateInputTokens({ input: [[1, 2], [3]] })).toBe(3 + 2 * MESSAGE_OVERHEAD_TOKENS);
    expect(estimateInputTokens({ system: 'x'.repeat(30), instructions: 'y'.repeat(30) })).toBe(20);
    expect(
      estimateInputTokens({
        tools: [{ type: 'function', function: { name: 'get', description: 'z'.repeat(24) } }],
      }),
    ).toBeGreaterThanOrEqual(8);
    expect(estimateInputTokens({ model: 'gpt-4o', temperature: 0.5 })).toBe(0);
  });
});
