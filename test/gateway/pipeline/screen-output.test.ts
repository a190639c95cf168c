/** The screenOutput stage in process on whole answers: redact, cut with a content-filter ending, deny list. */
import { describe, expect, it } from 'vitest';
import { auth, BASE_YAML, harness } from './support.js';

// Short enough for the mock's echo, which shortens long words.
const aws = `AKIA${'Q3WZ7YX2M5RKJH4T'}`;
const yaml = (screening: string) => `${BASE_YAML}\nscreening:\n${screening}\n`;
// Input secret screening off, so the mock upstream (which echoes the prompt) answers with the key.
const chat = { model: 'mock-chat', messages: [{ role: 'user', content: `${aws} please` }] };

describe('screenOutput stage', () => {
  it('redacts a secret in a chat answer', async () => {
    const h = harness({ yaml: yaml('  secrets: { action: off }\n  output: { secrets: redact }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain(aws);
    expect(res.json().choices[0].message.content).toContain('[REDACTED:aws-access-key]');
    expect(res.headers['x-sluice-screening-output']).toBe('secrets:aws-access-key');
  });

  it('cuts a chat answer at the secret with finish_reason content_filter when the policy says block', async () => {
    const h = harness({ yaml: yaml('  secrets: { action: off }\n  output: { secrets: block }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    const choice = res.json().choices[0];
    expect(choice.finish_reason).toBe('content_filter');
    expect(choice.message.content).toBe('This is a mock reply from Sluice to: ');
  });

  it('cuts an Anthropic answer on a deny word with stop_reason refusal', async () => {
    const h = harness({ yaml: yaml('  output: { deny: ["mock reply"] }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: auth,
      payload: { model: 'mock-chat', max_tokens: 50, messages: [{ role: 'user', content: 'hello' }] },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().stop_reason).toBe('refusal');
    expect(res.json().content[0].text).toBe('This is a ');
  });

  it('leaves an answer with nothing to screen byte for byte as the upstream sent it', async () => {
    const h = harness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: { model: 'mock-chat', messages: [{ role: 'user', content: 'hello there' }] },
    });
    expect(res.headers['x-sluice-screening-output']).toBeUndefined();
    expect(res.json().choices[0].finish_reason).toBe('stop');
  });
});
