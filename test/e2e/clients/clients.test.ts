/**
 * Every popular client works unchanged against `sluice serve` on the embedded default (issue 15):
 * openai, @anthropic-ai/sdk, the AI SDK (ai + @ai-sdk/openai + @ai-sdk/anthropic) and LangChain
 * (@langchain/openai + @langchain/anthropic), each with the base URL docs/clients.md gives.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { ChatAnthropic } from '@langchain/anthropic';
import { tool as lcTool } from '@langchain/core/tools';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { embed, generateImage, generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ClientEnv, startClients } from './support.js';

let env: ClientEnv;
beforeAll(async () => {
  env = await startClients();
}, 120_000);
afterAll(async () => {
  await env?.s.stop();
});

const Weather = z.object({
  city: z.string(),
  unit: z.enum(['c', 'f']),
  days: z.number().int().min(1).max(7),
});

describe('openai SDK', () => {
  const client = () => new OpenAI({ baseURL: env.v1, apiKey: env.key, maxRetries: 0 });

  it('chat, stream, embeddings, images, Responses, models.retrieve, moderations', async () => {
    const c = client();
    const r = await c.chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(r.choices[0]!.message.content).toMatch(/^This is a mock reply/);
    const s = await c.chat.completions.create({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
    });
    let text = '';
    for await (const ch of s) text += ch.choices[0]?.delta.content ?? '';
    expect(text).toBe(r.choices[0]!.message.content);
    const e = await c.embeddings.create({ model: 'demo-embed', input: 'hello' });
    expect(e.data[0]!.embedding.length).toBe(1536);
    const img = await c.images.generate({ model: 'demo-image', prompt: 'a cat' });
    expect(img.data?.[0]?.b64_json).toBeTruthy();
    const resp = await c.responses.create({ model: 'demo-model', input: 'Hello' });
    expect(resp.output_text).toMatch(/^This is a mock reply/);
    const m = await c.models.retrieve('demo-model');
    expect(m).toMatchObject({ id: 'demo-model', object: 'model' });
    const mod = await c.moderations.create({ input: ['fine text', 'more text'] });
    expect(mod.results).toHaveLength(2);
    expect(mod.results[0]!.flagged).toBe(false);
    expect(mod.results[0]!.categories.violence).toBe(false);
  });

  it('tools: a schema-valid tool call, then text after the tool result', async () => {
    const c = client();
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
            required: ['city', 'days'],
          },
        },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await c.chat.completions.create({ model: 'demo-model', messages, tools });
    const call = first.choices[0]!.message.tool_calls?.[0];
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '{}');
    expect(typeof args.city).toBe('string');
    expect(args.days).toBeGreaterThanOrEqual(1);
    messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call!.id, content: '21C' });
    const second = await c.chat.completions.create({ model: 'demo-model', messages, tools });
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(second.choices[0]!.message.content).toBeTruthy();
  });

  it('structured output: chat.completions.parse and responses.parse with zod', async () => {
    const c = client();
    const parsed = await c.chat.completions.parse({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      response_format: zodResponseFormat(Weather, 'weather'),
    });
    expect(Weather.safeParse(parsed.choices[0]!.message.parsed).success).toBe(true);
    const stream = c.chat.completions.stream({
      model: 'demo-model',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      response_format: zodResponseFormat(Weather, 'weather'),
    });
    const final = await stream.finalChatCompletion();
    expect(Weather.safeParse(final.choices[0]!.message.parsed).success).toBe(true);
  });
});

describe('@anthropic-ai/sdk', () => {
  const client = () => new Anthropic({ baseURL: env.origin, apiKey: env.key, maxRetries: 0 });

  it('messages, stream, count_tokens, models.retrieve', async () => {
    const c = client();
    const m = await c.messages.create({
      model: 'claude-demo',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(m.content[0]?.type === 'text' && m.content[0].text).toMatch(/^This is a mock reply/);
    const s = c.messages.stream({
      model: 'claude-demo',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    const final = await s.finalMessage();
    expect(final.stop_reason).toBe('end_turn');
    const count = await c.messages.countTokens({
      model: 'claude-demo',
      messages: [{ role: 'user', content: 'Hello, how many tokens is this?' }],
    });
    expect(count.input_tokens).toBeGreaterThan(5);
    expect(count.input_tokens).toBeLessThan(30);
    const model = await c.models.retrieve('claude-demo');
    expect(model).toMatchObject({ id: 'claude-demo', type: 'model' });
  });

  it('tools: tool_use forced by tool_choice, streamed, then text after tool_result', async () => {
    const c = client();
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_weather',
        description: 'weather',
        input_schema: {
          type: 'object',
          properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
          required: ['city', 'unit'],
        },
      },
    ];
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather?' }];
    const s = c.messages.stream({
      model: 'claude-demo',
      max_tokens: 1024,
      messages,
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
    });
    const m = await s.finalMessage();
    expect(m.stop_reason).toBe('tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    expect(use?.type === 'tool_use' && (use.input as { unit: string }).unit).toMatch(/^[cf]$/);
    messages.push(
      { role: 'assistant', content: m.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use!.id, content: '21' }] },
    );
    const after = await c.messages.create({ model: 'claude-demo', max_tokens: 1024, messages, tools });
    expect(after.content[0]?.type).toBe('text');
  });
});

describe('AI SDK', () => {
  const openai = () => createOpenAI({ baseURL: env.v1, apiKey: env.key });
  const anthropic = () => createAnthropic({ baseURL: env.v1, apiKey: env.key });

  it('generateText and streamText over Responses, chat and Messages', async () => {
    const a = await generateText({ model: openai()('demo-model'), prompt: 'Hello' });
    expect(a.text).toMatch(/^This is a mock reply/);
    const b = await generateText({ model: openai().chat('demo-model'), prompt: 'Hello' });
    expect(b.text).toMatch(/^This is a mock reply/);
    const c = streamText({ model: anthropic()('claude-demo'), prompt: 'Hello' });
    expect(await c.text).toMatch(/^This is a mock reply/);
    expect((await c.usage).outputTokens).toBeGreaterThan(0);
  });

  it('tools run a full loop: tool call, execute, final text', async () => {
    for (const model of [openai()('demo-model'), openai().chat('demo-model'), anthropic()('claude-demo')]) {
      const seen: unknown[] = [];
      const r = await generateText({
        model,
        prompt: 'Weather in Rome?',
        tools: {
          weather: tool({
            description: 'weather',
            inputSchema: Weather,
            execute: async (input) => {
              seen.push(input);
              return { temp: 21 };
            },
          }),
        },
        stopWhen: stepCountIs(3),
      });
      expect(seen).toHaveLength(1);
      expect(Weather.safeParse(seen[0]).success).toBe(true);
      expect(r.text).toMatch(/mock reply/);
    }
  });

  it('generateObject with the OpenAI and Anthropic providers', async () => {
    for (const model of [openai()('demo-model'), openai().chat('demo-model'), anthropic()('claude-demo')]) {
      const r = await generateObject({ model, schema: Weather, prompt: 'Weather in Lima?' });
      expect(Weather.safeParse(r.object).success).toBe(true);
    }
  });

  it('embed and generateImage', async () => {
    const e = await embed({ model: openai().embedding('demo-embed'), value: 'hello' });
    expect(e.embedding.length).toBe(1536);
    const img = await generateImage({ model: openai().image('demo-image'), prompt: 'a cat' });
    expect(img.image.base64.length).toBeGreaterThan(10);
  });
});

describe('LangChain', () => {
  const chatOpenAI = () =>
    new ChatOpenAI({
      model: 'demo-model',
      apiKey: env.key,
      configuration: { baseURL: env.v1 },
      maxRetries: 0,
    });
  const chatAnthropic = () =>
    new ChatAnthropic({ model: 'claude-demo', apiKey: env.key, anthropicApiUrl: env.origin, maxRetries: 0 });

  it('invoke and stream with both providers; embeddings', async () => {
    for (const m of [chatOpenAI(), chatAnthropic()]) {
      const r = await m.invoke('Hello');
      expect(String(r.content)).toMatch(/mock reply/);
      let text = '';
      for await (const ch of await m.stream('Hello'))
        text += typeof ch.content === 'string' ? ch.content : '';
      expect(text).toMatch(/mock reply/);
    }
    const emb = new OpenAIEmbeddings({
      model: 'demo-embed',
      apiKey: env.key,
      configuration: { baseURL: env.v1 },
    });
    expect((await emb.embedQuery('hello')).length).toBe(1536);
  });

  it('withStructuredOutput and bindTools with both providers', async () => {
    for (const m of [chatOpenAI(), chatAnthropic()]) {
      const out = await m.withStructuredOutput(Weather).invoke('Weather in Kyiv?');
      expect(Weather.safeParse(out).success).toBe(true);
      const weather = lcTool(async () => '21', {
        name: 'get_weather',
        description: 'weather',
        schema: Weather,
      });
      const ai = await m.bindTools([weather]).invoke('Weather in Kyiv?');
      expect(ai.tool_calls?.[0]?.name).toBe('get_weather');
      expect(Weather.safeParse(ai.tool_calls?.[0]?.args).success).toBe(true);
    }
  });
});
