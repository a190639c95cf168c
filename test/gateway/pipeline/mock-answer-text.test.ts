/**
 * Output screening reads a mock chat answer's text from the mock (`mockChatAnswerText`) instead of
 * parsing the bytes back (issue 11: `sluice simulate` speed). It must know the text of exactly the
 * bytes the mock wrote, and answers with several choices must be screened as before: all of them
 * rewritten when one finds something, none touched when nothing is found.
 */
import { describe, expect, it } from 'vitest';
import { MockUpstream, mockChatAnswerText } from '../../../src/providers/mock.js';
import { auth, BASE_YAML, harness } from './support.js';

const mock = () => new MockUpstream({ name: 'm', kind: 'mock', tokenDelay: 0, replyWords: 12 } as never);
const call = (endpoint: 'chat' | 'completions', body: Record<string, unknown>) =>
  mock().call({
    endpoint,
    body,
    stream: false,
    signal: new AbortController().signal,
    requestId: 'r1',
    headers: {},
  });

describe('the mock chat answer text output screening reads', () => {
  it('is every choice`s content of the bytes the mock wrote, and unknown once the body is replaced, or for another answer', async () => {
    const res = await call('chat', {
      model: 'demo-model',
      n: 3,
      max_tokens: 9,
      messages: [{ role: 'user', content: 'Tell me "about" \u00e9t\u00e9 and\nlines' }],
    });
    const bytes = res.body as Uint8Array;
    const text = mockChatAnswerText(res);
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
    expect(parsed.choices).toHaveLength(3);
    for (const c of parsed.choices) expect(c.message.content).toBe(text);
    // A copy of the same bytes, or another endpoint's answer, is not known: it is parsed as before.
    expect(mockChatAnswerText({ ...res, body: new Uint8Array(bytes) })).toBeUndefined();
    const completion = await call('completions', { model: 'demo-model', prompt: 'hi' });
    expect(mockChatAnswerText(completion)).toBeUndefined();
  });

  it('screens every choice of a mock answer as before: all redacted when one has a secret', async () => {
    const aws = `AKIA${'Q3WZ7YX2M5RKJH4T'}`;
    const h = harness({
      yaml: `${BASE_YAML}\nscreening:\n  secrets: { action: off }\n  output: { secrets: redact }\n`,
    });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: { model: 'mock-chat', n: 3, messages: [{ role: 'user', content: `${aws} please` }] },
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain(aws);
    const choices = res.json().choices;
    expect(choices).toHaveLength(3);
    for (const c of choices) expect(c.message.content).toContain('[REDACTED:aws-access-key]');
    expect(res.headers['x-sluice-screening-output']).toBe('secrets:aws-access-key');
  });

  it('passes a clean answer with several choices through as the mock wrote it', async () => {
    const h = harness({ yaml: `${BASE_YAML}\nscreening:\n  output: { secrets: redact, pii: redact }\n` });
    const payload = { model: 'mock-chat', n: 2, messages: [{ role: 'user', content: 'hello there' }] };
    const res = await h.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-sluice-screening-output']).toBeUndefined();
    const body = res.json();
    expect(body.choices).toHaveLength(2);
    expect(body.choices[0].message.content).toBe(body.choices[1].message.content);
    expect(body.choices[0].message.content).toMatch(/^This is a mock reply from Sluice to: hello there/);
  });
});
