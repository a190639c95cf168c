/**
 * Content screening end to end (issue 12): `sluice serve` in front of a loopback stub upstream,
 * called with the real `openai` and `@anthropic-ai/sdk` clients. Input block / redact / flag on
 * chat, responses, messages and embeddings; a secret the upstream streams split over three chunks
 * is redacted or the stream is cut well-formed (the SDKs parse it without error); and a screened
 * stream arrives incrementally: the stub holds its second chunk until the client has the first.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from './harness.js';

const KEY_PARTS = ['sk-proj-', 'Xk3T9qLm2VbN8rWz', '4HjP6sDf1GyQ0cEa'];
const AWS = `AKIA${'Q3WZ7YX2M5RKJH4T'}`;

const received: { url: string; body: any }[] = [];
/** Resolved by a test when its client has received the first streamed text (the gated stream waits on it). */
let gate: { wait: Promise<void>; open: () => void } | null = null;

function newGate() {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  gate = { wait, open };
  return gate;
}

const sse = (res: ServerResponse, data: unknown, event?: string) =>
  res.write(
    `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`,
  );

async function streamChat(res: ServerResponse, body: any, pieces: string[], gated: boolean) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: unknown, finish: string | null = null) => ({
    id: 'chatcmpl-stub',
    object: 'chat.completion.chunk',
    created: 1,
    model: body.model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  sse(res, chunk({ role: 'assistant', content: '' }));
  for (let i = 0; i < pieces.length; i++) {
    sse(res, chunk({ content: pieces[i] }));
    if (i === 0 && gated && gate) await gate.wait;
  }
  sse(res, chunk({}, 'stop'));
  sse(res, {
    id: 'chatcmpl-stub',
    object: 'chat.completion.chunk',
    created: 1,
    model: body.model,
    choices: [],
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  });
  sse(res, '[DONE]');
  res.end();
}

async function streamMessages(res: ServerResponse, body: any, pieces: string[]) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  sse(
    res,
    {
      type: 'message_start',
      message: {
        id: 'msg_stub',
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 5, output_tokens: 0 },
      },
    },
    'message_start',
  );
  sse(
    res,
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    'content_block_start',
  );
  for (const p of pieces)
    sse(
      res,
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } },
      'content_block_delta',
    );
  sse(res, { type: 'content_block_stop', index: 0 }, 'content_block_stop');
  sse(
    res,
    {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 5 },
    },
    'message_delta',
  );
  sse(res, { type: 'message_stop' }, 'message_stop');
  res.end();
}

let stub: Server;
let s: SluiceProcess;
const keys: Record<'redact' | 'block' | 'flag', string> = { redact: '', block: '', flag: '' };

beforeAll(async () => {
  stub = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : {};
      const url = req.url ?? '';
      received.push({ url, body });
      const leak = JSON.stringify(body).includes('leak');
      const pieces = leak
        ? ['Your key is ', ...KEY_PARTS, ' keep it safe.']
        : ['Hello ', 'there ', 'friend.'];
      if (body.stream && url.endsWith('/chat/completions')) return void streamChat(res, body, pieces, !leak);
      if (body.stream && url.endsWith('/messages')) return void streamMessages(res, body, pieces);
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.endsWith('/embeddings'))
        return void res.end(
          JSON.stringify({
            object: 'list',
            data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
            model: body.model,
            usage: { prompt_tokens: 3, total_tokens: 3 },
          }),
        );
      if (url.endsWith('/responses'))
        return void res.end(
          JSON.stringify({
            id: 'resp_stub',
            object: 'response',
            created_at: 1,
            status: 'completed',
            model: body.model,
            output: [
              {
                type: 'message',
                id: 'msg_1',
                status: 'completed',
                role: 'assistant',
                content: [{ type: 'output_text', text: 'ok', annotations: [] }],
              },
            ],
            usage: { input_tokens: 3, output_tokens: 1, total_tokens: 4 },
          }),
        );
      if (url.endsWith('/messages'))
        return void res.end(
          JSON.stringify({
            id: 'msg_stub',
            type: 'message',
            role: 'assistant',
            model: body.model,
            content: [{ type: 'text', text: 'ok' }],
            stop_reason: 'end_turn',
            stop_sequence: null,
            usage: { input_tokens: 3, output_tokens: 1 },
          }),
        );
      res.end(
        JSON.stringify({
          id: 'chatcmpl-stub',
          object: 'chat.completion',
          created: 1,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
        }),
      );
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  const stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  const dir = tempDir('sluice-screening-');
  const config = writeConfig(
    dir,
    `
upstreams:
  - { name: oa, kind: openai, baseUrl: "${stubUrl}/v1", apiKey: up-openai-secret }
  - { name: an, kind: anthropic, baseUrl: "${stubUrl}", apiKey: up-anthropic-secret }
models:
  - { match: "claude-*", upstream: an }
  - { match: "*", upstream: oa }
screening:
  injection: { action: flag }
  secrets: { action: redact }
  pii: { action: flag }
  output: { secrets: redact }
tiers:
  redact: {}
  flag:
    screening:
      secrets: { action: flag }
  block:
    screening:
      secrets: { action: block }
      output: { secrets: block }
`,
  );
  s = await startSluice({ dataDir: dir, config });
  for (const t of ['redact', 'block', 'flag'] as const) keys[t] = (await createKey(s, [], 'acme', t)).key;
}, 120_000);

