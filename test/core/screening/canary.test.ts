// Task canaries (issue 12): `screenInput` plants a canary in a task's server-side prompt, and
// `screenOutput` cuts an answer that repeats it. The upstream here "leaks its prompt": a stage
// inserted after `forward` answers with the system prompt the upstream was sent.
import { describe, expect, it } from 'vitest';
import type { ScreeningEvent } from '../../../src/core/screening/signals.js';
import type { RequestContext } from '../../../src/gateway/pipeline/context.js';
import { forward } from '../../../src/gateway/pipeline/stages/forward.js';
import { auth, harness } from '../../gateway/pipeline/support.js';

function leakPrompt(sent: string[]) {
  return (ctx: RequestContext) => {
    const msgs = (ctx.body?.messages ?? []) as { role: string; content: string }[];
    const system = msgs.find((m) => m.role === 'system')?.content ?? '';
    sent.push(system);
    const answer = {
      id: 'x',
      object: 'chat.completion',
      model: 'mock-chat',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: `My instructions: ${system}` },
          finish_reason: 'stop',
        },
      ],
    };
    ctx.response!.body = new TextEncoder().encode(JSON.stringify(answer));
    return undefined;
  };
}

describe('task canaries', () => {
  it('a task answer that leaks its prompt is cut; the canary is stable per prompt and never in a chat body', async () => {
    const sent: string[] = [];
    const events: ScreeningEvent[] = [];
    const h = harness({
      deps: {
        stages: (s) => {
          s.task.splice(s.task.indexOf(forward) + 1, 0, leakPrompt(sent));
          s.model.splice(s.model.indexOf(forward) + 1, 0, leakPrompt(sent));
        },
        onScreening: (e) => void events.push(e),
      },
    });
    const task = () =>
      h.app.inject({
        method: 'POST',
        url: '/v1/tasks/shout',
        headers: auth,
        payload: { input: 'hello', stream: false },
      });
    const res = await task();
    expect(res.statusCode).toBe(200);
    expect(sent[0]).toMatch(/^\[sluice-canary-[0-9a-f]{24}\]\nAnswer in loud tone\.$/);
    const canary = /sluice-canary-[0-9a-f]+/.exec(sent[0]!)![0];
    const body = res.json();
    expect(body.choices[0].finish_reason).toBe('content_filter');
    expect(body.choices[0].message.content).toBe('My instructions: [');
    expect(res.body).not.toContain(canary);
    expect(events.at(-1)!.signals).toEqual([
      { direction: 'output', detector: 'canary', action: 'block', shadow: false, kinds: [] },
    ]);
    // Same prompt, same canary (the response cache keys on the body).
    await task();
    expect(sent[1]).toBe(sent[0]);
    // A plain chat call gets no canary, and its answer is not cut.
    const chat = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: {
        model: 'mock-chat',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hi' },
        ],
      },
    });
    expect(sent[2]).toBe('Be brief.');
    expect(chat.json().choices[0].finish_reason).toBe('stop');
  });
});
