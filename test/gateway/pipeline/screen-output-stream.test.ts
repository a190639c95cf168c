/**
 * The screenOutput stage on streams: the output screener runs over text deltas through the
 * provider's event transform. A secret split over three chunks is redacted or cut well-formed, an
 * unaffected stream keeps its bytes, and what was found reaches the audit event.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import type { StreamFormat } from '../../../src/core/ports.js';
import { compileScreeningPolicy } from '../../../src/core/screening/policy.js';
import { outputTransform } from '../../../src/gateway/pipeline/stages/screen-output.js';
import { eventsOf } from '../../../src/providers/stream-events.js';
import { eventBytes, transformEvents } from '../../../src/providers/stream-transform.js';
import { auth, BASE_YAML, harness } from './support.js';

const KEY_PARTS = ['sk-proj-', 'Xk3T9qLm2VbN8rWz', '4HjP6sDf1GyQ0cEa'];
const yaml = (screening: string) => `${BASE_YAML}\nscreening:\n${screening}\n`;

function settings(output: string) {
  const cfg = parseConfig(yaml(`  secrets: { action: off }\n  output: ${output}`));
  return compileScreeningPolicy(cfg).settingsFor({
    keyId: 'k',
    tenantId: 't',
    tier: 'default',
  } as never);
}

const enc = new TextEncoder();
const chatChunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const chatStream = [
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`,
  chatChunk('Your key is '),
  ...KEY_PARTS.map(chatChunk),
  chatChunk(' keep it safe.'),
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
  'data: [DONE]\n\n',
];

async function* source(pieces: string[]) {
  for (const p of pieces) yield enc.encode(p);
}

async function run(format: StreamFormat, pieces: string[], output: string) {
  const t = outputTransform(settings(output));
  const cuts: string[] = [];
  const events = eventsOf(format, source(pieces), () => {});
  let out = '';
  for await (const b of eventBytes(transformEvents(format, events, t, { onCut: (r) => cuts.push(r) })))
    out += Buffer.from(b).toString('utf8');
  return { out, cuts, found: t.found() };
}

function chatText(sse: string): { text: string; finish: string[] } {
  let text = '';
  const finish: string[] = [];
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const c = JSON.parse(line.slice(6)).choices[0];
    text += c.delta?.content ?? '';
    if (c.finish_reason) finish.push(c.finish_reason);
  }
  return { text, finish };
}

describe('screenOutput on streams (event transform)', () => {
  it('redacts a secret split over three chunks', async () => {
    const r = await run('chat', chatStream, '{ secrets: redact }');
    expect(r.out).not.toContain(KEY_PARTS[1]);
    expect(r.out).not.toContain(KEY_PARTS[2]);
    const { text, finish } = chatText(r.out);
    expect(text).toBe('Your key is [REDACTED:openai-key] keep it safe.');
    expect(finish).toEqual(['stop']);
    expect(r.out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(r.found).toEqual(['secrets:openai-key']);
    expect(r.cuts).toEqual([]);
  });

  it('cuts the stream well-formed at a split secret when the policy says block', async () => {
    const r = await run('chat', chatStream, '{ secrets: block }');
    expect(r.out).not.toContain(KEY_PARTS[1]);
    const { text, finish } = chatText(r.out);
    expect(text).toBe('Your key is ');
    expect(finish).toEqual(['content_filter']);
    expect(r.out.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(r.cuts).toEqual(['secrets:openai-key']);
  });

  it('keeps the bytes of a stream with nothing to screen', async () => {
    const clean = [
      chatStream[0]!,
      chatChunk('Hello '),
      chatChunk('there.'),
      chatStream.at(-2)!,
      'data: [DONE]\n\n',
    ];
    const r = await run('chat', clean, '{ secrets: redact, pii: redact }');
    expect(r.out).toBe(clean.join(''));
    expect(r.found).toEqual([]);
  });

  it('redacts a split secret in an Anthropic messages stream', async () => {
    const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    const delta = (text: string) =>
      ev('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text },
      });
    const pieces = [
      ev('message_start', {
        type: 'message_start',
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'm',
          content: [],
          usage: { input_tokens: 3, output_tokens: 0 },
        },
      }),
      ev('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      }),
      delta('key: '),
      ...KEY_PARTS.map(delta),
      delta(' done'),
      ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
      ev('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { output_tokens: 9 },
      }),
      ev('message_stop', { type: 'message_stop' }),
    ];
    const r = await run('messages', pieces, '{ secrets: redact }');
    let text = '';
    for (const block of r.out.split('\n\n')) {
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (!data) continue;
      const d = JSON.parse(data.slice(6));
      if (d.type === 'content_block_delta') text += d.delta.text;
    }
    expect(text).toBe('key: [REDACTED:openai-key] done');
    expect(r.out).toContain('"stop_reason":"end_turn"');
  });
});

describe('screenOutput stage on a streamed answer', () => {
  const aws = `AKIA${'Q3WZ7YX2M5RKJH4T'}`;
  const chat = {
    model: 'mock-chat',
    stream: true,
    messages: [{ role: 'user', content: `${aws} please` }],
  };

  it('cuts a chat stream with content_filter and audits the cut', async () => {
    const h = harness({ yaml: yaml('  secrets: { action: off }\n  output: { secrets: block }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain(aws);
    expect(chatText(res.body).finish).toEqual(['content_filter']);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    await h.settled(res.headers['x-request-id'] as string);
    const ev = h.audit.at(-1)!;
    expect(ev.details?.screening).toEqual({
      output: { found: ['secrets:aws-access-key'], cut: 'secrets:aws-access-key' },
    });
  });

  it('redacts a secret in a chat stream', async () => {
    const h = harness({ yaml: yaml('  secrets: { action: off }\n  output: { secrets: redact }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: chat,
    });
    expect(res.body).not.toContain(aws);
    expect(chatText(res.body).text).toContain('[REDACTED:aws-access-key]');
    expect(chatText(res.body).finish).toEqual(['stop']);
  });
});

describe('screening verdicts in the audit event', () => {
  it('a flagged input puts kinds (never the text) in details.screening', async () => {
    const h = harness({ yaml: yaml('  pii: { action: flag }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: {
        model: 'mock-chat',
        messages: [{ role: 'user', content: 'mail jane.doe@example.com today' }],
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-sluice-screening']).toContain('pii=email');
    await h.settled(res.headers['x-request-id'] as string);
    const ev = h.audit.find((e) => e.details?.screening);
    expect(ev).toBeDefined();
    const s = ev!.details!.screening as { input: Record<string, unknown> };
    expect(s.input.pii).toMatchObject({ kinds: ['email'], action: 'flag' });
    expect(JSON.stringify(ev)).not.toContain('jane.doe');
  });

  it('a blocked input audits the verdict with its refusal', async () => {
    const h = harness({ yaml: yaml('  secrets: { action: block }') });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: {
        model: 'mock-chat',
        messages: [{ role: 'user', content: `key ${`AKIA${'Q3WZ7YX2M5RKJH4T'}`}` }],
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('SLUICE_CONTENT_BLOCKED');
    const ev = h.audit.find((e) => e.reason === 'SLUICE_CONTENT_BLOCKED');
    expect(ev).toBeDefined();
    expect((ev!.details!.screening as { input: Record<string, unknown> }).input.secrets).toMatchObject({
      kinds: ['aws-access-key'],
      action: 'block',
    });
  });
});