afterAll(async () => {
  await s?.stop();
  await new Promise<void>((r) => stub.close(() => r()));
});

const openai = (tier: keyof typeof keys) =>
  new OpenAI({ baseURL: `${s.url}/v1`, apiKey: keys[tier], maxRetries: 0 });
const anthropic = (tier: keyof typeof keys) =>
  new Anthropic({ baseURL: s.url, apiKey: keys[tier], maxRetries: 0 });
const lastTo = (suffix: string) =>
  JSON.stringify([...received].reverse().find((r) => r.url.endsWith(suffix))?.body);

describe('streamed output', () => {
  it('openai chat stream: a secret split over three chunks is redacted and the SDK parses the stream', async () => {
    const stream = await openai('redact').chat.completions.create({
      model: 'gpt-stub',
      stream: true,
      messages: [{ role: 'user', content: 'leak it' }],
    });
    let text = '';
    const finish: string[] = [];
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.choices[0]?.finish_reason) finish.push(c.choices[0].finish_reason);
    }
    expect(text).toBe('Your key is [REDACTED:openai-key] keep it safe.');
    expect(finish).toEqual(['stop']);
  });

  it('openai chat stream: block cuts at the secret with finish_reason content_filter', async () => {
    const stream = await openai('block').chat.completions.create({
      model: 'gpt-stub',
      stream: true,
      messages: [{ role: 'user', content: 'leak it' }],
    });
    let text = '';
    const finish: string[] = [];
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.choices[0]?.finish_reason) finish.push(c.choices[0].finish_reason);
    }
    expect(text).toBe('Your key is ');
    expect(text).not.toContain(KEY_PARTS[1]);
    expect(finish).toEqual(['content_filter']);
  });

  it('anthropic messages stream: redacted, and a block ends with stop_reason refusal', async () => {
    const red = anthropic('redact').messages.stream({
      model: 'claude-stub',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'leak it' }],
    });
    const m = await red.finalMessage();
    expect(m.content[0]).toMatchObject({
      type: 'text',
      text: 'Your key is [REDACTED:openai-key] keep it safe.',
    });
    const blk = anthropic('block').messages.stream({
      model: 'claude-stub',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'leak it' }],
    });
    const b = await blk.finalMessage();
    expect(JSON.stringify(b.content)).not.toContain(KEY_PARTS[1]);
    expect(b.stop_reason).toBe('refusal');
  });

  it('a screened stream arrives incrementally: the 2nd chunk is sent only after the client has the 1st', async () => {
    const g = newGate();
    const stream = await openai('redact').chat.completions.create({
      model: 'gpt-stub',
      stream: true,
      messages: [{ role: 'user', content: 'say hello' }],
    });
    let text = '';
    for await (const c of stream) {
      const d = c.choices[0]?.delta?.content ?? '';
      // The stub waits on the gate after 'Hello ': were the stream buffered, this would never arrive.
      if (d.length > 0 && text === '') g.open();
      text += d;
    }
    expect(text).toBe('Hello there friend.');
    gate = null;
  });
});

