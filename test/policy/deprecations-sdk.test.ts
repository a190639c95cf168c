/**
 * Deprecations through the real SDKs over a real socket: the openai SDK exposes the Deprecation,
 * Sunset and Link headers of a served call, and after the sunset both the openai and the
 * @anthropic-ai/sdk clients surface the 410 message naming the replacement (and do not retry).
 */
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { BASE_YAML, harness, KEY } from '../gateway/pipeline/support.js';

const YAML = `${BASE_YAML}
deprecations:
  - match: { model: "legacy-*" }
    announced: 2023-11-01
    sunset: 2023-12-01
    replacement: mock-chat
    link: https://example.com/notices/legacy
`;

describe('deprecations seen by the SDKs', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  async function serve() {
    const h = harness({ yaml: YAML });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => h.app.close());
    let requests = 0;
    h.app.server.on('request', () => requests++);
    const port = (h.app.server.address() as AddressInfo).port;
    return { h, port, requests: () => requests };
  }

  it('openai: headers before the sunset, APIError 410 with the replacement after', async () => {
    const { h, port, requests } = await serve();
    const client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 2 });
    const { response } = await client.chat.completions
      .create({ model: 'legacy-chat', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(response.headers.get('deprecation')).toBe(`@${Date.parse('2023-11-01') / 1000}`);
    expect(response.headers.get('sunset')).toBe('Fri, 01 Dec 2023 00:00:00 GMT');
    expect(response.headers.get('link')).toContain('rel="deprecation"');

    h.clock.t = Date.parse('2023-12-01T00:00:01Z');
    const err = await client.chat.completions
      .create({ model: 'legacy-chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(410);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('SLUICE_SUNSET');
    expect((err as Error).message).toContain(
      'model "legacy-chat" was retired on 2023-12-01; use "mock-chat" instead',
    );
    expect(requests()).toBe(2);
  });

  it('anthropic: APIError 410 whose message names the replacement and the code', async () => {
    const { h, port, requests } = await serve();
    h.clock.t = Date.parse('2024-01-01T00:00:00Z');
    const client = new Anthropic({ apiKey: KEY, baseURL: `http://127.0.0.1:${port}`, maxRetries: 2 });
    const err = await client.messages
      .create({ model: 'legacy-chat', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(410);
    // The SDK's message is the status and the JSON body; the parsed body is on `.error`.
    expect((err as Error).message).toMatch(/^410 .*retired on 2023-12-01.*mock-chat.*SLUICE_SUNSET/);
    expect((err as InstanceType<typeof Anthropic.APIError>).error).toEqual({
      type: 'error',
      error: {
        type: 'not_found_error',
        message: expect.stringContaining(
          'use "mock-chat" instead (see https://example.com/notices/legacy) (SLUICE_SUNSET)',
        ),
      },
    });
    expect(requests()).toBe(1);
  });
});
