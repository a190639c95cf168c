/**
 * The mock honours tools and JSON output formats: every generated instance validates against its
 * schema (checked with Ajv, JSON Schema 2020-12 plus formats), the same request gets the same answer,
 * streams carry the same tool call or JSON as whole answers, and a tool-result turn gets text back.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import type { Endpoint, UpstreamResponse } from '../../src/core/ports.js';
import { MockUpstream } from '../../src/providers/mock.js';
import {
  countTokens,
  instanceOf,
  structuredAnswer,
  tokenPieces,
} from '../../src/providers/mock-structured.js';

const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

function valid(schema: object, value: unknown): boolean {
  const ok = ajv.validate(schema, value);
  if (!ok) console.error(JSON.stringify(value), ajv.errorsText());
  return ok;
}

const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 2 },
    unit: { type: 'string', enum: ['c', 'f'] },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
} as const;

const SCHEMAS: Record<string, object> = {
  weather: WEATHER,
  formats: {
    type: 'object',
    properties: {
      at: { type: 'string', format: 'date-time' },
      day: { type: 'string', format: 'date' },
      mail: { type: 'string', format: 'email' },
      link: { type: 'string', format: 'uri' },
      id: { type: 'string', format: 'uuid' },
    },
    required: ['at', 'day', 'mail', 'link', 'id'],
  },
  numbers: {
    type: 'object',
    properties: {
      ratio: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      step: { type: 'integer', multipleOf: 5, minimum: 11, maximum: 29 },
      neg: { type: 'number', maximum: -1000 },
    },
    required: ['ratio', 'step', 'neg'],
  },
  arrays: {
    type: 'object',
    properties: {
      tags: {
        type: 'array',
        items: { type: 'string', maxLength: 3 },
        minItems: 3,
        maxItems: 4,
        uniqueItems: true,
      },
      pair: { type: 'array', prefixItems: [{ type: 'integer' }, { type: 'boolean' }], items: false },
      none: { type: 'array', items: { type: 'number' }, maxItems: 0 },
    },
    required: ['tags', 'pair', 'none'],
  },
  unions: {
    type: 'object',
    properties: {
      maybe: { type: ['string', 'null'] },
      either: { anyOf: [{ type: 'integer', minimum: 3 }, { type: 'null' }] },
      fixed: { const: 'v1' },
      merged: {
        allOf: [
          { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
          { properties: { b: { type: 'boolean' } }, required: ['b'] },
        ],
      },
    },
    required: ['maybe', 'either', 'fixed', 'merged'],
  },
  // A recursive schema through $defs, as zod emits for z.lazy trees.
  tree: {
    $ref: '#/$defs/node',
    $defs: {
      node: {
        type: 'object',
        properties: {
          label: { type: 'string' },
          children: { type: 'array', items: { $ref: '#/$defs/node' } },
        },
        required: ['label', 'children'],
        additionalProperties: false,
      },
    },
  },
  scalar: { type: 'string', enum: ['only'] },
};

describe('instanceOf', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`generates a valid, deterministic instance: ${name}`, () => {
      for (const seed of ['a', 'b', 'a long prompt with words']) {
        const v = instanceOf(schema, seed);
        expect(valid(schema, v)).toBe(true);
        expect(instanceOf(schema, seed)).toEqual(v);
      }
    });
  }

  it('differs between seeds (the answer depends on the prompt)', () => {
    const seen = new Set(['p1', 'p2', 'p3', 'p4', 'p5'].map((s) => JSON.stringify(instanceOf(WEATHER, s))));
    expect(seen.size).toBeGreaterThan(1);
  });
});

describe('token helpers', () => {
  it('token pieces join back to the text, one piece per o200k token', async () => {
    const text = JSON.stringify({ city: 'Zürich — 東京', n: 42 });
    const pieces = await tokenPieces(text);
    expect(pieces.join('')).toBe(text);
    expect(pieces.length).toBeLessThanOrEqual(await countTokens(text));
    expect(pieces.length).toBeGreaterThan(5);
  });
});

const mock = new MockUpstream({ name: 'm', kind: 'mock', tokenDelay: 0, replyWords: 12 });

async function call(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  stream = false,
): Promise<{ res: UpstreamResponse; text: string }> {
  const res = await mock.call({
    endpoint,
    body,
    stream,
    signal: new AbortController().signal,
    requestId: 'r1',
    headers: {},
  });
  if (res.body instanceof Uint8Array) return { res, text: Buffer.from(res.body).toString('utf8') };
  let text = '';
  for await (const c of res.body) text += Buffer.from(c).toString('utf8');
  return { res, text };
}

function events(sse: string): Record<string, any>[] {
  return sse
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
}

const USER = { role: 'user', content: 'What is the weather in Paris?' };

describe('mock with tools', () => {
  it('chat: answers a tool call whose arguments validate, the same in the stream', async () => {
    const body = {
      model: 'demo-model',
      messages: [USER],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER } }],
    };
    const { res, text } = await call('chat', body);
    const j = JSON.parse(text);
    expect(j.choices[0].finish_reason).toBe('tool_calls');
    const tc = j.choices[0].message.tool_calls[0];
    expect(tc.function.name).toBe('get_weather');
    const args = JSON.parse(tc.function.arguments);
    expect(valid(WEATHER, args)).toBe(true);
    const usage = await res.usage;
    expect(usage.outputTokens).toBe(j.usage.completion_tokens);
    expect(usage.outputTokens).toBe(await countTokens(tc.function.arguments));

    const s = await call('chat', { ...body, stream: true, stream_options: { include_usage: true } }, true);
    const ev = events(s.text);
    const streamed = ev
      .flatMap((e) => e.choices?.[0]?.delta?.tool_calls?.map((t: any) => t.function.arguments) ?? [])
      .join('');
    expect(streamed).toBe(tc.function.arguments);
    expect(ev.find((e) => e.choices?.[0]?.finish_reason)?.choices[0].finish_reason).toBe('tool_calls');
    expect((await s.res.usage).outputTokens).toBe(usage.outputTokens);
  });

  it('chat: honours tool_choice naming a tool, and none', async () => {
    const tools = [
      { type: 'function', function: { name: 'first', parameters: { type: 'object', properties: {} } } },
      { type: 'function', function: { name: 'second', parameters: WEATHER } },
    ];
    const named = JSON.parse(
      (
        await call('chat', {
          messages: [USER],
          tools,
          tool_choice: { type: 'function', function: { name: 'second' } },
        })
      ).text,
    );
    expect(named.choices[0].message.tool_calls[0].function.name).toBe('second');
    const none = JSON.parse((await call('chat', { messages: [USER], tools, tool_choice: 'none' })).text);
    expect(none.choices[0].message.content).toMatch(/^This is a mock reply/);
  });

  it('chat: the tool-result turn gets text back', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER } }];
    const j = JSON.parse(
      (
        await call('chat', {
          messages: [
            USER,
            {
              role: 'assistant',
              content: null,
              tool_calls: [
                { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
              ],
            },
            { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
          ],
          tools,
        })
      ).text,
    );
    expect(j.choices[0].finish_reason).toBe('stop');
    expect(typeof j.choices[0].message.content).toBe('string');
  });

  it('responses: function_call item, streamed argument deltas, then text after function_call_output', async () => {
    const tools = [{ type: 'function', name: 'get_weather', parameters: WEATHER, strict: true }];
    const j = JSON.parse((await call('responses', { model: 'demo-model', input: 'Weather?', tools })).text);
    const item = j.output[0];
    expect(item.type).toBe('function_call');
    expect(valid(WEATHER, JSON.parse(item.arguments))).toBe(true);
    const s = events(
      (await call('responses', { model: 'demo-model', input: 'Weather?', tools, stream: true }, true)).text,
    );
    const deltas = s
      .filter((e) => e.type === 'response.function_call_arguments.delta')
      .map((e) => e.delta)
      .join('');
    expect(deltas).toBe(item.arguments);
    expect(s.at(-1)?.type).toBe('response.completed');
    const after = JSON.parse(
      (
        await call('responses', {
          model: 'demo-model',
          input: [
            { role: 'user', content: 'Weather?' },
            item,
            { type: 'function_call_output', call_id: item.call_id, output: '21' },
          ],
          tools,
        })
      ).text,
    );
    expect(after.output[0].type).toBe('message');
  });

  it('messages: tool_use block (forced by tool_choice), input_json_delta stream, text after tool_result', async () => {
    const tools = [{ name: 'get_weather', description: 'w', input_schema: WEATHER }];
    const body = {
      model: 'claude-demo',
      max_tokens: 1024,
      messages: [USER],
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
    };
    const j = JSON.parse((await call('messages', body)).text);
    expect(j.stop_reason).toBe('tool_use');
    expect(j.content[0].type).toBe('tool_use');
    expect(valid(WEATHER, j.content[0].input)).toBe(true);
    const s = events((await call('messages', { ...body, stream: true }, true)).text);
    const partial = s
      .filter((e) => e.delta?.type === 'input_json_delta')
      .map((e) => e.delta.partial_json)
      .join('');
    expect(JSON.parse(partial)).toEqual(j.content[0].input);
    const after = JSON.parse(
      (
        await call('messages', {
          ...body,
          tool_choice: undefined,
          messages: [
            USER,
            { role: 'assistant', content: j.content },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: j.content[0].id, content: '21' }] },
          ],
        })
      ).text,
    );
    expect(after.content[0].type).toBe('text');
    expect(after.stop_reason).toBe('end_turn');
  });
});

describe('mock with JSON output formats', () => {
  it('chat json_schema: valid JSON, whole and streamed alike', async () => {
    const body = {
      messages: [USER],
      response_format: { type: 'json_schema', json_schema: { name: 'w', strict: true, schema: WEATHER } },
    };
    const j = JSON.parse((await call('chat', body)).text);
    const content = j.choices[0].message.content;
    expect(valid(WEATHER, JSON.parse(content))).toBe(true);
    const s = events((await call('chat', { ...body, stream: true }, true)).text);
    expect(s.map((e) => e.choices?.[0]?.delta?.content ?? '').join('')).toBe(content);
  });

  it('chat json_object: a JSON object', async () => {
    const j = JSON.parse(
      (await call('chat', { messages: [USER], response_format: { type: 'json_object' } })).text,
    );
    expect(typeof JSON.parse(j.choices[0].message.content)).toBe('object');
  });

  it('responses text.format json_schema and messages output_format: valid JSON', async () => {
    const r = JSON.parse(
      (
        await call('responses', {
          input: 'Weather?',
          text: { format: { type: 'json_schema', name: 'w', schema: WEATHER } },
        })
      ).text,
    );
    expect(valid(WEATHER, JSON.parse(r.output[0].content[0].text))).toBe(true);
    const m = JSON.parse(
      (
        await call('messages', {
          max_tokens: 500,
          messages: [USER],
          output_format: { type: 'json_schema', schema: WEATHER },
        })
      ).text,
    );
    expect(valid(WEATHER, JSON.parse(m.content[0].text))).toBe(true);
  });

  it('max_tokens below the JSON length cuts it, with finish_reason length', async () => {
    const j = JSON.parse(
      (
        await call('chat', {
          messages: [USER],
          max_tokens: 3,
          response_format: { type: 'json_schema', json_schema: { name: 'w', schema: WEATHER } },
        })
      ).text,
    );
    expect(j.choices[0].finish_reason).toBe('length');
    expect(j.usage.completion_tokens).toBe(3);
  });

  it('plain requests stay prose', () => {
    expect(structuredAnswer('chat', { messages: [USER] }, 'x', 'r')).toBeNull();
    expect(structuredAnswer('completions', { prompt: 'x', tools: [] }, 'x', 'r')).toBeNull();
  });
});

describe('constraints moved into descriptions', () => {
  it('reads "minimum: 1; maximum: 7." as the AI SDK Anthropic provider writes it', () => {
    const wire = {
      type: 'object',
      properties: {
        days: { type: 'integer', description: 'minimum: 1; maximum: 7.' },
        code: { type: 'string', description: 'Country. min length: 3; max length: 3.' },
      },
      required: ['days', 'code'],
    };
    const strict = {
      type: 'object',
      properties: {
        days: { type: 'integer', minimum: 1, maximum: 7 },
        code: { type: 'string', minLength: 3, maxLength: 3 },
      },
      required: ['days', 'code'],
    };
    for (const seed of ['x', 'y', 'z', 'w']) expect(valid(strict, instanceOf(wire, seed))).toBe(true);
  });
});