describe('input screening with the real SDKs', () => {
  it('block → 400 SLUICE_CONTENT_BLOCKED on chat, responses, embeddings (OpenAI) and messages (Anthropic)', async () => {
    const oa = openai('block');
    // Thunks, called one at a time: promises created together would reject while an earlier one
    // is awaited, before their handler is attached, and Node reports that as unhandled.
    const calls: (() => Promise<unknown>)[] = [
      () =>
        oa.chat.completions.create({
          model: 'gpt-stub',
          messages: [{ role: 'user', content: `use ${AWS}` }],
        }),
      () => oa.responses.create({ model: 'gpt-stub', input: `use ${AWS}` }),
      () => oa.embeddings.create({ model: 'emb-stub', input: `use ${AWS}` }),
    ];
    for (const call of calls) {
      const err = await call().then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.status).toBe(400);
      expect(err.code).toBe('SLUICE_CONTENT_BLOCKED');
      expect(JSON.stringify(err.error)).not.toContain(AWS);
    }
    const err = await anthropic('block')
      .messages.create({
        model: 'claude-stub',
        max_tokens: 10,
        messages: [{ role: 'user', content: `use ${AWS}` }],
      })
      .then(
        () => null,
        (e) => e,
      );
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err.status).toBe(400);
    expect(err.message).toContain('SLUICE_CONTENT_BLOCKED');
    expect(received.some((r) => JSON.stringify(r.body).includes(AWS))).toBe(false);
  });

  it('redact → the upstream receives [REDACTED:aws-access-key] on every endpoint', async () => {
    const oa = openai('redact');
    await oa.chat.completions.create({
      model: 'gpt-stub',
      messages: [{ role: 'user', content: `use ${AWS}` }],
    });
    expect(lastTo('/chat/completions')).toContain('[REDACTED:aws-access-key]');
    await oa.responses.create({ model: 'gpt-stub', input: `use ${AWS}` });
    expect(lastTo('/responses')).toContain('[REDACTED:aws-access-key]');
    await oa.embeddings.create({ model: 'emb-stub', input: `use ${AWS}` });
    expect(lastTo('/embeddings')).toContain('[REDACTED:aws-access-key]');
    await anthropic('redact').messages.create({
      model: 'claude-stub',
      max_tokens: 10,
      messages: [{ role: 'user', content: `use ${AWS}` }],
    });
    expect(lastTo('/messages')).toContain('[REDACTED:aws-access-key]');
    expect(received.some((r) => JSON.stringify(r.body).includes(AWS))).toBe(false);
  });

  it('flag → forwarded unchanged with an x-sluice-screening header', async () => {
    const oa = openai('flag');
    const text = `use ${AWS}`;
    const chat = await oa.chat.completions
      .create({ model: 'gpt-stub', messages: [{ role: 'user', content: text }] })
      .withResponse();
    expect(chat.response.headers.get('x-sluice-screening')).toContain('secrets=aws-access-key');
    expect(lastTo('/chat/completions')).toContain(AWS);
    const resp = await oa.responses.create({ model: 'gpt-stub', input: text }).withResponse();
    expect(resp.response.headers.get('x-sluice-screening')).toContain('secrets=aws-access-key');
    const emb = await oa.embeddings.create({ model: 'emb-stub', input: text }).withResponse();
    expect(emb.response.headers.get('x-sluice-screening')).toContain('secrets=aws-access-key');
    const msg = await anthropic('flag')
      .messages.create({ model: 'claude-stub', max_tokens: 10, messages: [{ role: 'user', content: text }] })
      .withResponse();
    expect(msg.response.headers.get('x-sluice-screening')).toContain('secrets=aws-access-key');
    expect(lastTo('/messages')).toContain(AWS);
  });
});
